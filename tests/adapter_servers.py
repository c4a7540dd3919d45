"""Real servers for each front of the guard, for the aiohttp, differential and WebSocket-expiry
tests (issue 20): an aiohttp app behind nmos_auth_middleware, an ASGI app under uvicorn behind
NmosAuthMiddleware, a Flask app under werkzeug's threaded server behind NmosAuthWSGI, and
`nmosauth-lite protect` (a child process, over TLS) in front of a plain aiohttp Node. Every one
listens on an ephemeral loopback port and is stopped at the end (threads joined, the child by
PID). Plus a raw HTTP/1.1 client that sends a target and header list exactly as given.
"""

import asyncio
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

from aiohttp import web

from nmosauth_lite import TokenValidator
from nmosauth_lite.aiohttp_middleware import nmos_auth_middleware
from nmosauth_lite.guard import Guard

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUD = "node1.example.com"
START_TIMEOUT = 20.0


# --- the Node apps: 200 JSON to anything, a WebSocket that echoes ------------------------------

async def aio_any(request, closes=None):
    if request.headers.get("Upgrade", "").lower() == "websocket":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hello " + request.path)
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
        if closes is not None:
            closes.append(ws.close_code)  # what the peer's close frame said (None: no frame)
        return ws
    claims = request.get("nmos_auth")
    return web.json_response({"method": request.method, "path": request.path,
                              "sub": None if claims is None else claims.get("sub")})


def aiohttp_app(guard=None, closes=None):
    """closes: a list that gets the close code of every WebSocket the app saw end."""
    app = web.Application(middlewares=[nmos_auth_middleware(guard)] if guard is not None else [])

    async def handler(request):
        return await aio_any(request, closes)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


async def asgi_app(scope, receive, send):
    if scope["type"] == "http":
        body = json.dumps({"method": scope["method"], "path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello " + scope["path"]})
        while True:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": "echo:" + (msg.get("text") or "")})


def wsgi_app(environ, start_response):
    body = json.dumps({"method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def make_guard(jwks, **kw):
    vkw = {k: kw.pop(k) for k in ("claims_location", "api_aliases", "leeway", "issuers") if k in kw}
    return Guard(TokenValidator(jwks=jwks, audience=[AUD], **vkw), **kw)


# --- servers in threads ---------------------------------------------------------------------------

class AiohttpServer:
    """An aiohttp app on its own event loop in a thread."""

    def __init__(self, app, ssl_context=None):
        self.app = app
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app)
        self.loop.run_until_complete(self.runner.setup())
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.loop.run_until_complete(web.SockSite(self.runner, self.sock, ssl_context=self.ssl_context).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(START_TIMEOUT), "aiohttp server did not start"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class UvicornServer:
    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                    ws="websockets-sansio"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class WerkzeugServer:
    """werkzeug's threaded WSGI server: it gives RAW_URI, so the raw target is judged (RS-32)."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


class ProtectProcess:
    """`python -m nmosauth_lite protect` over TLS in front of `upstream_url`, stopped by PID."""

    def __init__(self, pki, jwks_path, upstream_url, tmp, extra=()):
        from procs import stop_child

        self._stop = stop_child
        self.err_path = os.path.join(str(tmp), "protect.stderr")
        args = ["--listen", "127.0.0.1:0", "--upstream", upstream_url, "--audience", AUD, "--jwks", jwks_path,
                "--cert", pki.cert, "--key", pki.key, "--audit", "off"] + list(extra)
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "protect"] + args, cwd=REPO,
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
            line = self.proc.stdout.readline() if ready else b""
            if not line:
                raise AssertionError("protect did not start: " + self.stderr()[-2000:])
            self.port = int(json.loads(line)["listen"].rsplit(":", 1)[1])
        except BaseException:
            self.stop()
            raise

    def stderr(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        self._stop(self.proc, 10)
        self.proc.stdout.close()


# --- a client that sends exactly what it is given ----------------------------------------------

def send_raw(port, method, target, headers=(), ssl_context=None, timeout=15):
    """(status, {lower-case name: value}, body) for one request; a 101 is not read past its head."""
    if ssl_context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl_context, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
        for n, v in headers:
            conn.putheader(n, v)
        conn.endheaders()
        r = conn.getresponse()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        body = b"" if r.status == 101 else r.read()
        return r.status, hdrs, body
    finally:
        conn.close()
