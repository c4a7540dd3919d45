"""The pure-Python crypto backend: RS256/384/512 through pow(), ES256/384/512 through `ecdsa`.

RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) re-encodes the expected EM and
compares all of it; the decrypted block is never parsed (parsers invite the
Bleichenbacher-2006 forgeries, CVE-2006-4339). ES256/ES384/ES512 (RFC 7518 §3.4) use the
`ecdsa` package, imported on first use; without it ES* verify raises
BackendUnavailableError, a configuration problem rather than a bad signature.
Core module: runs on MicroPython 1.27 (hashlib there has sha256 only, so
SHA-384/512 fall back to our .sha512 module).
"""

import hashlib

from ..compare import ct_equal
from ..errors import BackendUnavailableError

# RFC 8017 §9.2 note 1: DER of DigestInfo (with NULL parameters) up to the hash value.
_DIGEST_INFO = {
    "RS256": b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
    "RS384": b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
    "RS512": b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
}
_HASH_NAME = {"RS256": "sha256", "RS384": "sha384", "RS512": "sha512", "ES256": "sha256", "ES384": "sha384",
              "ES512": "sha512"}
_EC_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_ECDSA_CURVE = {"P-256": "NIST256p", "P-384": "NIST384p", "P-521": "NIST521p"}  # names in `ecdsa`
_MIN_PS_LEN = 8  # RFC 8017 §9.2 step 3: at least eight 0xFF octets

_hashes = {}  # hash name -> constructor, resolved on first use
_ecdsa = None  # the `ecdsa` module once imported; False when it is missing


def _hash(name):
    """hashlib's constructor when it has `name`, else ours (MicroPython: sha384/sha512)."""
    fn = _hashes.get(name)
    if fn is None:
        fn = getattr(hashlib, name, None)
        if fn is None:
            from . import sha512 as _sha512

            fn = getattr(_sha512, name)
        _hashes[name] = fn
    return fn


def _em_prefix(key, alg):
    """EMSA-PKCS1-v1_5 encoding minus H: 00 01 FF..FF 00 DigestInfo-prefix (RFC 8017 §9.2).

    Cached per key and alg in key.native["pure"]; None when the modulus is too short.
    """
    cache = key.native.get("pure")
    if cache is None:
        cache = {}
        key.native["pure"] = cache
    prefix = cache.get(alg)
    if prefix is None:
        t = _DIGEST_INFO[alg]
        hlen = int(t[-1])
        ps_len = key.size - len(t) - hlen - 3
        if ps_len < _MIN_PS_LEN:
            prefix = b""  # "intended encoded message length too short": nothing verifies
        else:
            prefix = b"\x00\x01" + b"\xff" * ps_len + b"\x00" + t
        cache[alg] = prefix
    return prefix


def _ecdsa_module():
    global _ecdsa
    if _ecdsa is None:
        try:
            import ecdsa

            import ecdsa.util  # noqa: F401 (sigdecode_string lives there)

            _ecdsa = ecdsa
        except ImportError:
            _ecdsa = False
    if _ecdsa is False:
        raise BackendUnavailableError("pure backend: ES256/ES384/ES512 need the 'ecdsa' package")
    return _ecdsa


def _ec_verifying_key(key):
    """The ecdsa.VerifyingKey for `key`, cached in key.native["pure"]; None if it is unusable."""
    cache = key.native.get("pure")
    if cache is None:
        cache = {}
        key.native["pure"] = cache
    vk = cache.get("vk")
    if vk is None:
        ecdsa = _ecdsa_module()
        curve = getattr(ecdsa, _ECDSA_CURVE[key.crv])
        raw = key.x.to_bytes(key.size, "big") + key.y.to_bytes(key.size, "big")
        try:
            # validate_point (the default) refuses points off the curve.
            vk = ecdsa.VerifyingKey.from_string(raw, curve=curve)
        except (ValueError, AssertionError):  # MalformedPointError is an AssertionError
            vk = False
        except OverflowError:
            vk = False
        cache["vk"] = vk
    return vk


class Backend:
    """RSA via pow(); ECDSA via the `ecdsa` package (lazily imported)."""

    name = "pure"

    def verify(self, alg, key, signing_input, signature):
        """True when `signature` is a valid JWS signature; False for anything else.

        Raises BackendUnavailableError only for ES* when `ecdsa` is not installed.
        """
        if alg in _DIGEST_INFO:
            if key.kty != "RSA":
                return False
            k = key.size
            # RFC 8017 §8.2.2 step 1: the signature is exactly k octets.
            if len(signature) != k:
                return False
            s = int.from_bytes(signature, "big")
            n = key.n
            # RFC 8017 §5.2.2 step 1: the representative must be in [0, n-1].
            if s >= n:
                return False
            prefix = _em_prefix(key, alg)
            if not prefix:
                return False
            em = prefix + _hash(_HASH_NAME[alg])(signing_input).digest()
            # RFC 8017 §8.2.2 step 4: compare whole encodings, never parse the block.
            return ct_equal(pow(s, key.e, n).to_bytes(k, "big"), em)
        crv = _EC_CURVE.get(alg)
        if crv is None or key.kty != "EC" or key.crv != crv:
            return False
        size = key.size
        # RFC 7518 §3.4: exactly R || S, each the coordinate length; DER is not JWS.
        if len(signature) != 2 * size:
            return False
        vk = _ec_verifying_key(key)
        if not vk:
            return False
        ecdsa = _ecdsa
        digest = _hash(_HASH_NAME[alg])(signing_input).digest()
        try:
            return bool(vk.verify_digest(signature, digest, sigdecode=ecdsa.util.sigdecode_string))
        except ecdsa.BadSignatureError:
            return False
        except (ValueError, TypeError):
            # ecdsa 0.19 raises TypeError when u1*G + u2*Q is the point at infinity
            # (Wycheproof PointDuplication vectors); SEC 1 §4.1.4 step 5 says: reject.
            return False
