"""nmosauth_lite.aio.client against stdlib http.server over TLS (and our own server for
streamed uploads): JSON helpers, reuse, redirects, caps, timeouts, verification,
connect_host/server_hostname, the loud insecure mode."""

import asyncio
import http.server
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tls_helpers import SERVER_NAME, client_ssl, pki, run, server_ssl  # noqa: E402

from nmosauth_lite.aio.client import (ClientConnectError, ClientError, ClientTimeoutError,  # noqa: E402
                                      HTTPClient, HTTPStatusError, ResponseTooLargeError)
from nmosauth_lite.aio.server import HTTPServer, Response, Router, json_response  # noqa: E402
from nmosauth_lite.errors import NmosAuthError  # noqa: E402

assert pki  # the fixture, imported for pytest


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, obj, status=200, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def record(self):
        self.server.seen.append({"port": self.client_address[1], "method": self.command, "path": self.path,
                                 "host": self.headers.get("host"), "auth": self.headers.get("authorization")})

    def redirect(self, status, location):
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.record()
        path, _, query = self.path.partition("?")
        if path == "/json":
            self.send_json({"ok": True, "query": query})
        elif path == "/redirect":
            self.redirect(302, "/json?from=redirect")
        elif path == "/loop":
            self.redirect(302, "/loop")
        elif path == "/downgrade":
            self.redirect(302, "http://%s/json" % self.headers["host"])
        elif path == "/big":
            self.send_json({"blob": "x" * 100000})
        elif path == "/slow":
            time.sleep(1.5)
            self.send_json({})
        elif path == "/missing":
            self.send_json({"code": 404, "error": "not found", "debug": None}, 404)
        elif path == "/drop-after":
            self.send_json({"dropping": True})
            self.close_connection = True  # no Connection: close: the client pools a dead socket
        else:
            self.send_json({}, 404)

    def do_POST(self):
        self.record()
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        ctype = self.headers.get("content-type", "")
        if self.path == "/echo":
            self.send_json({"ctype": ctype, "body": body.decode()})
        elif self.path == "/form":
            self.send_json(dict(urllib.parse.parse_qsl(body.decode())))
        elif self.path == "/see-other":
            self.redirect(303, "/json?after=post")
        else:
            self.send_json({}, 404)


class StdlibServer:
    def __init__(self, pki, tls=True):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.seen = []
        if tls:
            ctx = server_ssl(pki)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    @property
    def seen(self):
        return self.httpd.seen


@pytest.fixture
def stdlib_server(pki):
    with StdlibServer(pki) as s:
        yield s


def url_of(server, path, host=SERVER_NAME):
    return "https://%s:%d%s" % (host, server.port, path)


def client(pki, **kw):
    return HTTPClient(ca_file=pki.ca_cert, resolve={SERVER_NAME: "127.0.0.1"}, **kw)


def test_get_json_post_json_post_form_and_connection_reuse(pki, stdlib_server):
    async def main():
        async with client(pki) as c:
            assert await c.get_json(url_of(stdlib_server, "/json?a=1")) == {"ok": True, "query": "a=1"}
            resp = await c.post_json(url_of(stdlib_server, "/echo"), {"k": [1, 2]})
            assert resp.status == 200 and resp.json() == {"ctype": "application/json", "body": '{"k":[1,2]}'}
            resp = await c.post_form(url_of(stdlib_server, "/form"), {"grant_type": "client_credentials",
                                                                      "scope": "registration query"})
            assert resp.json() == {"grant_type": "client_credentials", "scope": "registration query"}
            assert resp.header("Content-Type") == "application/json"
    run(main())
    assert len({r["port"] for r in stdlib_server.seen}) == 1, "one connection, reused"
    assert stdlib_server.seen[0]["host"] == "%s:%d" % (SERVER_NAME, stdlib_server.port)


def test_get_json_raises_on_error_status_with_the_response(pki, stdlib_server):
    async def main():
        async with client(pki) as c:
            with pytest.raises(HTTPStatusError) as info:
                await c.get_json(url_of(stdlib_server, "/missing"))
            assert info.value.response.status == 404 and info.value.response.json()["code"] == 404
            assert isinstance(info.value, NmosAuthError)
    run(main())


def test_redirects_off_by_default_followed_when_asked_and_bounded(pki, stdlib_server):
    async def main():
        async with client(pki) as c:
            resp = await c.get(url_of(stdlib_server, "/redirect"))
            assert resp.status == 302 and resp.header("location") == "/json?from=redirect"
            resp = await c.get(url_of(stdlib_server, "/redirect"), follow_redirects=True)
            assert resp.status == 200 and resp.json()["query"] == "from=redirect"
            resp = await c.post_json(url_of(stdlib_server, "/see-other"), {}, follow_redirects=True)
            assert resp.status == 200 and resp.json()["query"] == "after=post"
            assert stdlib_server.seen[-1]["method"] == "GET"
            with pytest.raises(ClientError, match="too many redirects"):
                await c.get(url_of(stdlib_server, "/loop"), follow_redirects=True)
            with pytest.raises(ClientError, match="refusing redirect"):
                await c.get(url_of(stdlib_server, "/downgrade"), follow_redirects=True)
    run(main())


def test_response_size_cap(pki, stdlib_server):
    async def main():
        async with client(pki, max_response=50000) as c:
            with pytest.raises(ResponseTooLargeError):
                await c.get(url_of(stdlib_server, "/big"))
            assert (await c.get(url_of(stdlib_server, "/json"))).status == 200
    run(main())


def test_read_timeout(pki, stdlib_server):
    async def main():
        async with client(pki, read_timeout=0.3) as c:
            t0 = time.monotonic()
            with pytest.raises(ClientTimeoutError):
                await c.get(url_of(stdlib_server, "/slow"))
            assert time.monotonic() - t0 < 1.4
    run(main())


def test_connect_timeout_when_the_tls_handshake_never_comes(pki):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts TCP in the kernel, never speaks TLS
    try:
        async def main():
            async with client(pki, connect_timeout=0.3) as c:
                t0 = time.monotonic()
                with pytest.raises(ClientTimeoutError):
                    await c.get("https://%s:%d/" % (SERVER_NAME, listener.getsockname()[1]))
                assert time.monotonic() - t0 < 2
        run(main())
    finally:
        listener.close()


def test_certificate_must_match_the_name_and_chain(pki, stdlib_server):
    async def main():
        async with client(pki) as c:
            with pytest.raises(ClientConnectError):
                await c.get(url_of(stdlib_server, "/json", host="wrong.test"), connect_host="127.0.0.1")
        async with HTTPClient(resolve={SERVER_NAME: "127.0.0.1"}) as c:  # system CAs only
            with pytest.raises(ClientConnectError):
                await c.get(url_of(stdlib_server, "/json"))
    run(main())


def test_connect_host_and_server_hostname_keep_the_name_for_tls_and_host(pki, stdlib_server):
    async def main():
        async with HTTPClient(ca_file=pki.ca_cert) as c:
            resp = await c.get(url_of(stdlib_server, "/json"), connect_host="127.0.0.1")
            assert resp.status == 200
            resp = await c.get(url_of(stdlib_server, "/json", host=SERVER_NAME + "."), connect_host="127.0.0.1")
            assert resp.status == 200
            resp = await c.get("https://127.0.0.1:%d/json" % stdlib_server.port, server_hostname="localhost")
            assert resp.status == 200
    run(main())
    hosts = [r["host"] for r in stdlib_server.seen]
    assert hosts == ["node.test:%d" % stdlib_server.port] * 2 + ["localhost:%d" % stdlib_server.port]


def test_stale_pooled_connection_is_retried_for_idempotent_requests(pki, stdlib_server):
    async def main():
        async with client(pki) as c:
            assert (await c.get(url_of(stdlib_server, "/drop-after"))).status == 200
            await asyncio.sleep(0.2)
            assert (await c.get(url_of(stdlib_server, "/json"))).status == 200
    run(main())
    assert len({r["port"] for r in stdlib_server.seen}) == 2


def test_plain_http_refused_unless_insecure_mode_which_warns(pki, caplog):
    with StdlibServer(pki, tls=False) as s:
        url = "http://127.0.0.1:%d/json" % s.port

        async def main():
            async with HTTPClient() as c:
                with pytest.raises(ClientError, match="refusing plain http"):
                    await c.get(url)
            with caplog.at_level(logging.WARNING, logger="nmosauth_lite.http.client"):
                async with HTTPClient(insecure_http=True) as c:
                    assert (await c.get_json(url))["ok"] is True
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert any("INSECURE" in r.getMessage() for r in warnings)
        run(main())


def test_streamed_upload_and_headers_against_our_server(pki):
    async def count(req):
        n = 0
        async for chunk in req.iter_body():
            n += len(chunk)
        return json_response({"n": n, "te": req.header("transfer-encoding"), "ua": req.header("user-agent")})

    async def main():
        r = Router()
        r.add("POST", "/count", count)
        r.add("GET", "/close", lambda req: Response(200, b"bye", [("connection", "close")]))
        srv = HTTPServer(r, ssl=server_ssl(pki))
        await srv.start("127.0.0.1", 0)

        async def body():
            for _ in range(10):
                yield b"q" * 1000
                await asyncio.sleep(0)
        async with client(pki, headers={"user-agent": "probe/1"}) as c:
            resp = await c.request("POST", "https://%s:%d/count" % (SERVER_NAME, srv.port), body=body())
            assert resp.json() == {"n": 10000, "te": "chunked", "ua": "probe/1"}
            resp = await c.get("https://%s:%d/close" % (SERVER_NAME, srv.port))
            assert resp.body == b"bye" and not any(c._pool.values())
        await srv.shutdown(1)
    run(main())


def test_client_certificate_is_presented(pki):
    def who(req):
        return json_response({"cn": dict(x[0] for x in req.peer_cert["subject"])["commonName"]})

    async def main():
        srv = HTTPServer(who, ssl=server_ssl(pki, ca_file=pki.ca_cert, client_cert="required"))
        await srv.start("127.0.0.1", 0)
        async with client(pki, cert_file=pki.client_cert, key_file=pki.client_key) as c:
            assert await c.get_json("https://%s:%d/" % (SERVER_NAME, srv.port)) == {"cn": "test-client"}
        await srv.shutdown(1)
    run(main())


def test_tls_context_is_at_least_tls12(pki):
    ctx = client_ssl(pki)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2 and ctx.check_hostname
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_endless_one_byte_chunks_from_a_hostile_server_fail_fast_with_a_clear_error(pki):
    # Issue 23 attack 7: a hostile Node streams "1\r\nx\r\n" forever. The payload cap (1 MiB) would
    # take ~6 MiB and a million events and then say "over 1048576 bytes"; the parser's chunk
    # bound stops it after 4,096 chunks with an error that says what happened.
    # (A raw TLS server in-process: no real HTTP server can be made to misbehave like this.)
    sent = [0]

    async def hostile(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"1\r\nx\r\n" * 1024
        try:
            while sent[0] < 64 * 1024 * 1024:
                writer.write(piece)
                sent[0] += len(piece)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    async def main():
        srv = await asyncio.start_server(hostile, "127.0.0.1", 0, ssl=server_ssl(pki))
        port = srv.sockets[0].getsockname()[1]
        try:
            async with client(pki, max_response=1024 * 1024) as c:
                with pytest.raises(ClientError, match="too many chunks"):
                    await c.get("https://%s:%d/" % (SERVER_NAME, port))
        finally:
            srv.close()
        # (the bytes the parser takes are bounded in tests/test_http11.py; socket buffers blur `sent`)
        assert sent[0] < 64 * 1024 * 1024
    run(main())
