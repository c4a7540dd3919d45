"""Public JSON Web Keys (RFC 7517) for signature verification, and RFC 7638 thumbprints.

Owns: turning JWK / JWK Set JSON into RSAKey / ECKey objects a crypto backend can
use, filtering a key set the way an IS-10 resource server should (RS-11: keep
`use` absent or "sig", `key_ops` containing "verify" even when written as a plain
string, `alg` absent or allowed; skip the rest without failing), and the
thumbprint used as a stable key id. Leaves out private keys and JWE.
RSA keys shorter than 2048 bits are refused (IS-10 TOK-04, RFC 7518 §3.3); EC
points are checked to lie on their curve here so both backends agree.
"""

from . import b64url
from .errors import KeyFormatError, MalformedTokenError

MIN_RSA_BITS = 2048  # RFC 7518 §3.3; IS-10 TOK-04
MAX_RSA_BITS = 16384  # a bound on pow() work per verification
MAX_KEYS = 64  # keys kept from one JWK Set; IS-10 sets publish a handful
MAX_KID_LEN = 256

RSA_ALGS = ("RS256", "RS384", "RS512")
EC_ALGS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

# Short Weierstrass curves y^2 = x^3 - 3x + b (mod p): FIPS 186-4 §D.1.2.
_CURVES = {
    "P-256": (
        32,
        (1 << 256) - (1 << 224) + (1 << 192) + (1 << 96) - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    "P-384": (
        48,
        (1 << 384) - (1 << 128) - (1 << 96) + (1 << 32) - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
    # 521 bits: 66-byte coordinates (RFC 7518 §6.2.1.2), and 132-byte ES512 signatures (§3.4).
    "P-521": (
        66,
        (1 << 521) - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
    ),
}


class PublicKey:
    """Common part of a verification key. `native` caches backend objects by backend name."""

    kty = ""

    def __init__(self, kid=None, alg=None):
        self.kid = kid
        self.alg = alg
        self.withdrawn = False  # set by a key store when the issuer stops publishing it
        self.native = {}
        self._thumbprint = None

    def fits(self, alg):
        """True when this key's type (and curve) can verify a JWS with `alg` (RFC 7518 §3.1).

        A JWK's own `alg` member filters the key set against the allow-list when
        the set is loaded (IS-10 RS-11), but does not pin the token's alg within
        the RSA family: shared vector TV-11 (RS256 token, key marked RS512) is
        accepted by the default profile and refused by the RS512-only profile.
        Key type confusion (RSA key for ES*, EC key for RS*, wrong curve) is
        always refused.
        """
        raise NotImplementedError

    @property
    def thumbprint(self):
        """RFC 7638 SHA-256 thumbprint, base64url."""
        if self._thumbprint is None:
            import hashlib  # lazily: a resource server on the hot path never needs it

            self._thumbprint = b64url.encode(hashlib.sha256(self.canonical_json().encode()).digest())
        return self._thumbprint


class RSAKey(PublicKey):
    kty = "RSA"

    def __init__(self, n, e, kid=None, alg=None):
        super().__init__(kid, alg)
        self.n = n
        self.e = e
        self.size = (b64url.bit_length(n) + 7) // 8  # modulus length in bytes, k in RFC 8017

    def fits(self, alg):
        return alg in RSA_ALGS

    def canonical_json(self):
        # RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
        return '{"e":"%s","kty":"RSA","n":"%s"}' % (b64url.encode_uint(self.e), b64url.encode_uint(self.n))

    def to_jwk(self):
        d = {"kty": "RSA", "n": b64url.encode_uint(self.n), "e": b64url.encode_uint(self.e)}
        if self.kid is not None:
            d["kid"] = self.kid
        if self.alg is not None:
            d["alg"] = self.alg
        d["use"] = "sig"
        return d


class ECKey(PublicKey):
    kty = "EC"

    def __init__(self, crv, x, y, kid=None, alg=None):
        super().__init__(kid, alg)
        self.crv = crv
        self.x = x
        self.y = y
        self.size = _CURVES[crv][0]  # coordinate length in bytes

    def fits(self, alg):
        return EC_ALGS.get(alg) == self.crv

    def canonical_json(self):
        return '{"crv":"%s","kty":"EC","x":"%s","y":"%s"}' % (
            self.crv,
            b64url.encode_uint(self.x, self.size),
            b64url.encode_uint(self.y, self.size),
        )

    def to_jwk(self):
        d = {
            "kty": "EC",
            "crv": self.crv,
            "x": b64url.encode_uint(self.x, self.size),
            "y": b64url.encode_uint(self.y, self.size),
            "use": "sig",
        }
        if self.kid is not None:
            d["kid"] = self.kid
        if self.alg is not None:
            d["alg"] = self.alg
        return d


def _member(obj, name, required=True):
    v = obj.get(name)
    if v is None:
        if required:
            raise KeyFormatError("JWK: missing '%s'" % name)
        return None
    if not isinstance(v, str):
        raise KeyFormatError("JWK: '%s' must be a string" % name)
    return v


def _uint(obj, name):
    try:
        return b64url.decode_uint(_member(obj, name))
    except MalformedTokenError:
        raise KeyFormatError("JWK: '%s' is not strict base64url" % name)


def is_on_curve(crv, x, y):
    size, p, b = _CURVES[crv]
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x - 3 * x + b)) % p == 0


def parse_jwk(obj):
    """Build an RSAKey or ECKey from one JWK dict; raise KeyFormatError when unusable."""
    if not isinstance(obj, dict):
        raise KeyFormatError("JWK: not a JSON object")
    kty = _member(obj, "kty")
    kid = _member(obj, "kid", required=False)
    if kid is not None and len(kid) > MAX_KID_LEN:
        raise KeyFormatError("JWK: kid too long")
    alg = _member(obj, "alg", required=False)
    if "d" in obj or "p" in obj:
        raise KeyFormatError("JWK: private key material in a public key set")
    if kty == "RSA":
        if alg is not None and alg not in RSA_ALGS:
            raise KeyFormatError("JWK: RSA key with alg " + alg)
        n = _uint(obj, "n")
        e = _uint(obj, "e")
        bits = b64url.bit_length(n)
        if bits < MIN_RSA_BITS:
            raise KeyFormatError("JWK: RSA modulus shorter than %d bits" % MIN_RSA_BITS)
        if bits > MAX_RSA_BITS:
            raise KeyFormatError("JWK: RSA modulus too long")
        if e < 3 or not (e & 1) or e >= n:
            raise KeyFormatError("JWK: bad RSA public exponent")
        if not (n & 1):
            raise KeyFormatError("JWK: RSA modulus is even")
        return RSAKey(n, e, kid, alg)
    if kty == "EC":
        crv = _member(obj, "crv")
        if crv not in _CURVES:
            raise KeyFormatError("JWK: unsupported curve " + crv[:16])
        if alg is not None and EC_ALGS.get(alg) != crv:
            raise KeyFormatError("JWK: EC key with alg " + alg)
        size = _CURVES[crv][0]
        try:
            xr = b64url.decode(_member(obj, "x"))
            yr = b64url.decode(_member(obj, "y"))
        except MalformedTokenError:
            raise KeyFormatError("JWK: EC coordinate is not strict base64url")
        if len(xr) != size or len(yr) != size:  # RFC 7518 §6.2.1.2: full length
            raise KeyFormatError("JWK: EC coordinate has the wrong length")
        x = int.from_bytes(xr, "big")
        y = int.from_bytes(yr, "big")
        if not is_on_curve(crv, x, y):
            raise KeyFormatError("JWK: EC point is not on the curve")
        return ECKey(crv, x, y, kid, alg)
    raise KeyFormatError("JWK: unsupported kty " + kty[:16])


def _usable_for_signatures(obj, allowed_algs):
    use = obj.get("use")
    if use is not None and use != "sig":
        return False
    ops = obj.get("key_ops")
    if ops is not None:
        # RFC 7517 §4.3 says array; the IS-10 schema and the AMWA mock AS use a string (RS-11).
        if isinstance(ops, str):
            ops = [ops]
        if not isinstance(ops, list) or "verify" not in ops:
            return False
    alg = obj.get("alg")
    if alg is not None and allowed_algs is not None and alg not in allowed_algs:
        return False
    return True


def parse_jwks(obj, allowed_algs=None):
    """Keys usable for verification from a JWK Set (object, or a bare array: §12 A16).

    Returns (keys, skipped) where skipped is the number of entries left out.
    Raises KeyFormatError only when the set itself is not a JWK Set.
    """
    if isinstance(obj, dict):
        entries = obj.get("keys")
        if not isinstance(entries, list):
            raise KeyFormatError("JWKS: 'keys' must be an array")
    elif isinstance(obj, list):
        entries = obj
    else:
        raise KeyFormatError("JWKS: not a JSON object")
    keys = []
    skipped = 0
    for entry in entries:
        if len(keys) >= MAX_KEYS:
            skipped += 1
            continue
        if not isinstance(entry, dict) or not _usable_for_signatures(entry, allowed_algs):
            skipped += 1
            continue
        try:
            keys.append(parse_jwk(entry))
        except KeyFormatError:
            skipped += 1
    return keys, skipped
