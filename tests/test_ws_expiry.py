"""An open WebSocket outlives its token no longer than the policy says (issue 20 §3; IS-10 §12 C3
leaves it open): with ws_expiry "close" (the default) `protect`, the ASGI middleware and the
aiohttp middleware close it with code 1008 (RFC 6455 §7.4.1) at exp + leeway + ws_grace, and
not before; with "keep" it stays open. Real clients (`websockets`, aiohttp) on IS-12's
WebSocket path with `?access_token=` as the AMWA testing tool sends it, tokens living seconds.
"""

import asyncio
import json
import time

import aiohttp
import pytest

websockets = pytest.importorskip("websockets")
pytest.importorskip("uvicorn")

from websockets.asyncio.client import connect  # noqa: E402

from adapter_servers import (AiohttpServer, ProtectProcess, UvicornServer, aiohttp_app, asgi_app,  # noqa: E402
                             make_guard)
from minting import Minter  # noqa: E402
from tls_helpers import client_ssl, pki  # noqa: E402, F401
from nmosauth_lite.asgi import NmosAuthMiddleware  # noqa: E402

NCP = "/x-nmos/ncp/v1.0/ws"
LIFE = 3  # seconds a test token lives
GRACE = 1.0
WAIT = 30  # the close must come within this (>= 4x the LIFE + GRACE it needs)
EARLY = 0.25  # clock granularity allowance for "not before the deadline"


@pytest.fixture(scope="module")
def m():
    return Minter()


def short_token(m):
    now = int(time.time())
    exp = now + LIFE
    t = m.token("RS512", claims=m.claims(iat=now - 1, exp=exp, scope="ncp",
                                          **{"x-nmos-ncp": {"read": ["*"], "write": ["*"]}}))
    return t, exp


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT + 15))


async def websockets_session(uri, ssl=None, keep_after=None):
    """Talk before exp, then wait for the server's close: (close code, when it came, echo after exp)."""
    async with connect(uri, ssl=ssl, open_timeout=10) as ws:
        assert (await ws.recv()).startswith("hello ")
        await ws.send("before")
        assert await ws.recv() == "echo:before"
        if keep_after is not None:
            await asyncio.sleep(max(0.0, keep_after - time.time()))
            await ws.send("after")
            return None, None, await asyncio.wait_for(ws.recv(), 10)
        try:
            await asyncio.wait_for(ws.recv(), WAIT)
        except websockets.exceptions.ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), time.time(), None
        raise AssertionError("a message instead of the close")


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture(scope="module")
def jwks_path(m, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("jwks") / "jwks.json")
    with open(path, "w") as f:
        json.dump(m.jwks, f)
    return path


def test_protect_closes_the_is12_socket_1008_at_expiry_toward_both_sides(pki, m, jwks_path, tmp_path):  # noqa: F811
    closes = []
    with AiohttpServer(aiohttp_app(closes=closes)) as node:
        p = ProtectProcess(pki, jwks_path, "http://127.0.0.1:%d" % node.port, tmp_path, ["--ws-grace", str(GRACE)])
        try:
            t, exp = short_token(m)
            code, at, _ = run(websockets_session("wss://127.0.0.1:%d%s?access_token=%s" % (p.port, NCP, t),
                                                 ssl=client_ssl(pki)))
            assert code == 1008
            assert at >= exp + GRACE - EARLY  # never before exp + leeway + grace
            # the upstream Node got a (masked, well-formed) close frame with the same code
            assert wait_for(lambda: closes == [1008]), closes
            assert t not in p.stderr()  # never a token in a log line
        finally:
            p.stop()


def test_protect_keeps_the_socket_with_ws_expiry_keep(pki, m, jwks_path, tmp_path):  # noqa: F811
    with AiohttpServer(aiohttp_app()) as node:
        p = ProtectProcess(pki, jwks_path, "http://127.0.0.1:%d" % node.port, tmp_path, ["--ws-expiry", "keep"])
        try:
            t, exp = short_token(m)
            _, _, echo = run(websockets_session("wss://127.0.0.1:%d%s?access_token=%s" % (p.port, NCP, t),
                                                ssl=client_ssl(pki), keep_after=exp + 1.5))
            assert echo == "echo:after"
        finally:
            p.stop()


def test_asgi_middleware_closes_the_socket_1008_at_expiry(m):
    app = NmosAuthMiddleware(asgi_app, make_guard(m.jwks, ws_grace=GRACE))
    with UvicornServer(app) as srv:
        t, exp = short_token(m)
        code, at, _ = run(websockets_session("ws://127.0.0.1:%d%s?access_token=%s" % (srv.port, NCP, t)))
        assert code == 1008 and at >= exp + GRACE - EARLY


def test_aiohttp_middleware_closes_the_socket_1008_at_expiry(m):
    closes = []
    with AiohttpServer(aiohttp_app(make_guard(m.jwks, ws_grace=GRACE), closes)) as srv:
        t, exp = short_token(m)

        async def go():
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect("http://127.0.0.1:%d%s?access_token=%s" % (srv.port, NCP, t)) as ws:
                    assert (await ws.receive_str(timeout=5)).startswith("hello ")
                    await ws.send_str("before")
                    assert await ws.receive_str(timeout=5) == "echo:before"
                    msg = await ws.receive(timeout=WAIT)
                    return msg.type, msg.data, time.time()
        kind, code, at = run(go())
        assert kind == aiohttp.WSMsgType.CLOSE and code == 1008 and at >= exp + GRACE - EARLY
        assert wait_for(lambda: len(closes) == 1), closes  # the handler's socket ended with it


def test_aiohttp_middleware_keeps_the_socket_with_ws_expiry_keep(m):
    with AiohttpServer(aiohttp_app(make_guard(m.jwks, ws_expiry="keep"))) as srv:
        t, exp = short_token(m)
        _, _, echo = run(websockets_session("ws://127.0.0.1:%d%s?access_token=%s" % (srv.port, NCP, t),
                                            keep_after=exp + 1.5))
        assert echo == "echo:after"


def test_protect_cuts_a_relay_that_is_not_websocket_framing(pki, m, jwks_path, tmp_path):  # noqa: F811
    # RFC 6455 §5.1: a client's frames are masked; one that is not ends the relay (the frame
    # cursor that finds where to put the close frame refuses what it cannot follow).
    import base64
    import os
    import socket

    closes = []
    with AiohttpServer(aiohttp_app(closes=closes)) as node:
        p = ProtectProcess(pki, jwks_path, "http://127.0.0.1:%d" % node.port, tmp_path)
        try:
            t, _ = short_token(m)
            raw = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s = client_ssl(pki).wrap_socket(raw, server_hostname="localhost")
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(("GET %s?access_token=%s HTTP/1.1\r\nHost: node.test\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n"
                       % (NCP, t, key)).encode())
            got = b""
            while b"\r\n\r\n" not in got:
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.1 101")
            s.sendall(b"\x81\x05hello")  # unmasked text frame from a client
            s.settimeout(WAIT)
            rest = b""
            while True:
                try:
                    data = s.recv(4096)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                rest += data
            assert b"echo:hello" not in rest  # never relayed
            assert wait_for(lambda: len(closes) == 1), closes  # the upstream side was ended too
            s.close()
        finally:
            p.stop()


def test_asgi_application_gets_disconnect_1008_and_its_later_sends_are_dropped(m):
    # What a server does not show: the application's side of the close (ASGI websocket scope).
    seen, sent = [], []
    t, exp = short_token(m)

    async def app(scope, receive, send):
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        seen.append(await receive())  # blocks until the close at expiry
        await send({"type": "websocket.send", "text": "too late"})

    async def go():
        forever = asyncio.get_running_loop().create_future()
        incoming = [{"type": "websocket.connect"}]

        async def receive():
            return incoming.pop(0) if incoming else await forever

        async def send(message):
            sent.append(message)
        calls = []

        def clock():  # the handshake is judged now; the close timer then finds the deadline 0.5 s away
            calls.append(1)
            return time.time() if len(calls) == 1 else exp - 0.5
        mw = NmosAuthMiddleware(app, make_guard(m.jwks, ws_grace=0), clock=clock)
        scope = {"type": "websocket", "path": NCP, "raw_path": NCP.encode(),
                 "query_string": ("access_token=" + t).encode(), "headers": []}
        await asyncio.wait_for(mw(scope, receive, send), 10)
    run(go())
    assert seen == [{"type": "websocket.disconnect", "code": 1008}]
    assert [msg["type"] for msg in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1008 and sent[1]["reason"] == "token expired"


def test_protect_with_an_api_alias_opens_is12_for_an_nc_token(pki, m, jwks_path, tmp_path):  # noqa: F811
    # issue 20 §3: a site whose authorization server says `nc` for IS-12, configured without code
    now = int(time.time())
    t = m.token("RS512", claims=m.claims(iat=now - 1, exp=now + 600, scope="nc",
                                          **{"x-nmos-nc": {"read": ["*"], "write": ["*"]}}))
    with AiohttpServer(aiohttp_app()) as node:
        p = ProtectProcess(pki, jwks_path, "http://127.0.0.1:%d" % node.port, tmp_path, ["--api-alias", "nc=ncp"])
        try:
            async def go():
                uri = "wss://127.0.0.1:%d%s?access_token=%s" % (p.port, NCP, t)
                async with connect(uri, ssl=client_ssl(pki), open_timeout=10) as ws:
                    return await asyncio.wait_for(ws.recv(), 10)
            assert run(go()) == "hello " + NCP
        finally:
            p.stop()
