"""b64url: strict unpadded base64url. MicroPython's binascii skips bad characters
silently, so every rejection here is a check that our own alphabet test runs there."""

import harness
from nmosauth_lite import b64url
from nmosauth_lite.errors import MalformedTokenError, TokenError


def check_decodes_rfc4648_test_vectors():
    # RFC 4648 §10, in the URL-safe alphabet without padding.
    for text, raw in (("", b""), ("Zg", b"f"), ("Zm8", b"fo"), ("Zm9v", b"foo"), ("Zm9vYg", b"foob"),
                      ("Zm9vYmE", b"fooba"), ("Zm9vYmFy", b"foobar")):
        harness.eq(b64url.decode(text), raw, "decode " + text)
        harness.eq(b64url.decode(text.encode()), raw, "decode bytes " + text)
        harness.eq(b64url.encode(raw), text, "encode " + text)


def check_url_safe_alphabet():
    harness.eq(b64url.decode("-_-_"), b"\xfb\xff\xbf", "'-' and '_'")
    harness.eq(b64url.encode(b"\xfb\xff\xbf"), "-_-_", "encode to '-' and '_'")


def check_round_trips_every_length():
    data = bytes(range(256))
    for n in range(0, 70):
        chunk = data[n : n + n]
        text = b64url.encode(chunk)
        harness.true("=" not in text and "+" not in text and "/" not in text, "alphabet of encode(%d)" % n)
        harness.eq(b64url.decode(text), chunk, "round trip %d" % n)


def check_rejects_characters_outside_the_alphabet():
    for bad in ("QU!D", "QUJ$", "Q*JD", "QUJD QUJD", "QUJD\nQUJD", "QU\tD", "QUJD.", "QUJ@", "QUJ\x00",
                "QUJ\u00e9", "\u00e9QUJ", "QUJ~"):
        harness.raises(MalformedTokenError, b64url.decode, bad)


def check_rejects_standard_base64_characters_and_padding():
    for bad in ("QUJ+", "QUJ/", "+/+/", "QQ==", "QUI=", "QUJD====", "=QUJ", "QQ=A"):
        harness.raises(MalformedTokenError, b64url.decode, bad)


def check_rejects_impossible_lengths():
    for bad in ("Q", "QUJDQ", "QUJDQUJDQ"):
        harness.raises(MalformedTokenError, b64url.decode, bad)


def check_rejects_non_canonical_trailing_bits():
    # RFC 4648 §3.5: the unused low bits of the last character must be zero,
    # so each value has one text form ("QQ" is b"A"; "QR" is the same bytes, non-canonical).
    harness.eq(b64url.decode("QQ"), b"A", "canonical QQ")
    harness.eq(b64url.decode("QUI"), b"AB", "canonical QUI")
    harness.eq(b64url.decode("Zm8"), b"fo", "canonical Zm8")
    for bad in ("QR", "QZ", "Q_", "QUJ", "QU_", "Zm9"):
        harness.raises(MalformedTokenError, b64url.decode, bad)


def check_rejects_non_ascii_bytes():
    harness.raises(MalformedTokenError, b64url.decode, b"QUJ\xff")
    harness.raises(MalformedTokenError, b64url.decode, bytearray(b"\x80QUJ"))


def check_errors_are_token_errors():
    e = harness.raises(TokenError, b64url.decode, "QU!D")
    harness.true("base64url" in e.message, "message names base64url")


def check_uint_round_trip():
    for value in (1, 255, 256, 65537, (1 << 64) - 1, 1 << 2047):
        text = b64url.encode_uint(value)
        harness.eq(b64url.decode_uint(text), value, "uint %d bits" % len(text))
    harness.eq(b64url.encode_uint(65537), "AQAB", "65537 is AQAB")
    harness.eq(b64url.encode_uint(1, 4), "AAAAAQ", "fixed length")
    harness.eq(b64url.decode_uint("AQAB"), 65537, "decode AQAB")
    harness.raises(MalformedTokenError, b64url.decode_uint, "")
