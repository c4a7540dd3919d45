"""Key rotation and withdrawal end to end: `as keys rotate|withdraw` (in-process CLI) against a running
server whose clock the test moves; resource servers holding an earlier JWKS keep validating (IS-10 AS-15, AS-16)."""

import json

import jwt
import pytest
import requests

from as_support import ASThread, as_pki, server_table  # noqa: F401
from nmosauth_lite.authserver.keys import RETENTION
from nmosauth_lite.cli import main as cli_main
from nmosauth_lite.validator import TokenValidator

PATH = "/x-nmos/registration/v1.3/resource"


@pytest.fixture()
def srv(tmp_path, as_pki):
    with ASThread(server_table(as_pki), str(tmp_path)) as s:
        yield s


def _cli(capsys, srv, *args):
    rc = cli_main(["as"] + list(args) + ["--state-dir", srv.config.state_dir])
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out) if out.strip() else None


def _token(srv, h, client):
    r = h.post(srv.metadata["token_endpoint"], data={"grant_type": "client_credentials"},
               auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _jwks(srv, h):
    return h.get(srv.metadata["jwks_uri"], timeout=10).json()


def _kids(jwks):
    return [k["kid"] for k in jwks["keys"]]


def _session(srv):
    h = requests.Session()
    h.trust_env = False
    h.verify = srv.ca_file
    return h


def test_rotation_publishes_before_use_and_keeps_the_old_key(srv, capsys):
    h = _session(srv)
    client = srv.add_client()
    old_token = _token(srv, h, client)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    rotated = _cli(capsys, srv, "keys", "rotate")
    new_kid = rotated["kid"]
    early_jwks = _jwks(srv, h)
    assert set(_kids(early_jwks)) == {old_kid, new_kid}  # published at once, before any use
    assert jwt.get_unverified_header(_token(srv, h, client))["kid"] == old_kid  # not signing yet
    listed = {k["kid"]: k["state"] for k in _cli(capsys, srv, "keys", "list")}
    assert listed == {old_kid: "active", new_kid: "pending"}

    srv.clock.advance(7200 + 1)  # AS-16: two hours later the new key signs
    new_token = _token(srv, h, client)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    # a resource server that last fetched keys before the switch accepts the new token without a refetch
    rs = TokenValidator(jwks=early_jwks, audience=["node1.example.com"])
    assert rs.check(new_token, "POST", PATH, now=srv.clock()).allowed
    # the old key stays published while its tokens may still be valid (AS-15)
    assert old_kid in _kids(_jwks(srv, h))
    srv.clock.advance(RETENTION)
    assert _kids(_jwks(srv, h)) == [new_kid]
    h.close()


def test_withdrawal_takes_effect_at_once(srv, capsys):
    h = _session(srv)
    client = srv.add_client()
    token = _token(srv, h, client)
    kid = jwt.get_unverified_header(token)["kid"]
    before = TokenValidator(jwks=_jwks(srv, h), audience=["node1.example.com"])
    assert before.check(token, "POST", PATH).allowed
    out = _cli(capsys, srv, "keys", "withdraw", kid)
    assert out["withdrawn"] == kid and out["signing_kid"] != kid
    jwks = _jwks(srv, h)
    assert kid not in _kids(jwks)  # gone from the JWKS immediately (AS-15)
    after = TokenValidator(jwks=jwks, audience=["node1.example.com"])
    d = after.check(token, "POST", PATH)
    assert d.status == 401 and d.error == "invalid_token"
    fresh = _token(srv, h, client)
    assert jwt.get_unverified_header(fresh)["kid"] == out["signing_kid"]
    assert after.check(fresh, "POST", PATH).allowed
    assert cli_main(["as", "keys", "withdraw", kid, "--state-dir", srv.config.state_dir]) == 1  # already gone
    capsys.readouterr()
    h.close()
