"""Signing keys: RS512/ES256 tokens our validator and PyJWT accept, rotation states, withdrawal."""

import jwt
import pytest

from as_support import validate
from nmosauth_lite.authserver.keys import RETENTION, KeyRing
from nmosauth_lite.authserver.store import Store
from nmosauth_lite.validator import TokenValidator

T0 = 1700000000.0
CLAIMS = {"iss": "https://auth.example.com/x-nmos/auth/v1.0", "sub": "alice", "aud": ["*.example.com"],
          "iat": int(T0), "exp": int(T0) + 600, "client_id": "c" * 32, "scope": "registration",
          "x-nmos-registration": {"read": ["*"], "write": ["*"]}}


@pytest.fixture()
def store(tmp_path):
    s = Store(str(tmp_path / "as.db"))
    yield s
    s.close()


def _states(ring, now):
    return {k.kid: s for k, s in ring.states(now)}


@pytest.mark.parametrize("alg", ["RS512", "ES256"])
def test_signed_tokens_validate_with_our_validator_and_pyjwt(store, alg, backend_name):
    ring = KeyRing(store, alg=alg)
    key = ring.ensure(T0)
    assert key.kid == key.public.thumbprint  # RFC 7638 kid
    token = key.encode(CLAIMS)
    jwks = ring.jwks(T0)
    validate("jwks_response.json", jwks)
    (jwk,) = jwks["keys"]
    assert jwk["use"] == "sig" and jwk["alg"] == alg and jwk["kid"] == key.kid  # IS-10 AS-13
    assert "d" not in jwk and "p" not in jwk
    v = TokenValidator(jwks=jwks, audience=["node1.example.com"], backend=backend_name)
    d = v.check(token, "POST", "/x-nmos/registration/v1.3/resource", now=T0 + 1)
    assert d.allowed, d
    header = jwt.get_unverified_header(token)
    assert header == {"typ": "JWT", "alg": alg, "kid": key.kid}  # TOK-02, TOK-06
    pub = jwt.PyJWK(jwk).key
    out = jwt.decode(token, pub, algorithms=[alg], audience="*.example.com", issuer=CLAIMS["iss"],
                     options={"verify_exp": False, "verify_iat": False})
    assert out["sub"] == "alice"


def test_rsa_keys_are_2048_bits_at_least(store):
    key = KeyRing(store).ensure(T0)
    assert key.private.key_size >= 2048  # TOK-04


def test_rotation_publishes_first_and_signs_after_the_delay(store):
    ring = KeyRing(store, publish_delay=7200)
    old = ring.ensure(T0).kid
    new = ring.rotate(T0 + 10)
    assert _states(ring, T0 + 10) == {old: "active", new: "pending"}
    assert {k["kid"] for k in ring.jwks(T0 + 10)["keys"]} == {old, new}  # published at once (AS-16)
    assert ring.signer(T0 + 7209).kid == old
    assert ring.signer(T0 + 7210).kid == new
    # the old key stays published while tokens it signed may live (AS-15)
    assert _states(ring, T0 + 7210 + RETENTION - 1)[old] == "retiring"
    assert _states(ring, T0 + 7210 + RETENTION)[old] == "expired"
    assert ring.purge(T0 + 7210 + RETENTION) == [old]
    assert [k["kid"] for k in ring.jwks(T0 + 7210 + RETENTION)["keys"]] == [new]


def test_withdrawal_removes_key_at_once_and_a_new_key_signs(store):
    ring = KeyRing(store, publish_delay=7200)
    old = ring.ensure(T0).kid
    assert ring.withdraw(old, T0 + 5)
    kids = [k["kid"] for k in ring.jwks(T0 + 5)["keys"]]
    assert old not in kids and len(kids) == 1
    assert ring.signer(T0 + 5).kid == kids[0]
    row = [r for r in store.list_keys() if r["kid"] == old][0]
    assert row["private_pem"] == "" and row["withdrawn_at"] == T0 + 5  # private half dropped
    assert not ring.withdraw(old, T0 + 6)


def test_withdrawing_a_pending_key_keeps_the_active_one(store):
    ring = KeyRing(store)
    active = ring.ensure(T0).kid
    pending = ring.rotate(T0)
    ring.withdraw(pending, T0 + 1)
    assert ring.signer(T0 + 7201).kid == active


def test_a_second_process_sees_rotation(tmp_path):
    path = str(tmp_path / "as.db")
    server, cli = Store(path), Store(path)
    ring = KeyRing(server)
    first = ring.ensure(T0).kid
    KeyRing(cli).rotate(T0, delay=0)
    assert ring.signer(T0 + 1).kid != first
    KeyRing(cli).withdraw(first, T0 + 2)
    assert first not in [k["kid"] for k in ring.jwks(T0 + 2)["keys"]]
    server.close()
    cli.close()
