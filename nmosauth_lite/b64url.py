"""Strict unpadded base64url (RFC 4648 §5) as JOSE uses it (RFC 7515 §2, App. C).

Strict means: only the URL-safe alphabet, no padding, no whitespace, no length
that base64 cannot produce (len % 4 == 1), and canonical encodings only (the
unused low bits of the last character are zero), so every value has exactly one
text form. MicroPython's binascii skips bad characters silently, so there the
alphabet is checked by hand; on CPython binascii's strict mode does it in C.
"""

import binascii

from .errors import MalformedTokenError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters allowed last when 2 or 4 low bits of the last sextet are unused.
_LAST_REM2 = "AQgw"
_LAST_REM3 = "AEIMQUYcgkosw048"
_PAD = ("", None, "==", "=")
_BPAD = (b"", None, b"==", b"=")
_TO_STD = None  # bytes.translate table, built by _has_strict() on CPython
_STRICT = None  # whether binascii.a2b_base64 has strict_mode (CPython >= 3.11)


def _has_strict():
    global _STRICT, _TO_STD
    if _STRICT is None:
        try:
            binascii.a2b_base64(b"QQ==", strict_mode=True)
        except TypeError:
            _STRICT = False
            return False
        table = bytearray(range(256))
        for c in b"+/=":
            table[c] = ord("!")
        table[ord("-")] = ord("+")
        table[ord("_")] = ord("/")
        _TO_STD = bytes(table)
        _STRICT = True
    return _STRICT


def decode(text):
    """Decode str or bytes base64url text; raise MalformedTokenError unless strict."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeError:
            raise MalformedTokenError("base64url: non-ASCII input")
    rem = len(text) & 3
    if rem:
        if rem == 1:
            raise MalformedTokenError("base64url: impossible length")
        if text[-1] not in (_LAST_REM2 if rem == 2 else _LAST_REM3):
            raise MalformedTokenError("base64url: non-canonical or bad last character")
    if _STRICT or (_STRICT is None and _has_strict()):
        # One C pass: '-' '_' become '+' '/', while '+' '/' '=' (valid standard
        # base64 that must not slip through) become '!', which strict mode refuses.
        try:
            return binascii.a2b_base64(text.encode("ascii").translate(_TO_STD) + _BPAD[rem], strict_mode=True)
        except (ValueError, UnicodeError):
            raise MalformedTokenError("base64url: character outside the alphabet")
    for ch in text:
        if ch not in _ALPHABET:
            raise MalformedTokenError("base64url: character outside the alphabet")
    data = text.replace("-", "+").replace("_", "/") + _PAD[rem]
    try:
        return binascii.a2b_base64(data.encode())  # MicroPython's binascii takes bytes only
    except ValueError:
        raise MalformedTokenError("base64url: undecodable")


def to_std(data):
    """Fast path: ASCII bytes of base64url text (one or more dot-separated segments) mapped
    to the standard alphabet, for decode_std(); None when it holds '+', '/' or '=', or where
    strict decoding is not available (MicroPython): callers then use decode()."""
    if _STRICT or (_STRICT is None and _has_strict()):
        if 43 in data or 47 in data or 61 in data:  # '+' '/' '=' (an int test is one memchr)
            return None  # standard-alphabet characters: not base64url (decode() says so)
        # Two memchr-driven replaces cost a third of one per-byte translate() of the token;
        # any other stray character is left for strict a2b_base64 to refuse.
        return data.replace(b"-", b"+").replace(b"_", b"/")
    return None


def decode_std(std, text, start, end):
    """Decode text[start:end] from its to_std() form; None unless it is strict, canonical base64url.

    The same rules as decode() (decode() is what then says why a segment is refused);
    `text` is the ASCII original, read only for the last character's unused bits.
    """
    rem = (end - start) & 3
    if rem:
        if rem == 1 or text[end - 1] not in (_LAST_REM2 if rem == 2 else _LAST_REM3):
            return None
        seg = std[start:end] + _BPAD[rem]
    else:
        seg = std[start:end]
    try:
        return binascii.a2b_base64(seg, strict_mode=True)
    except ValueError:
        return None


def encode(data):
    """Encode bytes as unpadded base64url text (str)."""
    if isinstance(data, str):
        data = data.encode()
    out = binascii.b2a_base64(data).rstrip(b"\n=").decode("ascii")
    return out.replace("+", "-").replace("/", "_")


def decode_uint(text):
    """Decode a base64url big-endian unsigned integer (RFC 7518 §2 Base64urlUInt)."""
    raw = decode(text)
    if not raw:
        raise MalformedTokenError("base64url: empty integer")
    return int.from_bytes(raw, "big")


_NIBBLE_BITS = (0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4)


def bit_length(value):
    """int.bit_length() for non-negative ints; MicroPython 1.27 ints lack the method."""
    try:
        return value.bit_length()
    except AttributeError:
        if value <= 0:
            return 0
        h = "%x" % value
        return (len(h) - 1) * 4 + _NIBBLE_BITS[int(h[0], 16)]


def encode_uint(value, length=0):
    """Encode a non-negative int as Base64urlUInt (minimal length unless `length`)."""
    if length == 0:
        length = max(1, (bit_length(value) + 7) // 8)
    return encode(value.to_bytes(length, "big"))
