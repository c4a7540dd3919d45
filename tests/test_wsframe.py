"""wsframe.py: following WebSocket frame boundaries without buffering payloads, and close frames
(RFC 6455 §5.2, §5.3, §5.5.1), as the `protect` splice uses them to close a socket at its
token's expiry (issue 20 §3). Frames here are built by an encoder of the test's own (struct).
"""

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.wsframe import MAX_CLOSE_REASON, FrameCursor, FrameError, build_close


def frame(opcode, payload, masked, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if masked else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if masked else 0) | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, (0x80 if masked else 0) | 127]) + struct.pack("!Q", n)
    if masked:
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


sizes = st.sampled_from([0, 1, 2, 125, 126, 127, 300, 65535, 65536, 70000])
frames = st.lists(st.tuples(st.sampled_from([1, 2, 9, 10]), sizes), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(frames, st.booleans(), st.data())
def test_boundaries_are_found_across_any_split(spec, masked, data):
    parts = [frame(op, b"x" * (n if op < 8 else min(n, 125)), masked) for op, n in spec]
    stream = b"".join(parts)
    ends = set()
    pos = 0
    for p in parts:
        pos += len(p)
        ends.add(pos)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=8))))
    cursor = FrameCursor(masked=masked)
    last = 0
    for cut in cuts + [len(stream)]:
        assert cursor.feed(stream[last:cut]) == cut - last
        assert cursor.at_boundary == (cut in ends or cut == 0), cut
        last = cut


@settings(max_examples=100, deadline=None)
@given(frames, st.data())
def test_stop_passes_on_exactly_up_to_the_next_frame_end(spec, data):
    parts = [frame(op, b"y" * (n if op < 8 else min(n, 125)), False) for op, n in spec]
    stream = b"".join(parts)
    ends = []
    pos = 0
    for p in parts:
        pos += len(p)
        ends.append(pos)
    cut = data.draw(st.integers(0, len(stream)))
    cursor = FrameCursor(masked=False)
    cursor.feed(stream[:cut])
    n = cursor.feed(stream[cut:], stop=True)
    want = cut if cut == 0 or cut in ends else min(e for e in ends if e > cut)
    assert cut + n == want and cursor.at_boundary


def test_control_frames_between_fragments_are_boundaries_too():  # RFC 6455 §5.4
    stream = frame(1, b"ab", True, fin=False) + frame(9, b"", True) + frame(0, b"cd", True)
    c = FrameCursor(masked=True)
    assert c.feed(stream[:8]) == 8 and c.at_boundary  # after the first fragment
    assert not c.closed
    c.feed(frame(8, b"\x03\xe8", True))
    assert c.closed and c.at_boundary


@pytest.mark.parametrize("raw,why", [
    (bytes([0x83, 0x00]), "reserved opcode"),
    (bytes([0x8B, 0x00]), "reserved control opcode"),
    (bytes([0x81, 0x80, 0, 0, 0, 0]), "masked toward the client"),
    (bytes([0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), "64-bit length with the top bit set"),
    (bytes([0x89, 126, 0, 200]), "control frame over 125 bytes"),
    (bytes([0x09, 0x00]), "fragmented control frame"),
])
def test_hostile_headers_are_frame_errors(raw, why):
    with pytest.raises(FrameError):
        FrameCursor(masked=False).feed(raw)


def test_unmasked_frame_from_a_client_is_refused():  # RFC 6455 §5.1
    with pytest.raises(FrameError):
        FrameCursor(masked=True).feed(frame(1, b"hi", False))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([True, False, None]), st.booleans())
def test_any_bytes_give_a_count_or_a_frame_error(raw, masked, stop):
    try:
        n = FrameCursor(masked=masked).feed(raw, stop)
    except FrameError:
        return
    assert 0 <= n <= len(raw)


def test_close_frames_toward_client_and_server():  # RFC 6455 §5.5.1, §5.3
    assert build_close(1008, "token expired") == b"\x88\x0f\x03\xf0token expired"
    key = b"\x01\x02\x03\x04"
    masked = build_close(1008, "token expired", key)
    assert masked[:2] == b"\x88\x8f" and masked[2:6] == key
    assert bytes(b ^ key[i % 4] for i, b in enumerate(masked[6:])) == b"\x03\xf0token expired"
    c = FrameCursor(masked=True)
    c.feed(masked)
    assert c.closed and c.at_boundary


def test_close_reason_is_cut_to_fit_a_control_frame_never_inside_a_character():
    f = build_close(1000, "\u00e9" * 100)  # 200 bytes of UTF-8
    assert f[1] <= 125
    f[4:].decode("utf-8")
    assert len(f) - 4 <= MAX_CLOSE_REASON
    with pytest.raises(ValueError):
        build_close(999)
    with pytest.raises(ValueError):
        build_close(1000, "", b"abc")
