"""`nmosauth-lite jwks show|refresh` and `verify --issuer` against a real HTTPS stand-in (issue 4 item 6)."""

import json
import subprocess
import sys

import pytest

from minting import Minter, public_jwk
from standin_as import StandinAS


@pytest.fixture
def standin(tmp_path):
    m = Minter()
    s = StandinAS(str(tmp_path), path="/x-nmos/auth/v1.0")
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    s.m = m
    yield s
    s.stop()


def cli(*args, stdin=None):
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite"] + list(args), capture_output=True, text=True,
                       input=stdin, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_refresh_then_show_then_verify_offline(standin, tmp_path):
    state = str(tmp_path / "state")
    code, out, err = cli("jwks", "refresh", "--issuer", standin.issuer, "--ca", standin.pki.ca_cert, "--state-dir", state)
    assert code == 0, err
    assert json.loads(out)[0]["kids"] == ["rsa-1"]
    code, out, _ = cli("jwks", "show", "--state-dir", state)
    shown = json.loads(out)
    assert shown[0]["issuer"] == standin.issuer and shown[0]["kids"] == ["rsa-1"]
    assert 3600 <= shown[0]["next_refresh_in"] + shown[0]["age"] <= 3661
    standin.stop()  # the authorization server goes away: the Node still decides from its cache
    m = standin.m
    tok = m.token("RS512", claims=m.claims(iss=standin.issuer, aud=["node1.example.com"]))
    code, out, err = cli("verify", "--issuer", standin.issuer, "--state-dir", state, "--audience", "node1.example.com",
                         "--now", str(m.NOW), "--path", "/x-nmos/node/v1.3/self", "--token", tok)
    assert code == 0, (out, err)


def test_verify_fetches_keys_on_first_use_and_refuses_other_issuers(standin, tmp_path):
    state = str(tmp_path / "state")
    m = standin.m
    tok = m.token("RS512", claims=m.claims(iss=standin.issuer, aud=["node1.example.com"]))
    base = ["verify", "--issuer", standin.issuer, "--ca", standin.pki.ca_cert, "--state-dir", state,
            "--audience", "node1.example.com", "--now", str(m.NOW), "--path", "/x-nmos/node/v1.3/self"]
    code, out, err = cli(*base, "--token", tok)
    assert code == 0, (out, err)
    other = m.token("RS512", claims=m.claims(iss="https://elsewhere.example.com", aud=["node1.example.com"]))
    code, out, _ = cli(*base, "--token", other)
    assert code == 1 and "issuer" in json.loads(out)["reason"]


def test_refresh_failure_exit_1_and_bad_issuer_exit_2(tmp_path):
    code, out, err = cli("jwks", "refresh", "--issuer", "https://127.0.0.1:9", "--state-dir", str(tmp_path))
    assert code == 1 and json.loads(out)[0]["last_error"]
    code, out, err = cli("jwks", "refresh", "--issuer", "http://plain.example.com", "--state-dir", str(tmp_path))
    assert code == 2 and "not https" in err and "Traceback" not in err
