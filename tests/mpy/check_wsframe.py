"""wsframe: WebSocket frame boundaries and close frames (RFC 6455 §5.2, §5.5.1) on MicroPython,
as `protect` uses them to close a spliced socket at its token's expiry (issue 20 §3)."""

import harness
from nmosauth_lite.wsframe import FrameCursor, FrameError, build_close


def _frame(opcode, n, masked):
    b1 = 0x80 if masked else 0
    if n < 126:
        head = bytes((0x80 | opcode, b1 | n))
    else:
        head = bytes((0x80 | opcode, b1 | 126, n >> 8, n & 0xFF))
    return head + (b"\x01\x02\x03\x04" if masked else b"") + b"z" * n


def check_boundaries_across_splits():
    stream = _frame(1, 5, True) + _frame(2, 300, True) + _frame(9, 0, True)
    ends = (11, 11 + 308, 11 + 308 + 6)
    for cut in range(len(stream) + 1):
        c = FrameCursor(masked=True)
        c.feed(stream[:cut])
        harness.eq(c.at_boundary, cut == 0 or cut in ends, "boundary at %d" % cut)
        n = c.feed(stream[cut:], True)
        want = cut if (cut == 0 or cut in ends) else min(e for e in ends if e > cut)
        harness.eq(cut + n, want, "stop at %d" % cut)


def check_hostile_headers():
    for raw in (bytes((0x83, 0)), bytes((0x81, 0x80, 0, 0, 0, 0)), bytes((0x89, 126, 0, 200)), bytes((0x09, 0)),
                bytes((0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1))):
        harness.raises(FrameError, FrameCursor(masked=False).feed, raw)


def check_close_frames():
    harness.eq(build_close(1008, "token expired"), b"\x88\x0f\x03\xf0token expired", "to a client")
    masked = build_close(1008, "token expired", b"\x01\x02\x03\x04")
    c = FrameCursor(masked=True)
    c.feed(masked)
    harness.true(c.closed and c.at_boundary, "masked close parsed")
    harness.raises(ValueError, build_close, 999)
