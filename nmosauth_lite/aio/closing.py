"""Ending transports, stream writers and servers alike on every supported CPython: close once
(a second close() breaks abort() on Debian's 3.11.2), abort in any state, wait bounded (3.12's
Server.wait_closed() waits for every connection). See docs/platforms.md."""

import asyncio


def _transport(obj):
    return obj.transport if isinstance(obj, asyncio.StreamWriter) else obj


def close(obj):
    """Close a transport or StreamWriter politely, at most once."""
    t = _transport(obj)
    if t is not None and not t.is_closing():
        t.close()


def abort(obj):
    """Drop a transport or StreamWriter now, in any state."""
    t = _transport(obj)
    if t is not None and getattr(t, "_ssl_protocol", 1) is not None:  # None: closed twice elsewhere
        t.abort()


async def _wait_closed(writer):
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def close_writers(writers, timeout):
    """Close StreamWriters, wait up to `timeout` s, then abort the rest."""
    writers = list(writers)
    if writers:
        for w in writers:
            close(w)
        _, pending = await asyncio.wait([asyncio.ensure_future(_wait_closed(w)) for w in writers],
                                        timeout=timeout)
        for f in pending:
            f.cancel()
        for w in writers:
            abort(w)


def stop_accepting(server):
    server.close()


async def close_server(server, timeout):
    """Stop a Server; wait up to `timeout` s for it (abort its connections first)."""
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), timeout)
    except asyncio.TimeoutError:
        pass
