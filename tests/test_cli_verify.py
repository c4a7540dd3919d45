"""`nmosauth-lite verify`: the stable CLI contract (issue 2 item 5), run as a real process."""

import json
import os
import subprocess
import sys

import pytest

from vectorfiles import load_vector

EX = load_vector("nmos", "is10-example-token-vectors.json")
TOKEN = EX["tests"][0]["token"]
NOW = "1548779500"


def run(args, stdin=None, tmp_path=None):
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "verify"] + args, input=stdin,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def jwks_file(tmp_path):
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(EX["jwks"]))
    return str(f)


def base(jwks_file):
    return ["--jwks", jwks_file, "--audience", "node1.example.com", "--now", NOW]


def test_allowed_prints_one_json_object_exit_0(jwks_file):
    code, out, err = run(base(jwks_file) + ["--path", "/x-nmos/query/v1.3/nodes", "--token", TOKEN])
    assert code == 0, err
    d = json.loads(out)
    assert set(d) == {"status", "error", "www_authenticate", "reason", "claims"}
    assert d["status"] == 200 and d["claims"]["client_id"] == "hopy0dNRPNTiGJDqPfqYwGmw"
    assert out.count("\n") == 1


def test_token_from_stdin(jwks_file):
    code, out, _ = run(base(jwks_file) + ["--path", "/x-nmos/query/v1.3/nodes", "--token", "-"], stdin=TOKEN + "\n")
    assert code == 0 and json.loads(out)["status"] == 200


def test_no_token_means_no_credentials_exit_1(jwks_file):
    code, out, _ = run(base(jwks_file) + ["--path", "/x-nmos/node/v1.3/"])
    d = json.loads(out)
    assert code == 1 and d["status"] == 401 and d["error"] is None
    assert d["www_authenticate"] == 'Bearer realm="node1.example.com"'


def test_denied_write_exit_1(jwks_file):
    code, out, _ = run(base(jwks_file) + ["--method", "POST", "--path", "/x-nmos/connection/v1.1/bulk/senders", "--token", TOKEN])
    assert code == 1 and json.loads(out)["error"] == "insufficient_scope"


def test_issuer_filter(jwks_file):
    code, out, _ = run(base(jwks_file) + ["--issuer", "https://elsewhere.example.com", "--path", "/x-nmos/query/v1.3/", "--token", TOKEN])
    assert code == 1 and json.loads(out)["error"] == "invalid_token"
    code, out, _ = run(base(jwks_file) + ["--issuer", "https://server.example.com/v1.0", "--path", "/x-nmos/query/v1.3/", "--token", TOKEN])
    assert code == 0


def test_strict_profile_and_pure_backend(jwks_file):
    code, out, _ = run(base(jwks_file) + ["--strict", "--backend", "pure", "--path", "/x-nmos/query/v1.3/", "--token", TOKEN])
    assert code == 0, out


def test_malformed_token_is_a_decision_not_a_crash(jwks_file):
    code, out, err = run(base(jwks_file) + ["--path", "/x-nmos/node/v1.3/self", "--token", "not.a.token\x01"])
    assert code == 1 and json.loads(out)["error"] == "invalid_token" and "Traceback" not in err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--jwks", "/nonexistent/jwks.json", "--audience", "a"], "cannot read JWKS"),
        (["--audience", "a"], "give --jwks FILE, --issuer URL or --discover"),
        (["--jwks", "JWKS", "--audience", "a", "--backend", "openssl"], "unknown backend"),
        (["--jwks", "BADJSON", "--audience", "a"], "not JSON"),
        (["--jwks", "EMPTY", "--audience", "a"], "no usable signing key"),
        (["--jwks", "JWKS", "--audience", "*.example.com"], "not a plain host name"),
    ],
)
def test_usage_and_configuration_errors_exit_2(tmp_path, jwks_file, args, needle):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "empty.json").write_text('{"keys": []}')
    subst = {"JWKS": jwks_file, "BADJSON": str(tmp_path / "bad.json"), "EMPTY": str(tmp_path / "empty.json")}
    args = [subst.get(a, a) for a in args]
    code, out, err = run(args)
    assert code == 2, (out, err)
    assert out == ""
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # argparse usage line + one message


def test_pure_backend_when_cryptography_is_missing(tmp_path, jwks_file):
    # A directory that shadows `cryptography` with a package that fails to import.
    shadow = tmp_path / "shadow" / "cryptography"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('cryptography hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"))
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "verify"] + base(jwks_file) +
                       ["--path", "/x-nmos/query/v1.3/", "--token", TOKEN], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "verify", "--backend", "cryptography"] + base(jwks_file) +
                       ["--token", TOKEN], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2 and "cryptography package is not installed" in p.stderr


def test_without_path_the_token_alone_is_judged(jwks_file):
    code, out, _ = run(base(jwks_file) + ["--token", TOKEN])
    assert code == 0 and json.loads(out)["reason"] == "ok"
    code, out, _ = run(["--jwks", jwks_file, "--audience", "node1.other.org", "--now", NOW, "--token", TOKEN])
    assert code == 1 and json.loads(out)["error"] == "insufficient_scope"
