"""The spliced WebSocket behind `protect`: bytes both ways after the upstream's 101, until the
token's end (issue 20 §3; IS-10 §12 C3 leaves expiry open).

With a deadline (Guard.ws_deadline) each direction is followed frame by frame (wsframe, headers
only): at the deadline the frame in flight ends (bounded by FINISH_FRAME), a close frame with
code 1008 goes to the client and a masked one to the upstream (RFC 6455 §5.3, §7.4.1), their
answers are dropped for CLOSE_LINGER, and both connections end. Bytes that are not WebSocket
framing end the relay. Without a deadline the bytes are copied as they come.
"""

import asyncio
import logging
import os
import time

from ..guard import WS_EXPIRED_CODE, WS_EXPIRED_REASON
from ..wsframe import FrameCursor, FrameError, build_close

log = logging.getLogger("nmosauth_lite.proxy")

READ_SIZE = 65536
SPLICE_LINGER = 2.0  # after one side of a spliced WebSocket ends, the other gets this long
FINISH_FRAME = 2.0  # at the deadline, a frame in flight gets this long to end before a cut
CLOSE_LINGER = 2.0  # after the close frames, the peers' closing answers are awaited this long
EXPIRED = "expired"


async def splice(reader, writer, upstream, leftover=b"", deadline=None, clock=time.time):
    """Relay client (reader, writer) <-> upstream (a connection with .reader, .writer, .abort()).
    `leftover`: upstream bytes read past its 101. `deadline`: UNIX time to close at, or None."""
    if deadline is None:
        if leftover:
            writer.write(leftover)
        a = asyncio.ensure_future(_pump(reader, upstream.writer))
        b = asyncio.ensure_future(_pump(upstream.reader, writer))
    else:
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + max(0.0, deadline - clock())
        down = FrameCursor(masked=False)
        try:
            down.feed(leftover)
        except FrameError:
            upstream.abort()
            writer.transport.abort()
            return
        if leftover:
            writer.write(leftover)
        to_upstream = build_close(WS_EXPIRED_CODE, WS_EXPIRED_REASON, os.urandom(4))
        to_client = build_close(WS_EXPIRED_CODE, WS_EXPIRED_REASON)
        a = asyncio.ensure_future(_pump_frames(reader, upstream.writer, FrameCursor(masked=True), stop_at,
                                               to_upstream))
        b = asyncio.ensure_future(_pump_frames(upstream.reader, writer, down, stop_at, to_client))
    try:
        done, pending = await asyncio.wait((a, b), return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=SPLICE_LINGER + FINISH_FRAME)
        if any(t.done() and not t.cancelled() and t.result() == EXPIRED for t in (a, b)):
            log.info("WebSocket closed at its token's expiry (code %d)", WS_EXPIRED_CODE)
            await asyncio.wait([asyncio.ensure_future(_discard(reader, FrameCursor())),
                                asyncio.ensure_future(_discard(upstream.reader, FrameCursor()))],
                               timeout=CLOSE_LINGER)
    finally:
        a.cancel()
        b.cancel()
        upstream.abort()


async def _pump(src, dst):
    """Copy until EOF, then pass the EOF on (half-close where the transport can, else close)."""
    try:
        while True:
            data = await src.read(READ_SIZE)
            if not data:
                break
            dst.write(data)
            await dst.drain()
        _pass_eof(dst)
    except (OSError, RuntimeError):
        dst.transport.abort()


def _pass_eof(dst):
    if dst.can_write_eof():
        dst.write_eof()
    else:
        dst.close()


async def _pump_frames(src, dst, cursor, stop_at, close_frame):
    """_pump that follows frames; at `stop_at` (loop time) it ends at a frame boundary and sends
    `close_frame` (unless a close already went this way). Returns EXPIRED then, else None.

    Until the deadline the loop is _pump's plus cursor.feed: a timer cancels the pending read
    (StreamReader.read loses nothing when cancelled) instead of a wait_for around every read."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    expired = []

    def expire():
        expired.append(True)
        task.cancel()
    timer = loop.call_at(stop_at, expire)
    try:
        try:
            while True:
                data = await src.read(READ_SIZE)
                if not data:
                    _pass_eof(dst)
                    return None
                cursor.feed(data)
                dst.write(data)
                await dst.drain()
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()  # our own timer's cancel, consumed here
        finally:
            timer.cancel()
        finish_by = loop.time() + FINISH_FRAME
        while not cursor.at_boundary:  # the frame in flight ends first (a read was cut, not a write)
            try:
                data = await asyncio.wait_for(src.read(READ_SIZE), max(0.0, finish_by - loop.time()))
            except asyncio.TimeoutError:
                raise FrameError("a frame did not end in time for the close")
            if not data:
                _pass_eof(dst)
                return None
            n = cursor.feed(data, True)
            dst.write(data if n == len(data) else data[:n])
            await dst.drain()
        if not cursor.closed:
            dst.write(close_frame)
            await dst.drain()
        return EXPIRED
    except FrameError as exc:
        log.warning("WebSocket relay cut: %s", exc)
        dst.transport.abort()
    except (OSError, RuntimeError):
        dst.transport.abort()
    return None


async def _discard(src, cursor):
    """Read and drop what a peer sends after our close frame, until its own close frame has
    arrived whole (RFC 6455 §5.5.1: its answer) or EOF. The cursor starts at a boundary: the
    pump stopped at one."""
    try:
        while True:
            data = await src.read(READ_SIZE)
            if not data:
                return
            cursor.feed(data)
            if cursor.closed and cursor.at_boundary:
                return
    except (OSError, RuntimeError, FrameError):
        pass
