"""The issue-20 settings on the command line (issue 20 §2, §3): `verify --claims-location` and
`--api-alias` as a real process, and `protect`'s claims_location, api_aliases, ws_expiry and
ws_grace from flags and the TOML file (flags win; nonsense refused, exit 2 / ConfigError)."""

import argparse
import json
import subprocess
import sys

import pytest

from minting import Minter
from nmosauth_lite.commands import protect as protect_cmd
from nmosauth_lite.errors import ConfigError

AUD = "node1.example.com"


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture(scope="module")
def jwks_file(m, tmp_path_factory):
    f = tmp_path_factory.mktemp("jwks") / "jwks.json"
    f.write_text(json.dumps(m.jwks))
    return str(f)


def verify(jwks_file, token, path, *extra):
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "verify", "--jwks", jwks_file, "--audience", AUD,
                        "--now", str(Minter.NOW), "--path", path, "--token", token] + list(extra),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, (json.loads(p.stdout) if p.stdout else None), p.stderr


def test_verify_reads_claims_under_ext_when_told(m, jwks_file):
    t = m.token("RS512", claims=m.claims(**{"x-nmos-node": None, "ext": {"x-nmos-node": {"read": ["*"]}}}))
    path = "/x-nmos/node/v1.3/self"
    assert verify(jwks_file, t, path)[1]["status"] == 403  # default: top level (IS-10)
    code, d, _ = verify(jwks_file, t, path, "--claims-location", "ext")
    assert code == 0 and d["status"] == 200
    assert verify(jwks_file, t, path, "--claims-location", "either")[1]["status"] == 200
    code, _, err = verify(jwks_file, t, path, "--claims-location", "nested")
    assert code == 2 and "claims_location" in err and "Traceback" not in err


def test_verify_api_alias(m, jwks_file):
    t = m.token("RS512", claims=m.claims(**{"x-nmos-control": {"read": ["*"]}}))
    path = "/x-nmos/ncp/v1.0/ws"
    assert verify(jwks_file, t, path)[1]["status"] == 403
    code, d, _ = verify(jwks_file, t, path, "--api-alias", "x-nmos-control=ncp", "--api-alias", "nc=ncp")
    assert code == 0 and d["status"] == 200
    for bad in ("control", "control=nothing", "query=node"):
        code, _, err = verify(jwks_file, t, path, "--api-alias", bad)
        assert code == 2 and "Traceback" not in err, bad


def _settings(argv):
    parser = argparse.ArgumentParser()
    protect_cmd.add_arguments(parser)
    base = ["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--audience", AUD, "--jwks", "x",
            "--cert", "c", "--key", "k"]
    return protect_cmd.load_settings(parser.parse_args(base + argv))


def test_protect_settings_from_toml_and_flags(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[protect]\nclaims_location = "either"\nws_expiry = "keep"\nws_grace = 2\n'
                   'api_aliases = { nc = "ncp", "x-nmos-control" = "ncp" }\n')
    got = _settings(["--config", str(cfg)])
    assert (got["claims_location"], got["ws_expiry"], got["ws_grace"]) == ("either", "keep", 2.0)
    assert got["api_aliases"] == {"nc": "ncp", "x-nmos-control": "ncp"}
    got = _settings(["--config", str(cfg), "--api-alias", "control=ncp", "--ws-expiry", "close"])
    assert got["api_aliases"] == {"nc": "ncp", "x-nmos-control": "ncp", "control": "ncp"}
    assert got["ws_expiry"] == "close"
    defaults = _settings([])
    assert (defaults["claims_location"], defaults["api_aliases"], defaults["ws_expiry"], defaults["ws_grace"]) == \
        ("top", {}, "close", 5.0)


@pytest.mark.parametrize("argv", [["--ws-expiry", "drop"], ["--ws-grace", "-1"], ["--ws-grace", "301"],
                                  ["--api-alias", "nc"]])
def test_protect_refuses_unusable_settings(argv):
    with pytest.raises(ConfigError):
        _settings(argv)


def test_protect_refuses_an_alias_table_of_non_strings(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[protect]\napi_aliases = { nc = 5 }\n')
    with pytest.raises(ConfigError):
        _settings(["--config", str(cfg)])
