"""Issue 23 attack 2 at small scale: 15 loopback addresses hold the server's connection slots with slow
heads, silent TCP connections or slow bodies, reconnecting as soon as they are dropped; a client from
another address is still served (>= 90 %), because a newcomer displaces the slowest connection of the
group holding the most (aio.admission). Real TLS, real sockets, real source addresses."""

import asyncio

import pytest

from tls_helpers import SERVER_NAME, client_ssl, pki, read_response, run, server_ssl  # noqa: F401
from nmosauth_lite.aio.server import HTTPServer, Router, json_response

ATTACKERS = ["127.0.4.%d" % i for i in range(1, 16)]
LEGIT = "127.0.9.1"


def app():
    r = Router()
    r.add("GET", "/hello", lambda req: json_response({"ok": True}))

    async def count(req):
        n = 0
        async for chunk in req.iter_body():
            n += len(chunk)
        return json_response({"received": n})
    r.add("POST", "/count", count)
    return r


async def _attacker(port, pki, source, kind, stop, held):  # noqa: F811
    """Keep one slow connection open from `source`, reconnecting whenever it is dropped."""
    while not stop.is_set():
        try:
            if kind == "silent":
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)
            else:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ssl(pki), server_hostname=SERVER_NAME, local_addr=(source, 0)), 5)
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)
            continue
        held[0] += 1
        try:
            if kind == "head":
                w.write(b"GET /hello HTTP/1.1\r\nHost: n\r\n")
            elif kind == "body":
                w.write(b"POST /count HTTP/1.1\r\nHost: n\r\nContent-Length: 18000\r\n\r\n")
            while not stop.is_set() and not r.at_eof():
                if kind == "head":
                    w.write(b"X: y\r\n")
                elif kind == "body":
                    w.write(b"x" * 120)  # 600 B/s: over the 512 B/s floor, done within the 30 s deadline
                try:
                    await asyncio.wait_for(r.read(1024), 0.2)
                except asyncio.TimeoutError:
                    pass
        except (OSError, ConnectionError):
            pass
        finally:
            held[0] -= 1
            w.transport.abort()


async def _legit(port, pki, n):  # noqa: F811
    served = 0
    for _ in range(n):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ssl(pki), server_hostname=SERVER_NAME, local_addr=(LEGIT, 0)), 5)
            w.write(b"GET /hello HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n")
            head, _ = await read_response(r, timeout=5)
            served += head.status == 200
            w.transport.abort()
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.05)
    return served


@pytest.mark.parametrize("kind", ["head", "silent", "body"])
def test_legitimate_client_is_served_while_15_addresses_hold_every_slot(pki, kind):  # noqa: F811
    async def main():
        srv = HTTPServer(app(), ssl=server_ssl(pki), max_connections=32, head_timeout=30, handshake_timeout=30)
        rejects = []
        srv.on_reject = rejects.append
        await srv.start("127.0.0.1", 0)
        stop = asyncio.Event()
        held = [0]
        tasks = [asyncio.ensure_future(_attacker(srv.port, pki, a, kind, stop, held))
                 for a in ATTACKERS for _ in range(4)]  # 60 slow connections for 32 slots
        for _ in range(100):
            if srv.connection_count >= 32:
                break
            await asyncio.sleep(0.05)
        assert srv.connection_count >= 30  # the table is full of strangers
        served = await _legit(srv.port, pki, 20)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.shutdown(1)
        assert served >= 18, (served, kind)  # >= 90 %
        assert "evicted" in rejects  # the strangers made room, not the newcomer
    run(main(), timeout=90)
