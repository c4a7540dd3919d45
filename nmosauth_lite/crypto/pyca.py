"""The `cryptography` (pyca/OpenSSL) backend: the fast path for RS256/384/512 and ES256/384/512.

Owns turning a jwk.RSAKey/ECKey into a cached native public key and one verify
call per token. RS* is RSASSA-PKCS1-v1_5 (RFC 7518 §3.3, RFC 8017 §8.2); ES* takes
the JWS raw R || S form (RFC 7518 §3.4) and re-encodes it as DER for OpenSSL.
CPython only (not a core module). Importing it imports cryptography and nothing
else happens: padding and hash objects are built on the first verify.
"""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NAME = "cryptography"
_KNOWN = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")

# alg -> (kty, curve or None, padding or signature algorithm, hash or None);
# replaced by _setup() on first use and then only read. The EC modules pull in
# cryptography's whole OpenSSL cipher binding (~15 ms at a cold start), so ES
# entries (and `ec`) are added on the first ES* verify only: an
# RS512-only Node never pays for them.
_ALGS = {}
ec = None
encode_dss_signature = None


def _setup(with_ec):
    global _ALGS, ec, encode_dss_signature
    pkcs1 = padding.PKCS1v15()
    table = {
        "RS256": ("RSA", None, pkcs1, hashes.SHA256()),
        "RS384": ("RSA", None, pkcs1, hashes.SHA384()),
        "RS512": ("RSA", None, pkcs1, hashes.SHA512()),
    }
    if with_ec:
        from cryptography.hazmat.primitives.asymmetric import ec as _ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature as _enc

        ec, encode_dss_signature = _ec, _enc
        table["ES256"] = ("EC", "P-256", _ec.ECDSA(hashes.SHA256()), None)
        table["ES384"] = ("EC", "P-384", _ec.ECDSA(hashes.SHA384()), None)
        table["ES512"] = ("EC", "P-521", _ec.ECDSA(hashes.SHA512()), None)
    # Built whole, then published in one assignment, so a concurrent first verify
    # never sees a half-filled table.
    _ALGS = table


def _native(key):
    """Build and cache the cryptography public key for `key`; None when OpenSSL refuses it."""
    try:
        if key.kty == "RSA":
            pub = rsa.RSAPublicNumbers(key.e, key.n).public_key()
        else:
            curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[key.crv]()
            point = b"\x04" + key.x.to_bytes(key.size, "big") + key.y.to_bytes(key.size, "big")
            pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except (ValueError, OverflowError, KeyError):
        # jwk.parse_jwk already refuses such keys; a hand-built one just verifies nothing.
        return None
    key.native[NAME] = pub
    return pub


class Backend:
    """verify() -> bool; never raises for a bad, short, long or garbage signature."""

    name = NAME

    def verify(self, alg, key, signing_input, signature):
        spec = _ALGS.get(alg)
        if spec is None:
            if alg not in _KNOWN:
                return False  # not an algorithm we verify (jws filters these earlier)
            _setup(alg[0] == "E" or ec is not None)
            spec = _ALGS[alg]
        kty, crv, scheme, digest = spec
        if key.kty != kty:
            return False
        pub = key.native.get(NAME)
        if pub is None:
            if crv is not None and key.crv != crv:
                return False
            pub = _native(key)
            if pub is None:
                return False
        try:
            if digest is not None:
                # RFC 8017 §8.2.2 step 1: exactly k octets (OpenSSL checks too; fail fast).
                if len(signature) != key.size:
                    return False
                pub.verify(signature, signing_input, scheme, digest)
                return True
            size = key.size
            # RFC 7518 §3.4: R || S, each exactly the coordinate length; DER is refused.
            if len(signature) != 2 * size or key.crv != crv:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            pub.verify(encode_dss_signature(r, s), signing_input, scheme)
            return True
        except (InvalidSignature, ValueError):
            return False
