"""Ending connections and listeners the same way on every supported CPython (3.11 to 3.13).

asyncio's TLS transport is not equally forgiving on the interpreters devices ship. A second
`close()` of a TLS transport drops its protocol; on CPython 3.11.2 (what Debian bookworm and
Raspberry Pi OS bookworm ship) a later `abort()` then raises AttributeError from
asyncio/sslproto.py (3.11.7, 3.12 and 3.13 check for it). 3.12 made `Server.wait_closed()`
wait for every accepted connection, so an unbounded wait can hang a shutdown. Every place in
the package that ends a transport, a stream writer or a server goes through here, so the rules
live in one place: `close` (polite: buffered data flushed, TLS close_notify) runs at most once
per transport, `abort` (now) is a no-op on a transport that is already gone, `close_writers`
and `close_server` wait a bounded time. None of them raises for a transport or writer in any state.
"""

import asyncio

__all__ = ["abort", "close", "close_server", "close_writers", "stop_accepting"]


def _transport(obj):
    """The transport of a StreamWriter, or `obj` itself (a transport, or None)."""
    if isinstance(obj, asyncio.StreamWriter):
        return obj.transport
    return obj


def close(obj):
    """Close a transport or StreamWriter politely (flush, TLS close_notify), once: a transport
    already closing is left alone, because a second close() is what breaks abort() on 3.11.2."""
    t = _transport(obj)
    if t is None or t.is_closing():
        return
    t.close()


def abort(obj):
    """Drop a transport or StreamWriter now (no close_notify, buffered data lost). Safe on a
    transport already closing or closed, on every supported Python."""
    t = _transport(obj)
    if t is None:
        return
    # asyncio's TLS transport, closed twice by someone else: its protocol is gone and abort()
    # on 3.11.2 would raise. There is nothing left to abort from here: the first close
    # is shutting the connection down within its ssl_shutdown_timeout.
    if getattr(t, "_ssl_protocol", True) is None:
        return
    t.abort()


async def _wait_closed(writer):
    try:
        await writer.wait_closed()
    except OSError:  # the reason the connection ended (reset, TLS alert, shutdown time-out)
        pass


async def close_writers(writers, timeout):
    """Close StreamWriters politely, wait at most `timeout` seconds for them to finish, then
    abort whatever has not (a peer that never answers close_notify must not hold us)."""
    writers = list(writers)
    if not writers:
        return
    for w in writers:
        close(w)
    waits = [asyncio.ensure_future(_wait_closed(w)) for w in writers]
    _, pending = await asyncio.wait(waits, timeout=timeout)
    for f in pending:
        f.cancel()
    for w in writers:
        abort(w)


def stop_accepting(server):
    """Stop an asyncio Server listening now, without waiting (close_server later waits)."""
    server.close()


async def close_server(server, timeout):
    """Stop an asyncio Server listening and wait at most `timeout` seconds for it to say it is
    closed (3.12+ also waits for its accepted connections: abort those first)."""
    stop_accepting(server)
    try:
        await asyncio.wait_for(server.wait_closed(), timeout)
    except asyncio.TimeoutError:
        pass
