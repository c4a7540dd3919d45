"""ASGI middleware: the resource-server guard in front of an ASGI application.

`NmosAuthMiddleware(app, guard)` decides every `http` and `websocket` scope with the
Guard (IS-10 RS-22..RS-41) before the application sees it. Denied HTTP requests get
the guard's answer (NMOS error JSON, WWW-Authenticate, CORS); CORS pre-flight is
answered by the guard. A denied WebSocket handshake is refused before accept
(RS-39): with an HTTP response where the server offers the `websocket.http.response`
extension, else with `websocket.close` code 1008 (the server answers 403). Allowed
responses get the CORS headers the application did not set. The guard judges the raw
path (`raw_path`) when the server gives it (RS-32): `path` is already percent-decoded.
Under the IPMX profile a verified TLS client certificate binds the token's client_id (SEC-44):
its names come from the ASGI `tls` extension (`client_cert_chain`) when the server offers it;
servers without it (uvicorn) give no certificate, so no binding applies there.
Other scope types (lifespan) pass through untouched. An allowed WebSocket is closed with
code 1008 at the guard's ws_deadline (ws_expiry "close"): the server gets `websocket.close`,
the application `websocket.disconnect` (code 1008) on its next receive, and what it sends
after that is dropped.
"""

import asyncio
import time
import urllib.parse

from .guard import WS_EXPIRED_CODE, WS_EXPIRED_REASON, fold_header

_ACAO = b"access-control-allow-origin"
_ACEH = b"access-control-expose-headers"
_PATH_SAFE = "/!$&'()*+,;=:@-._~"  # RFC 3986 pchar minus '%': what re-encoding may leave as is


def scope_target(scope):
    """The request target for the guard: raw_path when present, else `path` re-encoded."""
    raw = scope.get("raw_path")
    if raw:
        path = raw.decode("latin-1")
    else:
        # `path` is decoded (and, per the ASGI spec, includes root_path): re-encode it.
        path = urllib.parse.quote(scope.get("path") or "/", safe=_PATH_SAFE)
    qs = scope.get("query_string") or b""
    return path + "?" + qs.decode("latin-1") if qs else path


def scope_headers(scope):
    """ASGI headers as the guard wants them (a repeated Authorization kept as a list)."""
    out = {}
    for n, v in scope.get("headers") or ():
        fold_header(out, n.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def scope_client_cert(scope):
    """The verified client certificate's CN and DNS SANs from the ASGI `tls` extension, or None
    when there is none. A certificate the server could not verify (`client_cert_error`), or one
    whose PEM cannot be read, gives () : under IPMX no client_id matches it (fail closed)."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls:
        return None
    if tls.get("client_cert_error"):
        return ()
    chain = tls.get("client_cert_chain")
    if not chain:
        return None
    from .aio.tlsutil import pem_cert_names

    try:
        return pem_cert_names(chain[0], "the client certificate")
    except ValueError:
        return ()


def _raw_headers(headers):
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


class NmosAuthMiddleware:
    """Wrap an ASGI 3 application: `app = NmosAuthMiddleware(app, Guard(validator))`."""

    def __init__(self, app, guard, clock=time.time):
        self.app = app
        self.guard = guard
        self.clock = clock
        self._cors = _raw_headers(guard.cors_headers())

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            return await self.app(scope, receive, send)
        headers = scope_headers(scope)
        if kind == "websocket":
            # The scope type says it is a handshake, whatever the server kept of the
            # Upgrade/Connection fields: access_token in the query is allowed (RS-37).
            headers["upgrade"] = "websocket"
            headers["connection"] = "upgrade"
            method = "GET"
        else:
            method = scope["method"]
        verdict = self.guard.check(method, scope_target(scope), headers, self.clock(), None,
                                   scope_client_cert(scope))
        answer = verdict.answer
        if answer is None:
            deadline = self.guard.ws_deadline(verdict) if kind == "websocket" else None
            if deadline is not None:
                return await self._websocket_until(scope, receive, self._with_cors(send), deadline)
            return await self.app(scope, receive, self._with_cors(send))
        if kind == "http":
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": _raw_headers(answer.headers)})
            await send({"type": "http.response.body", "body": answer.body})
            return
        await self._refuse_websocket(scope, receive, send, answer, verdict.decision.reason)

    async def _refuse_websocket(self, scope, receive, send, answer, reason):
        message = await receive()  # websocket.connect comes first (ASGI spec)
        if message.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": answer.status,
                        "headers": _raw_headers(answer.headers)})
            await send({"type": "websocket.http.response.body", "body": answer.body})
        else:
            # RFC 6455 §7.4.1: 1008 policy violation; the server turns it into a 403.
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:100]})

    async def _websocket_until(self, scope, receive, send, deadline):
        """Run the application on an allowed WebSocket and close it at `deadline` (UNIX time)."""
        state = {"closed": False}
        lock = asyncio.Lock()
        expired = asyncio.Event()

        async def close_at_deadline():
            await asyncio.sleep(max(0.0, deadline - self.clock()))
            async with lock:
                if not state["closed"]:
                    state["closed"] = True
                    await send({"type": "websocket.close", "code": WS_EXPIRED_CODE, "reason": WS_EXPIRED_REASON})
            expired.set()

        async def guarded_send(message):
            async with lock:
                if state["closed"]:
                    return  # closed at expiry: the server would refuse it
                if message.get("type") == "websocket.close":
                    state["closed"] = True
                await send(message)

        async def guarded_receive():
            if not expired.is_set():
                got = asyncio.ensure_future(receive())
                ends = asyncio.ensure_future(expired.wait())
                await asyncio.wait((got, ends), return_when=asyncio.FIRST_COMPLETED)
                ends.cancel()
                if got.done():
                    return got.result()
                got.cancel()
            return {"type": "websocket.disconnect", "code": WS_EXPIRED_CODE}

        timer = asyncio.ensure_future(close_at_deadline())
        try:
            return await self.app(scope, guarded_receive, guarded_send)
        finally:
            timer.cancel()

    def _with_cors(self, send):
        cors = self._cors

        async def send_with_cors(message):
            t = message["type"]
            if t == "http.response.start" or t == "websocket.http.response.start":
                headers = list(message.get("headers") or ())
                names = set(n.lower() for n, _ in headers)
                for n, v in cors:
                    if n not in names:
                        headers.append((n, v))
                message = dict(message, headers=headers)
            await send(message)
        return send_with_cors
