"""Compact JWS (RFC 7515 §7.1) parsing and signature verification for JWT access tokens.

Owns: size caps checked before any decoding, the three-segment shape, strict
base64url, the JOSE header rules (alg allow-list that is never optional; `none`
and HS* refused whatever the configuration; unknown `crit` refused, RFC 7515
§4.1.11; `jku`/`x5u`/`jwk`/`x5c` never used for key selection, IS-10 RS-12),
and trying trusted keys in order (kid first, RS-05) with a bounded number of
verifications. Backends return True/False; this module decides what that means.
Leaves out JWE, JSON serialization, detached and unencoded payloads (RFC 7797).
"""

from . import b64url
from .errors import MalformedTokenError, SignatureError, UnsupportedAlgorithmError
from .jsonshim import loads, object_or_none

MAX_TOKEN_LEN = 16384  # tokens ride in one header (IS-10 TOK-08); our HTTP core allows 32 KiB per head
MAX_HEADER_SEGMENT = 2048  # base64url chars of the JOSE header; a real one is < 200
MAX_SIGNATURE_SEGMENT = 1368  # base64url of a 8192-bit RSA signature (1024 bytes)
MAX_VERIFY_ATTEMPTS = 4  # keys tried per token: bounds the work a forged token costs
MAX_HEADER_CACHE = 64  # validated header segments remembered (one issuer uses one or two)

SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")  # ES512: IPMX device profile
DEFAULT_ALGORITHMS = SUPPORTED_ALGORITHMS  # project decision, IS-10 RS-12
IS10_STRICT_ALGORITHMS = ("RS512",)  # IS-10 TOK-03: access tokens are RS512
UNDERSTOOD_CRIT = ()  # RFC 7515 §4.1.11: we implement no header extensions
# IS-10 RS-18: accept JWT, at+jwt (RFC 9068) and no typ; compared case-insensitively (RFC 7515 §4.1.9).
ACCEPTED_TYP = ("jwt", "at+jwt", "application/jwt", "application/at+jwt")


def check_algorithms(algorithms):
    """Validate a configured allow-list; returns it as a tuple. Raises ValueError."""
    algs = tuple(algorithms)
    if not algs:
        raise ValueError("the algorithm allow-list is empty")
    for a in algs:
        if a not in SUPPORTED_ALGORITHMS:
            raise ValueError("algorithm %s is not supported (choose from %s)" % (a, " ".join(SUPPORTED_ALGORITHMS)))
    return algs


class JWS:
    """A parsed compact JWS whose signature is not yet verified."""

    def __init__(self, header, claims, signing_input, signature, alg, kid):
        self.header = header
        self.claims = claims
        self.signing_input = signing_input
        self.signature = signature
        self.alg = alg
        self.kid = kid


# header segment -> (header dict, allow-list it was checked against, alg, kid). Tokens
# from one issuer share their header segment, so most first-seen tokens skip this work.
_header_cache = {}


def parse(token, algorithms=DEFAULT_ALGORITHMS):
    """Split, decode and check a compact JWS carrying a JWT claims set.

    Raises MalformedTokenError or UnsupportedAlgorithmError (both TokenError).
    """
    header, alg, kid, claims, signing_input, signature = split(token, algorithms)
    return JWS(header, claims, signing_input, signature, alg, kid)


def split(token, algorithms=DEFAULT_ALGORITHMS):
    """`parse` without the JWS object: (header, alg, kid, claims, signing_input, signature).

    The success path decodes the claims and the signature from one ASCII copy of the
    token mapped to the standard base64 alphabet (one C pass); on any defect the
    segment-by-segment path below runs, so every refusal keeps its exact message.
    """
    if not isinstance(token, str):
        raise MalformedTokenError("token is not text")
    n = len(token)
    if n > MAX_TOKEN_LEN:
        raise MalformedTokenError("token too long")
    first = token.find(".")
    second = token.find(".", first + 1)
    if first <= 0 or second < 0 or token.find(".", second + 1) >= 0:
        raise MalformedTokenError("token is not three dot-separated segments")
    if first > MAX_HEADER_SEGMENT or n - second - 1 > MAX_SIGNATURE_SEGMENT:
        raise MalformedTokenError("token segment too long")
    segment = token[:first]
    hit = _header_cache.get(segment)
    if hit is None or hit[1] is not algorithms:
        header = check_header(loads_object(b64url.decode(segment), "JOSE header"), algorithms)
        if len(_header_cache) >= MAX_HEADER_CACHE:
            _header_cache.clear()
        hit = (header, algorithms, header["alg"], header.get("kid"))
        _header_cache[segment] = hit
    try:
        ascii_token = token.encode("ascii")
    except UnicodeError:
        ascii_token = None
    std = None if ascii_token is None else b64url.to_std(ascii_token)
    if std is not None:
        raw = b64url.decode_std(std, token, first + 1, second)
        claims = None if raw is None else object_or_none(raw)
        signature = b64url.decode_std(std, token, second + 1, n) if claims is not None else None
        if signature:
            return hit[0], hit[2], hit[3], claims, ascii_token[:second], signature
    # The exact refusal (or a MicroPython interpreter): segment by segment.
    claims = loads_object(b64url.decode(token[first + 1 : second]), "claims set")
    signature = b64url.decode(token[second + 1 :])
    if not signature:
        raise MalformedTokenError("signature is empty")
    return hit[0], hit[2], hit[3], claims, token[:second].encode(), signature


def check_header(header, algorithms):
    """JOSE header rules (RFC 7515 §4, IS-10 RS-12); returns the header."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise MalformedTokenError("JOSE header has no alg")
    if alg not in algorithms:
        # Covers none and HS* (never in SUPPORTED_ALGORITHMS): RS-12, RFC 8725 §3.1.
        raise UnsupportedAlgorithmError("alg %s not allowed" % alg[:16])
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise MalformedTokenError("crit must be a non-empty array")
        for name in crit:
            if name not in UNDERSTOOD_CRIT:
                raise UnsupportedAlgorithmError("crit names an extension we do not understand")
    if "b64" in header:  # RFC 7797 unencoded payloads change the signing input; not supported
        raise UnsupportedAlgorithmError("b64 header parameter not supported")
    # A member that is present must have its type: null is not "absent" (RFC 7515 §4.1).
    if "typ" in header:
        typ = header["typ"]
        if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYP:
            raise MalformedTokenError("typ is not a JWT type")
    if "kid" in header and not isinstance(header["kid"], str):
        raise MalformedTokenError("kid is not a string")
    return header


def loads_object(raw, what):
    try:
        obj = loads(raw)
    except ValueError:
        raise MalformedTokenError(what + " is not JSON")
    if not isinstance(obj, dict):
        raise MalformedTokenError(what + " is not a JSON object")
    return obj


def verify(jws, keys, backend):
    """Return the first key in `keys` that verifies `jws`; raise SignatureError if none does.

    Keys whose type does not fit the alg are skipped (RFC 7518 §3.1: no
    alg/key-type confusion). A key whose kid equals the header's kid is tried
    first; the others follow (IS-10 RS-05), up to MAX_VERIFY_ATTEMPTS verifications.
    """
    return verify_parts(jws.alg, jws.kid, jws.signing_input, jws.signature, keys, backend)


def verify_parts(alg, kid, signing_input, signature, keys, backend):
    """`verify` for the pieces `split` returns: two passes over `keys`, no generator."""
    tried = 0
    if kid is not None:
        for k in keys:  # the keys the header names (RS-05)
            if k.kid == kid and not k.withdrawn and k.fits(alg):
                if tried >= MAX_VERIFY_ATTEMPTS:
                    break
                tried += 1
                if backend.verify(alg, k, signing_input, signature):
                    return k
    fitting = tried
    if tried < MAX_VERIFY_ATTEMPTS:
        for k in keys:  # then every other usable key that fits alg
            if (kid is None or k.kid != kid) and not k.withdrawn and k.fits(alg):
                fitting += 1
                if tried >= MAX_VERIFY_ATTEMPTS:
                    break
                tried += 1
                if backend.verify(alg, k, signing_input, signature):
                    return k
    if not fitting:
        raise SignatureError("no trusted key fits alg %s" % alg)
    raise SignatureError("signature not verified by any trusted key")
