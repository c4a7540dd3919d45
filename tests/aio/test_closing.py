"""nmosauth_lite.aio.closing over real TLS on loopback (issue 18): ending transports, stream writers
and servers is safe on every supported CPython, also on a transport already closing. Debian's
3.11.2 (Raspberry Pi OS bookworm) raises AttributeError from asyncio/sslproto.py when a TLS
transport closed twice is aborted; every interpreter lane of `make test` runs these tests."""

import ast
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tls_helpers import open_tls, pki, run, server_ssl  # noqa: E402

from nmosauth_lite.aio import closing  # noqa: E402

assert pki  # the fixture, imported for pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOUND = 10.0  # seconds: every wait below is a few milliseconds unloaded


async def _tls_pair(pki, on_server):
    """A real TLS server on an ephemeral loopback port and one client connection to it:
    (server, client reader, client writer, the server side's end future, its release event)."""
    ended = asyncio.get_running_loop().create_future()
    release = asyncio.Event()

    async def handle(reader, writer):
        try:
            await on_server(reader, writer, release)
        finally:
            if not ended.done():
                ended.set_result(True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ssl(pki))
    port = server.sockets[0].getsockname()[1]
    reader, writer = await open_tls(port, pki)
    return server, reader, writer, ended, release


async def _read_to_eof(reader, writer, release):
    try:
        while await reader.read(65536):
            pass
    except OSError:
        pass
    closing.abort(writer)


async def _never_read(reader, writer, release):
    await release.wait()  # neither reads nor answers close_notify until the test is done
    closing.abort(writer)


async def _stop(server):
    await closing.close_server(server, BOUND)


def test_abort_of_a_tls_transport_closed_twice_does_not_raise_and_ends_the_connection(pki):
    # The class of bug: someone (asyncio, a peer's EOF handling, our own shutdown) closed the TLS
    # transport twice, then a shutdown path aborts it. Raw transport.abort() raises on 3.11.2.
    async def main():
        server, reader, writer, ended, release = await _tls_pair(pki, _read_to_eof)
        writer.write(b"hello")
        await writer.drain()
        writer.transport.close()
        writer.transport.close()  # the second close drops the TLS protocol
        closing.abort(writer)
        closing.abort(writer.transport)  # and again: nothing left to do, still no error
        closing.close(writer)
        assert await asyncio.wait_for(ended, BOUND)  # the server saw the connection end
        await _stop(server)
    run(main(), timeout=BOUND * 3)


def test_close_through_the_helper_twice_keeps_abort_working_on_every_python(pki):
    # The helper closes once, so the transport keeps its protocol: even asyncio's own abort()
    # (which the helper calls) then works on 3.11.2.
    async def main():
        server, reader, writer, ended, release = await _tls_pair(pki, _read_to_eof)
        closing.close(writer)
        closing.close(writer)
        closing.close(writer.transport)
        writer.transport.abort()  # raw: must not raise on any supported interpreter now
        assert writer.transport.is_closing()
        assert await asyncio.wait_for(ended, BOUND)
        await _stop(server)
    run(main(), timeout=BOUND * 3)


def test_abort_then_close_then_abort_in_any_order_is_harmless(pki):
    async def main():
        server, reader, writer, ended, release = await _tls_pair(pki, _read_to_eof)
        closing.abort(writer)
        closing.close(writer)
        closing.abort(writer)
        closing.abort(None)
        closing.close(None)
        assert await asyncio.wait_for(ended, BOUND)
        await _stop(server)
    run(main(), timeout=BOUND * 3)


def test_close_writers_gives_up_on_a_peer_that_never_answers_close_notify(pki):
    async def main():
        server, reader, writer, ended, release = await _tls_pair(pki, _never_read)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(closing.close_writers([writer], 0.2), BOUND)
        assert loop.time() - t0 < BOUND  # did not wait for the TLS shutdown time-out (30 s)
        assert writer.transport.is_closing()
        release.set()
        await asyncio.wait_for(ended, BOUND)
        await _stop(server)
    run(main(), timeout=BOUND * 3)


def test_close_writers_of_a_writer_already_closed_twice_does_not_raise(pki):
    async def main():
        server, reader, writer, ended, release = await _tls_pair(pki, _read_to_eof)
        writer.transport.close()
        writer.transport.close()
        await asyncio.wait_for(closing.close_writers([writer, writer], 0.5), BOUND)
        await closing.close_writers([], 0.5)
        await _stop(server)
    run(main(), timeout=BOUND * 3)


def test_close_server_returns_while_an_accepted_connection_stays_open(pki):
    # 3.12+: Server.wait_closed() waits for every accepted connection; ours is bounded.
    async def main():
        server, reader, writer, ended, release = await _tls_pair(pki, _never_read)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(closing.close_server(server, 0.2), BOUND)
        assert loop.time() - t0 < BOUND
        assert not server.is_serving()
        closing.abort(writer)
        release.set()
        await asyncio.wait_for(ended, BOUND)
    run(main(), timeout=BOUND * 3)


# --- the class, not the instance: no other code ends transports, writers or servers itself ------
_ENDS = {"abort", "close", "wait_closed"}
_HOLDERS = ("transport", "writer", "raw", "dst", "srv")


def _receiver_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _direct_ends(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    awaited = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Await)}
    found = []
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _ENDS):
            continue
        name = _receiver_name(n.func.value).lower()
        if n.func.attr == "wait_closed" or (not n.args and id(n) not in awaited
                                            and any(h in name for h in _HOLDERS)):
            found.append((n.lineno, "%s:%d %s.%s()" % (os.path.relpath(path, ROOT), n.lineno, name, n.func.attr)))
    return [text for _, text in sorted(found)]


def test_every_transport_writer_and_server_is_ended_through_the_helper():
    found = []
    for base, _, files in os.walk(os.path.join(ROOT, "nmosauth_lite")):
        for name in files:
            path = os.path.join(base, name)
            if name.endswith(".py") and path != closing.__file__:
                found += _direct_ends(path)
    assert found == [], "end these through nmosauth_lite.aio.closing: %s" % found


def test_the_source_check_finds_a_direct_abort(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("async def f(writer, srv):\n    writer.transport.abort()\n    srv.close()\n"
                 "    await srv.wait_closed()\n    await store.close()\n    db.close()\n")
    assert [s.split(" ", 1)[1] for s in _direct_ends(str(p))] == [
        "transport.abort()", "srv.close()", "srv.wait_closed()"]
