"""Contract tests for the crypto backends, run once per backend ("cryptography", "pure").

Wycheproof (tests/vectors/wycheproof, unchanged upstream copies): every `valid`
vector must verify and every `invalid` one must not. `acceptable` vectors get a
per-flag policy (ACCEPTABLE_POLICY below), the same for both backends, so the two
always agree: MissingNull (DigestInfo without the NULL parameters) is rejected,
because RFC 8017 §9.2 / RFC 7518 §3.3 define one encoding and we compare the whole
EM; SmallPublicKey (e = 3) signatures are accepted, because they are correct
signatures and key policy (minimum exponent) belongs to jwk.py, which allows e >= 3;
WeakHash only occurs in SHA-1 groups, which are skipped as unsupported. An
`acceptable` flag with no policy fails the test, so new vectors force a decision.
Groups whose hash/curve has no JOSE algorithm here (SHA-1, SHA-224) are skipped
and counted; EXPECTED_COUNTS pins every file's numbers so nothing is skipped silently.
"""

import hashlib
import os
import random
import subprocess
import sys

import pytest
from vectorfiles import load_vector
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from nmosauth_lite import b64url, jwk
from nmosauth_lite.crypto import get_backend, pure
from nmosauth_lite.errors import BackendUnavailableError, KeyFormatError

RSA_ALG_BY_HASH = {"SHA-256": "RS256", "SHA-384": "RS384", "SHA-512": "RS512"}  # RFC 7518 §3.1
EC_ALG_BY_CURVE = {("secp256r1", "SHA-256"): "ES256", ("secp384r1", "SHA-384"): "ES384",
                   ("secp521r1", "SHA-512"): "ES512"}  # RFC 7518 §3.4
EC_CRV = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

# result for `acceptable` vectors, by Wycheproof flag
ACCEPTABLE_POLICY = {
    "MissingNull": False,  # RFC 8017 §9.2: DigestInfo carries NULL parameters; one encoding only
    "SmallPublicKey": True,  # a correct signature; the e >= 3 key policy is jwk.py's (RFC 7518 §6.3.1.2)
}

WYCHEPROOF_FILES = [
    "rsa_signature_2048_sha256_test.json",
    "rsa_signature_2048_sha512_test.json",
    "rsa_signature_3072_sha256_test.json",
    "rsa_signature_3072_sha512_test.json",
    "rsa_signature_4096_sha256_test.json",
    "rsa_signature_4096_sha512_test.json",
    "rsa_pkcs1_2048_sig_gen_test.json",
    "rsa_pkcs1_3072_sig_gen_test.json",
    "rsa_pkcs1_4096_sig_gen_test.json",
    "ecdsa_secp256r1_sha256_p1363_test.json",
    "ecdsa_secp384r1_sha384_p1363_test.json",
    "ecdsa_secp521r1_sha512_p1363_test.json",  # ES512: the IPMX device profile
]

# file -> (must accept, must reject, of which rejected because jwk refused the key, skipped)
EXPECTED_COUNTS = {
    "rsa_signature_2048_sha256_test.json": (9, 250, 0, 0),
    "rsa_signature_2048_sha512_test.json": (8, 251, 0, 0),
    "rsa_signature_3072_sha256_test.json": (8, 251, 0, 0),
    "rsa_signature_3072_sha512_test.json": (8, 252, 0, 0),
    "rsa_signature_4096_sha256_test.json": (7, 251, 0, 0),
    "rsa_signature_4096_sha512_test.json": (7, 252, 0, 0),
    "rsa_pkcs1_2048_sig_gen_test.json": (27, 0, 0, 16),
    "rsa_pkcs1_3072_sig_gen_test.json": (26, 0, 0, 0),
    "rsa_pkcs1_4096_sig_gen_test.json": (24, 0, 0, 0),
    "ecdsa_secp256r1_sha256_p1363_test.json": (173, 89, 0, 0),
    "ecdsa_secp384r1_sha384_p1363_test.json": (193, 87, 0, 0),
    "ecdsa_secp521r1_sha512_p1363_test.json": (231, 87, 0, 0),
}


def _rsa_key(group):
    # Built directly: jwk.parse_jwk would also accept these (all >= 2048 bits, e odd >= 3),
    # but its `alg` member would pin each key to one algorithm.
    nums = group.get("publicKey") or group["privateKey"]
    return jwk.RSAKey(int(nums["modulus"], 16), int(nums["publicExponent"], 16))


def _ec_key(group):
    """The group's key through our jwk layer, or None when that layer refuses it."""
    if "publicKeyJwk" in group:
        try:
            return jwk.parse_jwk(group["publicKeyJwk"])
        except KeyFormatError:
            return None
    pub = group["publicKey"]
    crv = EC_CRV[pub["curve"]]
    x, y = int(pub["wx"], 16), int(pub["wy"], 16)
    if not jwk.is_on_curve(crv, x, y):
        return None
    key = jwk.ECKey(crv, x, y)
    # Same key as the JWK path would give (RFC 7518 §6.2.1.2 fixed-length coordinates).
    assert jwk.parse_jwk(key.to_jwk()).x == x
    return key


def wycheproof_cases(filename):
    """(tcId, alg, key or None, msg, sig, expected, flags) for each usable vector, and skip reasons."""
    data = load_vector("wycheproof", filename)
    cases, skipped = [], {}
    for group in data["testGroups"]:
        if group["type"] in ("RsassaPkcs1Verify", "RsassaPkcs1Generate"):
            alg = RSA_ALG_BY_HASH.get(group["sha"])
            key = _rsa_key(group) if alg else None
        elif group["type"] == "EcdsaP1363Verify":
            alg = EC_ALG_BY_CURVE.get((group["publicKey"]["curve"], group["sha"]))
            key = _ec_key(group) if alg else None
        else:
            alg = None
        if alg is None:
            reason = "no JOSE alg for %s %s" % (group["type"], group["sha"])
            skipped[reason] = skipped.get(reason, 0) + len(group["tests"])
            continue
        for t in group["tests"]:
            if t["result"] == "acceptable":
                policies = {ACCEPTABLE_POLICY.get(f) for f in t["flags"]}
                assert None not in policies and len(policies) == 1, (
                    "no single policy for acceptable tcId %d flags %s" % (t["tcId"], t["flags"])
                )
                expected = policies.pop()
            else:
                expected = t["result"] == "valid"
            cases.append((t["tcId"], alg, key, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]), expected, t["flags"]))
    return cases, skipped


@pytest.mark.parametrize("filename", WYCHEPROOF_FILES)
def test_wycheproof_vectors(backend_name, filename):
    # RFC 8017 §8.2.2 (RSASSA-PKCS1-v1_5 verify); RFC 7518 §3.3, §3.4; IS-10 TOK-03 (RS512 tokens)
    backend = get_backend(backend_name)
    cases, skipped = wycheproof_cases(filename)
    wrong, accepted, rejected, key_refused = [], 0, 0, 0
    for tc_id, alg, key, msg, sig, expected, flags in cases:
        if key is None:
            got = False  # the jwk layer refused the key: nothing can verify under it
            key_refused += 1
        else:
            got = backend.verify(alg, key, msg, sig)
            assert got is True or got is False
        if got != expected:
            wrong.append((tc_id, flags, expected))
        if expected:
            accepted += 1
        else:
            rejected += 1
    assert not wrong, "%s/%s disagrees on (tcId, flags, expected): %r" % (backend_name, filename, wrong[:20])
    counts = (accepted, rejected, key_refused, sum(skipped.values()))
    assert counts == EXPECTED_COUNTS[filename], (counts, skipped)


def test_wycheproof_skips_only_hashes_jose_does_not_use():
    reasons = {}
    for filename in WYCHEPROOF_FILES:
        for reason, n in wycheproof_cases(filename)[1].items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert reasons == {"no JOSE alg for RsassaPkcs1Generate SHA-1": 8, "no JOSE alg for RsassaPkcs1Generate SHA-224": 8}


# --- keys and signatures of our own, made with cryptography -----------------------

_PRIV = {}


def _priv(kind):
    if kind not in _PRIV:
        if kind.startswith("rsa"):
            _PRIV[kind] = rsa.generate_private_key(65537, int(kind[3:]))
        else:
            _PRIV[kind] = ec.generate_private_key({"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}[kind]())
    return _PRIV[kind]


def _public(priv):
    """A fresh jwk key (empty native cache) for a cryptography private key."""
    nums = priv.public_key().public_numbers()
    if isinstance(priv, rsa.RSAPrivateKey):
        return jwk.RSAKey(nums.n, nums.e)
    crv = {256: "P-256", 384: "P-384", 521: "P-521"}[priv.curve.key_size]
    return jwk.ECKey(crv, nums.x, nums.y)


_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
ALG_KEYS = [("RS256", "rsa2048"), ("RS384", "rsa3072"), ("RS512", "rsa2048"), ("ES256", "p256"), ("ES384", "p384"),
            ("ES512", "p521")]


def _sign(alg, priv, data, der=False):
    h = _HASH[alg[2:]]()
    if alg.startswith("RS"):
        return priv.sign(data, padding.PKCS1v15(), h)
    sig = priv.sign(data, ec.ECDSA(h))
    if der:
        return sig
    r, s = decode_dss_signature(sig)
    size = (priv.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # RFC 7518 §3.4 R || S


@pytest.mark.parametrize("alg,kind", ALG_KEYS)
def test_accepts_signature_from_cryptography_and_caches_native_key(backend_name, alg, kind):
    backend = get_backend(backend_name)
    priv = _priv(kind)
    key = _public(priv)
    assert key.fits(alg)
    data = b"eyJhbGciOiJ" + alg.encode() + b".eyJzdWIiOiJ4In0"
    sig = _sign(alg, priv, data)
    assert backend.verify(alg, key, data, sig) is True
    cached = key.native.get(backend_name)
    assert cached is not None
    assert backend.verify(alg, key, data, sig) is True
    assert key.native[backend_name] is cached  # built once, reused
    assert backend.verify(alg, key, data + b"x", sig) is False


@pytest.mark.parametrize("alg,kind", ALG_KEYS)
def test_garbage_signatures_return_false_never_raise(backend_name, alg, kind):
    backend = get_backend(backend_name)
    key = _public(_priv(kind))
    data = b"a.b"
    good = _sign(alg, _priv(kind), data)
    size = len(good)
    garbage = [
        b"",
        b"\x00",
        good[:-1],
        good + b"\x00",
        b"\x00" + good,
        good * 2,
        b"\xff" * (1 << 16),  # huge
        b"\x00" * size,  # RSA s = 0; ECDSA r = s = 0 (CVE-2022-21449)
        b"\xff" * size,  # RSA s >= n; ECDSA r, s >= group order
        b"\x00" * (size - 1) + b"\x01",
    ]
    if alg.startswith("RS"):
        n = key.n
        garbage += [n.to_bytes(size, "big"), (n - 1).to_bytes(size, "big"), ((n + 1) % (1 << (8 * size))).to_bytes(size, "big")]
        garbage.append((int.from_bytes(good, "big") + n).to_bytes(size + 1, "big"))  # s + n, one byte longer
    else:
        half = size // 2
        order = _ORDER[alg]
        r, s = int.from_bytes(good[:half], "big"), int.from_bytes(good[half:], "big")
        if s + order < (1 << (8 * half)):
            garbage.append(good[:half] + (s + order).to_bytes(half, "big"))  # RangeCheck: s + n
        garbage.append(r.to_bytes(half, "big") + b"\x00" * half)
    for sig in garbage:
        assert backend.verify(alg, key, data, sig) is False, sig[:8].hex()
    assert backend.verify(alg, key, data, good) is True


_ORDER = {
    # FIPS 186-4 §D.1.2.3, §D.1.2.4, §D.1.2.5: group orders of P-256, P-384 and P-521
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
    ),
    "ES512": int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B889"
        "9C47AEBB6FB71E91386409", 16
    ),
}


@pytest.mark.parametrize("alg,kind", [("ES256", "p256"), ("ES384", "p384"), ("ES512", "p521")])
def test_rejects_der_encoded_ecdsa_signature(backend_name, alg, kind):
    # RFC 7518 §3.4: the JWS signature is R || S; the ASN.1 DER form is not a JWS signature.
    backend = get_backend(backend_name)
    priv = _priv(kind)
    key = _public(priv)
    data = b"h.p"
    der = _sign(alg, priv, data, der=True)
    assert backend.verify(alg, key, data, der) is False
    r, s = decode_dss_signature(der)
    # Even a DER blob that happens to have exactly 2 * size bytes must not pass.
    padded = der + b"\x00" * (2 * key.size - len(der)) if len(der) < 2 * key.size else der[: 2 * key.size]
    assert backend.verify(alg, key, data, padded) is False
    raw = r.to_bytes(key.size, "big") + s.to_bytes(key.size, "big")
    assert backend.verify(alg, key, data, raw) is True


def test_rsa_signature_with_leading_zero_stripped_is_rejected(backend_name):
    # RFC 8017 §8.2.2 step 1: length must be exactly k, so a JWS whose leading zero octet
    # was dropped is not a signature. Key: Wycheproof's 2048-bit SHA-256 sig_gen key;
    # b"msg-252" is a message whose PKCS#1 signature under it starts with 0x00.
    from cryptography.hazmat.primitives import serialization

    group = next(
        g
        for g in load_vector("wycheproof", "rsa_pkcs1_2048_sig_gen_test.json")["testGroups"]
        if g["sha"] == "SHA-256" and g["privateKey"]["publicExponent"] == "010001"
    )
    priv = serialization.load_pem_private_key(group["privateKeyPem"].encode(), None)
    backend = get_backend(backend_name)
    key = _public(priv)
    data = b"msg-252"
    sig = _sign("RS256", priv, data)
    assert sig[0] == 0 and len(sig) == key.size
    assert backend.verify("RS256", key, data, sig) is True
    assert backend.verify("RS256", key, data, sig[1:]) is False


def test_wrong_alg_or_key_type_returns_false(backend_name):
    backend = get_backend(backend_name)
    rsa_key, p256, p384 = _public(_priv("rsa2048")), _public(_priv("p256")), _public(_priv("p384"))
    p521 = _public(_priv("p521"))
    data = b"h.p"
    rs256 = _sign("RS256", _priv("rsa2048"), data)
    es256 = _sign("ES256", _priv("p256"), data)
    es384 = _sign("ES384", _priv("p384"), data)
    es512 = _sign("ES512", _priv("p521"), data)
    assert backend.verify("RS512", rsa_key, data, rs256) is False  # hash in DigestInfo must match alg
    assert backend.verify("RS384", rsa_key, data, rs256) is False
    assert backend.verify("ES256", rsa_key, data, es256) is False
    assert backend.verify("RS256", p256, data, rs256) is False
    assert backend.verify("ES384", p256, data, es256) is False
    assert backend.verify("ES256", p384, data, es384) is False
    # the curve must be the one the alg names (RFC 7518 §3.4), whatever the signature length
    assert backend.verify("ES512", p384, data, es384) is False
    assert backend.verify("ES384", p521, data, es512) is False
    assert backend.verify("ES512", rsa_key, data, es512) is False
    assert backend.verify("RS512", p521, data, es512) is False
    for alg in ("none", "HS256", "PS256", "ES256K", "EdDSA", ""):
        assert backend.verify(alg, rsa_key, data, rs256) is False
        assert backend.verify(alg, p256, data, es256) is False
    # the right pairs still work after all that (caches were not poisoned)
    assert backend.verify("RS256", rsa_key, data, rs256) is True
    assert backend.verify("ES256", p256, data, es256) is True
    assert backend.verify("ES384", p384, data, es384) is True
    assert backend.verify("ES512", p521, data, es512) is True


def test_rsa_modulus_too_short_for_digest_info_returns_false(backend_name):
    # RFC 8017 §9.2 step 3: k < tLen + 11 -> "intended encoded message length too short".
    backend = get_backend(backend_name)
    priv = rsa.generate_private_key(65537, 1024)  # hazmat allows 1024; jwk.parse_jwk would refuse it
    key = _public(priv)
    data = b"h.p"
    assert backend.verify("RS256", key, data, _sign("RS256", priv, data)) is True
    tiny = jwk.RSAKey(0xC5A1D7A3C5A7A0D9DFD5E3B1B7F4A2C9B9D2F3E5A7C1B3D5E7F9A1B3C5D7E9F1, 65537)  # 256-bit
    assert backend.verify("RS512", tiny, data, b"\x01" * tiny.size) is False


def test_backends_agree_on_random_corpus_of_valid_and_tampered_signatures():
    rng = random.Random(20240601)
    backends = [get_backend("cryptography"), get_backend("pure")]
    seen = {True: 0, False: 0}
    for alg, kind in ALG_KEYS:
        priv = _priv(kind)
        key = _public(priv)
        for _ in range(12):
            data = b64url.encode(rng.randbytes(rng.randrange(0, 300))).encode() + b"." + b"x" * rng.randrange(0, 40)
            sig = _sign(alg, priv, data)
            variants = [(data, sig, True)]
            i = rng.randrange(len(sig))
            variants.append((data, sig[:i] + bytes([sig[i] ^ (1 << rng.randrange(8))]) + sig[i + 1 :], False))
            if data:
                j = rng.randrange(len(data))
                variants.append((data[:j] + bytes([data[j] ^ 1]) + data[j + 1 :], sig, False))
            variants.append((data, sig[:-1], False))
            variants.append((data, rng.randbytes(len(sig)), False))
            for msg, s, expected in variants:
                results = [b.verify(alg, key, msg, s) for b in backends]
                assert results == [expected, expected], (alg, results)
                seen[expected] += 1
    assert seen[True] == 12 * len(ALG_KEYS) and seen[False] >= 200


def test_auto_picks_cryptography_when_importable():
    assert get_backend("auto").name == "cryptography"
    assert get_backend("auto") is get_backend("cryptography")
    assert get_backend("pure").name == "pure"


def test_pure_es_without_ecdsa_package_is_a_configuration_error(monkeypatch):
    # Not a bad signature: the deployment lacks a dependency (documented in pure.py).
    monkeypatch.setattr(pure, "_ecdsa", None)
    monkeypatch.setitem(sys.modules, "ecdsa", None)  # makes `import ecdsa` raise ImportError
    key = _public(_priv("p256"))
    data = b"h.p"
    sig = _sign("ES256", _priv("p256"), data)
    with pytest.raises(BackendUnavailableError):
        pure.Backend().verify("ES256", key, data, sig)
    # RSA is unaffected
    rkey = _public(_priv("rsa2048"))
    assert pure.Backend().verify("RS256", rkey, data, _sign("RS256", _priv("rsa2048"), data)) is True
    monkeypatch.undo()
    pure._ecdsa = None  # forget the cached "missing" verdict
    assert pure.Backend().verify("ES256", _public(_priv("p256")), data, sig) is True


class _Sha256OnlyHashlib:
    """What MicroPython's hashlib offers: sha256 and nothing of the SHA-512 family."""

    sha256 = staticmethod(hashlib.sha256)


def test_pure_rs384_rs512_fall_back_to_our_sha512_without_hashlib_support(monkeypatch):
    monkeypatch.setattr(pure, "hashlib", _Sha256OnlyHashlib)
    monkeypatch.setattr(pure, "_hashes", {})
    from nmosauth_lite.crypto import sha512 as ours

    backend = pure.Backend()
    data = b"h.p" * 50
    for alg, kind in (("RS256", "rsa2048"), ("RS384", "rsa3072"), ("RS512", "rsa2048"), ("ES384", "p384"),
                      ("ES512", "p521")):
        priv = _priv(kind)
        assert backend.verify(alg, _public(priv), data, _sign(alg, priv, data)) is True
    assert pure._hashes["sha512"] is ours.sha512
    assert pure._hashes["sha384"] is ours.sha384
    assert pure._hashes["sha256"] is hashlib.sha256


def test_importing_backends_does_no_work():
    # STYLE.md principle 4: no work at import time (no ecdsa import, no hash tables built).
    code = (
        "import sys\n"
        "import nmosauth_lite.crypto.pure as p, nmosauth_lite.crypto.pyca as c\n"
        "assert 'ecdsa' not in sys.modules\n"
        "assert 'nmosauth_lite.crypto.sha512' not in sys.modules\n"
        "assert c._ALGS == {} and p._hashes == {} and p._ecdsa is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_pure_module_follows_the_micropython_core_rules():
    # STYLE.md "The MicroPython-compatible core": no forbidden imports, no `raise ... from`.
    import ast

    forbidden = {"typing", "dataclasses", "enum", "abc", "functools", "re", "logging", "time",
                 "base64", "secrets", "__future__", "hmac", "struct"}
    for mod in ("pure.py", "sha512.py"):
        path = os.path.join(os.path.dirname(pure.__file__), mod)
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]] if node.level == 0 else []
            else:
                names = []
            assert not forbidden.intersection(names), (mod, names)
            assert not (isinstance(node, ast.Raise) and node.cause is not None), mod
            assert not isinstance(node, ast.Match), mod

