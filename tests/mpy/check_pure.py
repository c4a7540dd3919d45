"""crypto.pure: RSASSA-PKCS1-v1_5 through pow() (RFC 8017 §8.2.2) on lane tokens minted
by CPython; True/False only, never an exception for a bad signature. ES256 verifies
where the `ecdsa` package exists and is a configuration error where it does not."""

import harness
from nmosauth_lite import b64url, jwk
from nmosauth_lite.crypto import get_backend
from nmosauth_lite.errors import BackendUnavailableError

_d = None


def data():
    global _d
    if _d is None:
        _d = harness.load_json("tests/mpy/data/lane-vectors.json")
    return _d


def _key(kid):
    for k in data()["jwks"]["keys"]:
        if k["kid"] == kid:
            return jwk.parse_jwk(k)
    raise KeyError(kid)


def _split(token):
    i = token.rfind(".")
    return token[:i].encode(), b64url.decode(token[i + 1 :])


def _verify_timed(alg):
    key = _key("mpy-lane-rsa")
    si, sig = _split(data()["tokens"][alg])
    backend = get_backend("pure")
    start = harness.clock_ms()
    ok = backend.verify(alg, key, si, sig)
    ms = harness.elapsed_ms(start)
    harness.eq(ok, True, alg + " verifies")
    reps = 10
    start = harness.clock_ms()
    for _ in range(reps):
        backend.verify(alg, key, si, sig)
    mean = harness.elapsed_ms(start) / reps
    harness.note("pure %s verify (RSA-2048): first %.1f ms, mean of %d more %.2f ms" % (alg, ms, reps, mean))


def check_backend_name():
    harness.eq(get_backend("pure").name, "pure", "name")


def check_rs256_verifies():
    _verify_timed("RS256")


def check_rs512_verifies():
    _verify_timed("RS512")


def check_rejections_return_false():
    backend = get_backend("pure")
    key = _key("mpy-lane-rsa")
    si, sig = _split(data()["tokens"]["RS256"])
    flipped = sig[:-1] + bytes([sig[-1] ^ 1])
    for what, alg, k, s, m in (
        ("flipped bit", "RS256", key, flipped, si),
        ("tampered input", "RS256", key, sig, si + b"x"),
        ("other hash", "RS512", key, sig, si),
        ("short signature", "RS256", key, sig[1:], si),
        ("long signature", "RS256", key, b"\x00" + sig, si),
        ("s >= n", "RS256", key, b"\xff" * 256, si),
        ("zero", "RS256", key, b"\x00" * 256, si),
        ("EC key for RS256", "RS256", _key("mpy-lane-p256"), sig, si),
        ("RSA key for ES256", "ES256", key, b"\x00" * 64, si),
        ("unknown alg", "PS256", key, sig, si),
    ):
        harness.eq(backend.verify(alg, k, m, s), False, what)


def check_es256_verifies_or_needs_ecdsa():
    backend = get_backend("pure")
    si, sig = _split(data()["tokens"]["ES256"])
    key = _key("mpy-lane-p256")
    try:
        import ecdsa  # noqa: F401
    except ImportError:
        harness.raises(BackendUnavailableError, backend.verify, "ES256", key, si, sig)
        harness.note("pure ES256: ecdsa package absent, BackendUnavailableError as designed")
        return
    harness.eq(backend.verify("ES256", key, si, sig), True, "ES256 verifies")
    harness.eq(backend.verify("ES256", key, si + b"x", sig), False, "tampered")


def check_es512_needs_p521_and_sha512():
    # RFC 7518 §3.4: ES512 is P-521 with SHA-512; a P-256 key never verifies it (no ecdsa needed to refuse)
    backend = get_backend("pure")
    si, sig = _split(data()["tokens"]["ES256"])
    key = _key("mpy-lane-p256")
    harness.eq(backend.verify("ES512", key, si, sig + sig), False, "P-256 key, ES512 header")
    harness.eq(backend.verify("ES512", _key("mpy-lane-rsa"), si, sig), False, "RSA key, ES512 header")
