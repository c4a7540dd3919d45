"""`protect`'s trust boundary (issue 11 §1): what reaches the upstream without a token is short,
explicit and tested here against what the upstream actually received.

Without a token only GET, HEAD and OPTIONS on `/`, `/x-nmos`, `/x-nmos/` (and OPTIONS anywhere,
IS-10 GEN-04) reach the upstream, without a body and never as an upgrade; other methods there get
405 + Allow; CONNECT, TRACE, authority-form and foreign absolute-form targets are refused locally.
A WebSocket upgrade is forwarded only for a GET whose token was checked (BCP-003-02, IS-10
RS-37..RS-40); a 101 to anything else closes the connection with 502. Client-sent X-Forwarded-*
and Forwarded are replaced unless the client is a configured trusted proxy.
"""

import asyncio
import base64
import time

import pytest

from minting import Minter
from tls_helpers import read_response, run
from nmosauth_lite import TokenValidator
from nmosauth_lite.aio.proxy import AuthProxy
from nmosauth_lite.aio.server import HTTPServer
from nmosauth_lite.commands import protect as protect_cmd
from nmosauth_lite.errors import ConfigError
from nmosauth_lite.guard import Guard

AUD = "node1.example.com"
SELF = "/x-nmos/node/v1.3/self"
WS = "/x-nmos/query/v1.3/ws"
PUBLIC = ("/", "/x-nmos", "/x-nmos/")
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "PROPFIND", "CONNECT", "TRACE")
UPGRADES = {
    "none": "",
    "websocket": "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: %s\r\n" % base64.b64encode(b"0123456789abcdef").decode(),
    "h2c": "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
}


@pytest.fixture(scope="module")
def m():
    return Minter()


def token(m):
    now = int(time.time())
    return m.token("RS512", claims=m.claims(iat=now - 10, exp=now + 600))


class Recorder:
    """A permissive upstream: records every request head it receives, answers 200, and (like
    the stock `websockets` server, on any path) 101 to anything asking for an upgrade;
    `always_101` answers 101 to everything."""

    def __init__(self, always_101=False):
        self.seen = []
        self.always_101 = always_101

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        n, _, v = line.partition(":")
                        headers[n.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                self.seen.append((method, target, headers, body))
                if self.always_101 or headers.get("upgrade"):
                    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\n\r\nTUNNEL-OPEN")
                    await writer.drain()
                    while True:  # a raw tunnel: echo whatever comes
                        data = await reader.read(65536)
                        if not data:
                            return
                        writer.write(data)
                        await writer.drain()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + (b"" if method == "HEAD" else b"ok"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


async def start_proxy(m, upstream_port, **kw):
    guard = Guard(TokenValidator(jwks=m.jwks, audience=[AUD]))
    proxy = AuthProxy(guard, "http://127.0.0.1:%d" % upstream_port, **kw)
    server = HTTPServer(proxy)
    await server.start("127.0.0.1", 0)
    return proxy, server


async def read_head(reader, timeout=5):
    """(status, {lowercase name: value}) of one response head, or (None, {}) on EOF."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError:
        return None, {}
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            n, _, v = line.partition(":")
            headers[n.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers


async def send(port, raw, source="127.0.0.1"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(raw.encode("latin-1") if isinstance(raw, str) else raw)
    status, headers = await read_head(reader)
    writer.transport.abort()
    return status, headers


def expected(method, path, upgrade, tok):
    """The whole boundary as one rule: (status, reaches the upstream, as an upgrade)."""
    if method in ("CONNECT", "TRACE"):
        return 405, False, False  # refused locally, whatever the token
    if path in PUBLIC:
        if method in ("GET", "HEAD", "OPTIONS"):
            return 200, True, False  # RS-31: no token needed; never an upgrade
        return 405, False, False  # with or without a token (Allow: GET, HEAD, OPTIONS)
    if method == "OPTIONS":
        return 200, True, False  # GEN-04: token-free, never an upgrade
    if not tok:
        return 401, False, False  # RS-22
    if method in ("GET", "HEAD"):
        ws = method == "GET" and upgrade == "websocket"
        return (101 if ws else 200), True, ws
    return 403, False, False  # the token permits reads only on this API (RS-33, RS-35)


def test_what_reaches_the_upstream_methods_x_paths_x_upgrades(m):
    t = token(m)

    async def go():
        up = await Recorder().start()
        proxy, server = await start_proxy(m, up.port)
        failures = []
        try:
            for tok in (None, t):
                for path in PUBLIC + (SELF,):
                    for method in METHODS:
                        for upgrade, fields in UPGRADES.items():
                            up.seen.clear()
                            auth = "Authorization: Bearer %s\r\n" % tok if tok else ""
                            status, headers = await send(server.port, "%s %s HTTP/1.1\r\nHost: node.test\r\n%s%s\r\n"
                                                         % (method, path, auth, fields))
                            want, reaches, as_upgrade = expected(method, path, upgrade, tok)
                            case = (method, path, upgrade, "token" if tok else "no token")
                            if status != want:
                                failures.append((case, "status %s, want %s" % (status, want)))
                            if len(up.seen) != (1 if reaches else 0):
                                failures.append((case, "upstream saw %r" % [s[:2] for s in up.seen]))
                                continue
                            if status == 405 and headers.get("allow") is None:
                                failures.append((case, "405 without Allow"))
                            if reaches:
                                got_method, got_target, got, body = up.seen[0]
                                sent_upgrade = "upgrade" in got or "upgrade" in got.get("connection", "").lower()
                                if (got_method, got_target) != (method, path) or sent_upgrade != as_upgrade \
                                        or body or "http2-settings" in got:
                                    failures.append((case, "upstream got %r" % (up.seen[0],)))
        finally:
            await server.shutdown(1)
            await proxy.close()
            await up.stop()
        return failures
    failures = run(go(), timeout=120)
    assert not failures, "\n".join("%s: %s" % f for f in failures)


def test_public_paths_405_names_the_allowed_methods(m):
    async def go():
        up = await Recorder().start()
        proxy, server = await start_proxy(m, up.port)
        try:
            for target in ("/", "/x-nmos", "/x-nmos/"):
                status, headers = await send(server.port, "DELETE %s HTTP/1.1\r\nHost: n\r\n\r\n" % target)
                assert status == 405 and headers["allow"] == "GET, HEAD, OPTIONS"
                assert headers["access-control-allow-origin"] == "*"
            assert up.seen == []
        finally:
            await server.shutdown(1)
            await proxy.close()
            await up.stop()
    run(go())


@pytest.mark.parametrize("raw,status", [
    ("CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", (400, 405)),
    ("CONNECT / HTTP/1.1\r\nHost: node.test\r\n\r\n", (405,)),
    ("TRACE / HTTP/1.1\r\nHost: node.test\r\n\r\n", (405,)),
    ("GET 127.0.0.1:22 HTTP/1.1\r\nHost: node.test\r\n\r\n", (400,)),
    ("GET http://evil.example/x-nmos/ HTTP/1.1\r\nHost: node.test\r\n\r\n", (400,)),
    ("GET http://evil.example:8080/ HTTP/1.1\r\nHost: node.test\r\n\r\n", (400,)),
    ("GET ftp://node.test/ HTTP/1.1\r\nHost: node.test\r\n\r\n", (400,)),
    ("GET * HTTP/1.1\r\nHost: node.test\r\n\r\n", (400,)),
    ("POST /x-nmos HTTP/1.1\r\nHost: node.test\r\nContent-Length: 5\r\n\r\nhello", (405,)),
    ("PROPFIND / HTTP/1.1\r\nHost: node.test\r\n\r\n", (405,)),
    ("GET / HTTP/1.1\r\nHost: node.test\r\nContent-Length: 5\r\n\r\nhello", (400,)),
    ("OPTIONS %s HTTP/1.1\r\nHost: node.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" % SELF,
     (400,)),
])
def test_refused_locally_and_the_upstream_sees_nothing(m, raw, status):
    async def go():
        up = await Recorder().start()
        proxy, server = await start_proxy(m, up.port)
        try:
            got, _ = await send(server.port, raw)
            await asyncio.sleep(0.05)
            return got, list(up.seen)
        finally:
            await server.shutdown(1)
            await proxy.close()
            await up.stop()
    got, seen = run(go())
    assert got in status and seen == []


def test_absolute_form_naming_this_host_is_forwarded_by_its_path(m):
    async def go():
        up = await Recorder().start()
        proxy, server = await start_proxy(m, up.port)
        try:
            got, _ = await send(server.port, "GET http://Node.Test/x-nmos/ HTTP/1.1\r\nHost: node.test\r\n\r\n")
            return got, [s[:2] for s in up.seen]
        finally:
            await server.shutdown(1)
            await proxy.close()
            await up.stop()
    assert run(go()) == (200, [("GET", "/x-nmos/")])


def test_101_to_a_request_not_forwarded_as_an_upgrade_is_502_and_closes(m):
    async def go():
        up = await Recorder(always_101=True).start()
        proxy, server = await start_proxy(m, up.port)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(("OPTIONS %s HTTP/1.1\r\nHost: node.test\r\n\r\n" % SELF).encode())
            status, headers = await read_head(reader)
            rest = await asyncio.wait_for(reader.read(), 5)  # the body, then EOF: no splice
            writer.transport.abort()
            return status, headers, rest
        finally:
            await server.shutdown(1)
            await proxy.close()
            await up.stop()
    status, headers, rest = run(go())
    assert status == 502 and headers["connection"] == "close"
    assert b"TUNNEL" not in rest and rest.startswith(b'{"code":502')


def test_stock_websockets_server_cannot_be_reached_as_a_tunnel(m):
    """The stock `websockets` server accepts an upgrade on any path: through protect, only a
    GET with a checked token gets one (before: `GET /` and `OPTIONS <path>` with `Upgrade:
    websocket` and no token were spliced, then anything went through unchecked)."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    t = token(m)
    hits = []

    async def echo(ws):
        hits.append(ws.request.path)
        async for msg in ws:
            await ws.send(msg)

    async def attempt(port, line):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((line + "\r\nHost: node.test\r\n" + UPGRADES["websocket"] + "\r\n").encode())
        head, _ = await read_response(reader, line.split(" ")[0])
        # Try to use it as a tunnel: a protected read with no token must still be judged.
        after = None
        try:
            writer.write(("GET %s HTTP/1.1\r\nHost: node.test\r\n\r\n" % SELF).encode())
            got = await read_response(reader)
            after = None if got is None else got[0].status
        except (ConnectionError, asyncio.TimeoutError):
            pass
        writer.transport.abort()
        return head.status, after

    async def go():
        async with serve(echo, "127.0.0.1", 0) as ws_server:
            ws_port = ws_server.sockets[0].getsockname()[1]
            proxy, server = await start_proxy(m, ws_port)
            try:
                results = {}
                for line in ("GET / HTTP/1.1", "GET /x-nmos HTTP/1.1", "GET /x-nmos/ HTTP/1.1",
                             "OPTIONS %s HTTP/1.1" % SELF, "HEAD %s HTTP/1.1" % WS,
                             "GET %s HTTP/1.1" % WS):  # the last: no token, 401
                    results[line] = await attempt(server.port, line)
                # The control: with a token, the same server is reached and echoes (the test can pass).
                url = "ws://127.0.0.1:%d%s" % (server.port, WS)
                async with connect(url, additional_headers={"Authorization": "Bearer " + t}) as ws:
                    await ws.send("through the splice")
                    echoed = await asyncio.wait_for(ws.recv(), 5)
                return results, echoed
            finally:
                await server.shutdown(1)
                await proxy.close()
    results, echoed = run(go())
    for line, (status, after) in results.items():
        assert status != 101, line
        # whatever followed was judged by protect (401 here) or the connection was closed
        assert after in (None, 401), (line, after)
    assert echoed == "through the splice" and hits == [WS]


def test_client_forwarded_headers_are_replaced_unless_from_a_trusted_proxy(m):
    claims = ("X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n"
              "Forwarded: for=192.0.2.1;proto=https\r\nX-Real-IP: 192.0.2.1\r\n")
    raw = "GET / HTTP/1.1\r\nHost: node.test\r\n%s\r\n" % claims

    async def through(trusted, source):
        up = await Recorder().start()
        proxy, server = await start_proxy(m, up.port, trusted_proxies=trusted)
        try:
            status, _ = await send(server.port, raw, source)
            assert status == 200
            return up.seen[0][2]
        finally:
            await server.shutdown(1)
            await proxy.close()
            await up.stop()

    async def go():
        return (await through((), "127.0.0.1"), await through(["127.0.0.2"], "127.0.0.1"),
                await through(["127.0.0.1"], "127.0.0.1"), await through(["127.0.0.0/8"], "127.0.0.2"))
    default, other, trusted, network = run(go())
    for got in (default, other):  # dropped; replaced with what protect saw
        assert got["x-forwarded-for"] == "127.0.0.1" and got["x-forwarded-proto"] == "http"
        assert got["x-forwarded-host"] == "node.test"
        assert "forwarded" not in got and "x-real-ip" not in got
    assert trusted["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"  # kept, appended to
    assert trusted["x-forwarded-proto"] == "https, http"
    assert trusted["x-forwarded-host"] == "evil.example, node.test"
    assert trusted["forwarded"] == "for=192.0.2.1;proto=https, for=127.0.0.1;proto=http"
    assert trusted["x-real-ip"] == "192.0.2.1"
    assert network["x-forwarded-for"] == "10.0.0.1, 127.0.0.2"


def test_trusted_proxies_setting_from_toml_and_flag(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[protect]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n')
    parser = __import__("argparse").ArgumentParser()
    protect_cmd.add_arguments(parser)
    base = ["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--audience", AUD,
            "--jwks", "x", "--cert", "c", "--key", "k"]
    assert protect_cmd.load_settings(parser.parse_args(base + ["--config", str(cfg)]))["trusted_proxies"] == \
        ["127.0.0.1", "10.0.0.0/8"]
    got = protect_cmd.load_settings(parser.parse_args(base + ["--trusted-proxy", "::1", "--trusted-proxy", "192.0.2.7"]))
    assert got["trusted_proxies"] == ["::1", "192.0.2.7"]
    assert protect_cmd.load_settings(parser.parse_args(base))["trusted_proxies"] == []  # default: nobody
    with pytest.raises(ConfigError):
        AuthProxy(Guard(TokenValidator(jwks={"keys": []}, audience=[AUD])), "http://127.0.0.1:1",
                  trusted_proxies=["not-an-address"])


def test_is_trusted_maps_v4_in_v6(m):
    proxy = AuthProxy(Guard(TokenValidator(jwks=m.jwks, audience=[AUD])), "http://127.0.0.1:1",
                      trusted_proxies=["127.0.0.1"])
    assert proxy.is_trusted("127.0.0.1") and proxy.is_trusted("::ffff:127.0.0.1")
    assert not proxy.is_trusted("127.0.0.2") and not proxy.is_trusted("garbage") and not proxy.is_trusted(None)
    assert not AuthProxy(Guard(TokenValidator(jwks=m.jwks, audience=[AUD])), "http://127.0.0.1:1").is_trusted(
        "127.0.0.1")
