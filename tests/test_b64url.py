"""b64url.py: strict unpadded base64url (RFC 7515 §2, RFC 4648 §5)."""

import base64
import os

import pytest

from nmosauth_lite import b64url
from nmosauth_lite.errors import MalformedTokenError


@pytest.mark.parametrize("n", range(0, 70))
def test_round_trip_every_length(n):
    data = os.urandom(n)
    text = b64url.encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert text == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert b64url.decode(text) == data
    assert b64url.decode(text.encode()) == data


@pytest.mark.parametrize(
    "bad",
    ["QQ=", "QQ==", "Q", "QUJD=", "a+b/", "ab c", "ab\nc", "ab\tc", "QR", "QUF", "QUJDRA=", "é", "ab$c", "Zm9v\x00"],
)
def test_rejects_non_strict_input(bad):
    with pytest.raises(MalformedTokenError):
        b64url.decode(bad)


def test_non_canonical_last_character_rejected():
    # 'QQ' and 'QR' both decode to b'A' in lenient decoders; only 'QQ' is canonical.
    assert b64url.decode("QQ") == b"A"
    for last in "RSTUVWXYZabcdef":
        with pytest.raises(MalformedTokenError):
            b64url.decode("Q" + last)
    assert b64url.decode("QUE") == b"AA"
    with pytest.raises(MalformedTokenError):
        b64url.decode("QUF")


def test_non_ascii_bytes_rejected():
    with pytest.raises(MalformedTokenError):
        b64url.decode(b"\xff\xfe")


def test_uint_round_trip():
    for v in (1, 255, 256, 65537, 2**2048 - 1):
        assert b64url.decode_uint(b64url.encode_uint(v)) == v
    assert b64url.encode_uint(1, 4) == "AAAAAQ"
    with pytest.raises(MalformedTokenError):
        b64url.decode_uint("")
