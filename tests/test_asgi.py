"""asgi.py: NmosAuthMiddleware protecting a plain ASGI app (issue 3 item 6), driven by a real
ASGI server (uvicorn, with its `websockets-sansio` protocol that offers websocket.http.response)
and by calling the ASGI callable directly for what a server does not show (the 1008 close
fallback, raw_path versus path). Same decision classes as `protect` (IS-10 RS-22..RS-40).
"""

import asyncio
import http.client
import json
import re
import socket
import threading
import time

import aiohttp
import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from minting import Minter  # noqa: E402
from nmosauth_lite import TokenValidator  # noqa: E402
from nmosauth_lite.asgi import NmosAuthMiddleware  # noqa: E402
from nmosauth_lite.guard import Guard  # noqa: E402

AUD = "node1.example.com"
SELF = "/x-nmos/node/v1.3/self"
WWW = re.compile(r'^Bearer realm="node1\.example\.com"(,error=(invalid_token|insufficient_scope|invalid_request),'
                 r'error_description="[^",]*")?$')


async def node_app(scope, receive, send):
    """A plain ASGI app: JSON echo of what it was asked; a WebSocket that echoes one message."""
    if scope["type"] == "http":
        body = json.dumps({"method": scope["method"], "path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        msg = await receive()
        if msg["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": "echo:" + (msg.get("text") or "")})
            await send({"type": "websocket.close", "code": 1000})


@pytest.fixture(scope="module")
def m():
    return Minter()


def token(m, **over):
    now = int(time.time())
    claims = dict(iat=now - 10, exp=now + 600)
    claims.update(over)
    key = claims.pop("key", None)
    return m.token("RS512", claims=m.claims(**claims), key=key)


@pytest.fixture(scope="module")
def audit():
    return []


@pytest.fixture(scope="module")
def server(m, audit):
    """uvicorn in a thread on a socket we bound (port known), stopped by should_exit."""
    guard = Guard(TokenValidator(jwks=m.jwks, audience=[AUD]), audit=audit.append)
    app = NmosAuthMiddleware(node_app, guard)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started
    srv.port = sock.getsockname()[1]
    yield srv
    srv.should_exit = True
    thread.join(10)
    sock.close()


def call(port, method, path, headers=(), body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def check_error(status, headers, body, want, error):
    assert status == want
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Expose-Headers"] == "WWW-Authenticate, Retry-After"
    doc = json.loads(body)
    assert doc["code"] == want and doc["debug"] is None
    www = headers["WWW-Authenticate"]
    assert WWW.match(www), www
    assert (error is None and "error=" not in www) or ",error=%s," % error in www


def test_allowed_read_reaches_the_app_with_cors_added(server, m):
    status, h, body = call(server.port, "GET", SELF, {"Authorization": "Bearer " + token(m)})
    assert status == 200 and json.loads(body)["path"] == SELF
    assert h["Access-Control-Allow-Origin"] == "*" and h["Access-Control-Expose-Headers"].startswith("WWW-Auth")


@pytest.mark.parametrize("case,method,status,error", [
    ("missing", "GET", 401, None), ("expired", "GET", 401, "invalid_token"),
    ("bad-signature", "GET", 401, "invalid_token"), ("forbidden-write", "POST", 403, "insufficient_scope"),
    ("wrong-audience", "GET", 403, "insufficient_scope"), ("malformed-header", "GET", 400, "invalid_request"),
])
def test_denials_through_uvicorn(server, m, case, method, status, error):
    now = int(time.time())
    auth = {
        "missing": None, "expired": token(m, iat=now - 900, exp=now - 60), "bad-signature": token(m, key=m.attacker),
        "forbidden-write": token(m), "wrong-audience": token(m, aud=["https://node1.other.example.org"]),
        "malformed-header": "",
    }[case]
    headers = {} if auth is None else {"Authorization": ("Bearer " + auth) if auth else "Bearer"}
    check_error(*call(server.port, method, SELF, headers, b"{}" if method == "POST" else None), status, error)


def test_public_paths_and_preflight(server):
    assert call(server.port, "GET", "/x-nmos")[0] == 200
    status, h, body = call(server.port, "OPTIONS", SELF, {"Origin": "https://ui.example.com",
                                                          "Access-Control-Request-Method": "PATCH"})
    assert status == 200 and "Authorization" in h["Access-Control-Allow-Headers"] and body == b""


def test_query_token_ignored_on_plain_http(server, m):
    check_error(*call(server.port, "GET", SELF + "?access_token=" + token(m)), 401, None)


def test_websocket_allowed_with_query_token(server, m):
    async def go():
        async with aiohttp.ClientSession() as s:
            url = "ws://127.0.0.1:%d/x-nmos/query/v1.3/ws?access_token=%s" % (server.port, token(m))
            async with s.ws_connect(url) as ws:
                await ws.send_str("hi")
                return await ws.receive_str(timeout=5)
    assert asyncio.run(asyncio.wait_for(go(), 20)) == "echo:hi"


@pytest.mark.parametrize("case,status", [("none", 401), ("wrong-audience", 403)])
def test_websocket_refused_with_the_guard_answer(server, m, case, status):  # websocket.http.response
    query = "" if case == "none" else "?access_token=" + token(m, aud=["https://x.other.example.org"])

    async def go():
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_connect("ws://127.0.0.1:%d/x-nmos/query/v1.3/ws%s" % (server.port, query))
            return info.value
    err = asyncio.run(asyncio.wait_for(go(), 20))
    assert err.status == status
    assert WWW.match(err.headers["WWW-Authenticate"])


def test_audit_records_every_decision_without_tokens(server, audit):
    assert audit and {200, 401, 403, 400} <= set(r["status"] for r in audit)
    assert all("access_token" not in r["path"] for r in audit)
    assert all(r["token"] is None or len(r["token"]) == 16 for r in audit)


# --- direct calls: what a server does not show -----------------------------------------------

class Recorder:
    def __init__(self, incoming):
        self.incoming = list(incoming)
        self.sent = []

    async def receive(self):
        return self.incoming.pop(0) if self.incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message):
        self.sent.append(message)


def drive(app, scope, incoming=()):
    rec = Recorder(incoming)
    asyncio.run(app(scope, rec.receive, rec.send))
    return rec.sent


def ws_scope(path, query=b"", extensions=None, headers=()):
    scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": list(headers)}
    if extensions is not None:
        scope["extensions"] = extensions
    return scope


def test_websocket_denied_without_extension_closes_1008(m):
    app = NmosAuthMiddleware(node_app, Guard(TokenValidator(jwks=m.jwks, audience=[AUD])))
    sent = drive(app, ws_scope("/x-nmos/query/v1.3/ws"), [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "no token"}]
    sent = drive(app, ws_scope("/x-nmos/query/v1.3/ws", extensions={"websocket.http.response": {}}),
                 [{"type": "websocket.connect"}])
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401
    assert json.loads(sent[1]["body"])["code"] == 401


def test_raw_path_is_judged_not_the_decoded_path(m):  # RS-32
    app = NmosAuthMiddleware(node_app, Guard(TokenValidator(jwks=m.jwks, audience=[AUD])))
    auth = [(b"authorization", b"Bearer " + token(m).encode())]
    decoded = "/x-nmos/connection/v1.1/bulk/../single/x"
    scope = {"type": "http", "method": "PATCH", "path": decoded, "query_string": b"", "headers": auth,
             "raw_path": b"/x-nmos/connection/v1.1/bulk%2F..%2Fsingle/x"}
    # the raw target shows the encoded slashes, which the validator refuses (400 invalid_request)
    assert drive(app, scope, [{"type": "http.request", "body": b""}])[0]["status"] == 400
    del scope["raw_path"]  # without it the decoded path is all there is
    assert drive(app, scope, [{"type": "http.request", "body": b""}])[0]["status"] == 200


def test_lifespan_passes_through(m):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])
    mw = NmosAuthMiddleware(app, Guard(TokenValidator(jwks=m.jwks, audience=[AUD])))
    drive(mw, {"type": "lifespan"})
    assert seen == ["lifespan"]
