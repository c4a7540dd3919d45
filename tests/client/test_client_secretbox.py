"""Secrets at rest (IS-10 CL-18): the stdlib encrypt-then-MAC box and the credential store."""

import asyncio
import hashlib
import hmac
import json
import os
import stat

import pytest

from nmosauth_lite import b64url
from nmosauth_lite.aio.oauth import secretbox
from nmosauth_lite.aio.oauth.credentials import CredentialStore
from nmosauth_lite.aio.oauth.secretbox import SecretBox, SecretBoxError, load_key
from nmosauth_lite.errors import ConfigError

KEY = bytes(range(32))
ISS = "https://auth.example.com/x-nmos/auth/v1.0"


def test_round_trip_and_fresh_nonces():
    box = SecretBox(KEY)
    a, b = box.seal("s3cret ü", "aad"), box.seal("s3cret ü", "aad")
    assert a != b and a.startswith("v1.")
    assert box.open(a, "aad") == box.open(b, "aad") == "s3cret ü"
    assert box.open(box.seal("", "aad"), "aad") == ""
    long = "x" * 5000  # several keystream blocks
    assert box.open(box.seal(long, "aad"), "aad") == long


def test_construction_matches_an_independent_computation():
    box = SecretBox(KEY)
    sealed = box.seal("A" * 40, "iss\nclient_secret")
    raw = b64url.decode(sealed[3:])
    nonce, ct, tag = raw[:16], raw[16:-32], raw[-32:]
    enc = hmac.new(KEY, b"nmosauth-lite secretbox v1 encryption", hashlib.sha256).digest()
    mac = hmac.new(KEY, b"nmosauth-lite secretbox v1 authentication", hashlib.sha256).digest()
    stream = b"".join(hmac.new(enc, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(2))
    assert bytes(c ^ s for c, s in zip(ct, stream)) == b"A" * 40
    aad = b"iss\nclient_secret"
    assert tag == hmac.new(mac, b"\x01" + len(aad).to_bytes(4, "big") + aad + nonce + ct, hashlib.sha256).digest()
    assert enc != mac


def test_any_change_is_detected_before_decrypting():
    box = SecretBox(KEY)
    sealed = box.seal("secret", "aad")
    raw = bytearray(b64url.decode(sealed[3:]))
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 1
        with pytest.raises(SecretBoxError):
            box.open("v1." + b64url.encode(bytes(bad)), "aad")
    with pytest.raises(SecretBoxError):
        box.open(sealed, "other aad")  # bound to issuer and field: cannot be moved
    with pytest.raises(SecretBoxError):
        SecretBox(bytes(32)).open(sealed, "aad")  # wrong key
    for junk in ("", "v2." + sealed[3:], "v1.!!", "v1." + b64url.encode(b"short"), None):
        with pytest.raises(SecretBoxError):
            box.open(junk, "aad")


def test_key_file_is_made_private_and_kept_apart(tmp_path):
    state = tmp_path / "state"
    key_file = tmp_path / "etc" / "client.key"
    box = load_key(str(key_file), str(state), create=True)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700
    again = load_key(str(key_file), str(state), create=False)
    assert again.open(box.seal("x", "a"), "a") == "x"
    with pytest.raises(ConfigError):
        load_key(str(state / "client.key"), str(state), create=True)
    with pytest.raises(SecretBoxError) as e:
        load_key(str(tmp_path / "gone.key"), str(state), create=False)
    assert "gone.key" in e.value.message
    key_file.write_text("not base64url!")
    with pytest.raises(ConfigError):
        load_key(str(key_file), str(state), create=False)


def test_default_key_file_is_outside_the_default_state_dir(monkeypatch, tmp_path):
    from nmosauth_lite.aio.files import default_state_dir

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert not secretbox.default_key_file().startswith(default_state_dir())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x")
    assert secretbox.default_key_file() == "/run/credentials/x/nmosauth-lite-client.key"


def _record(**over):
    r = {"issuer": ISS, "client_id": "cid-1", "client_secret": "the-secret-value-123",
         "registration_access_token": "rat-456", "registration_client_uri": "https://auth.example.com/r/cid-1",
         "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"]}
    r.update(over)
    return r


def test_store_round_trip_seals_secrets_and_redacts(tmp_path):
    store = CredentialStore(str(tmp_path / "state"), str(tmp_path / "keys" / "k"))
    assert store.load(ISS) is None
    store.save(_record())
    raw = open(store.path_for(ISS), "rb").read()
    assert b"the-secret-value-123" not in raw and b"rat-456" not in raw and b"cid-1" in raw
    doc = json.loads(raw)
    assert set(doc) >= {"client_secret_sealed", "registration_access_token_sealed"}
    assert store.load(ISS) == dict(_record(), version=1)
    red = CredentialStore.redacted(store.load(ISS))
    assert red["client_secret"] == "<redacted>" and red["registration_access_token"] == "<redacted>"
    assert "the-secret" not in json.dumps(red)
    assert store.issuers() == [ISS]
    assert stat.S_IMODE(os.stat(store.path_for(ISS)).st_mode) == 0o600
    # a sealed value moved to another issuer's record does not open
    other = "https://other.example.com"
    doc["issuer"] = other
    with open(store.path_for(other), "w") as f:
        json.dump(doc, f)
    with pytest.raises(SecretBoxError):
        store.load(other)


def test_store_refuses_damaged_or_foreign_records(tmp_path):
    store = CredentialStore(str(tmp_path / "state"), str(tmp_path / "keys" / "k"))
    store.save(_record())
    with open(store.path_for(ISS), "w") as f:
        f.write("{broken")
    with pytest.raises(ConfigError):
        store.load(ISS)
    with open(store.path_for(ISS), "w") as f:
        json.dump({"issuer": "https://someone-else", "client_id": "x"}, f)
    with pytest.raises(ConfigError):
        store.load(ISS)
    assert store.remove(ISS) and not store.remove(ISS)


def test_signing_key_is_sealed_and_stable(tmp_path):
    store = CredentialStore(str(tmp_path / "state"), str(tmp_path / "keys" / "k"))
    k1 = store.signing_key("ES256")
    k2 = CredentialStore(str(tmp_path / "state"), str(tmp_path / "keys" / "k")).signing_key("ES256")
    assert k1.kid == k2.kid == k1.public.thumbprint  # RFC 7638 kid
    data = open(os.path.join(store.dir, "signing-key.json"), "rb").read()
    assert b"PRIVATE" not in data
    jwk = k1.jwks()["keys"][0]
    assert jwk["kty"] == "EC" and "d" not in jwk and jwk["kid"] == k1.kid


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "RS512"])
def test_assertions_verify_with_our_own_validator_stack(tmp_path, alg):
    from nmosauth_lite import jws
    from nmosauth_lite.crypto import get_backend
    from nmosauth_lite.jwk import parse_jwks

    store = CredentialStore(str(tmp_path / "state"), str(tmp_path / "keys" / "k"))
    key = store.signing_key(alg)
    token = key.sign_jwt({"iss": "c", "sub": "c", "aud": "https://as/token", "exp": 2, "jti": "j"})
    parsed = jws.parse(token, (alg,))
    keys, _ = parse_jwks(key.jwks())
    for backend in ("cryptography", "pure"):
        assert jws.verify(parsed, keys, get_backend(backend)).kid == key.kid


def test_lock_serialises_registrations(tmp_path):
    store = CredentialStore(str(tmp_path / "state"), str(tmp_path / "keys" / "k"))
    order = []

    async def holder(name, hold):
        async with store.locked():
            order.append(name + "+")
            await asyncio.sleep(hold)
            order.append(name + "-")

    async def go():
        await asyncio.gather(holder("a", 0.2), holder("b", 0))

    asyncio.run(go())
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
