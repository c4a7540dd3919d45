"""aiohttp middleware: the resource-server guard in front of an aiohttp Node (issue 20 §1).

`web.Application(middlewares=[nmos_auth_middleware(guard)])` decides every request with the
same Guard as `protect` and the ASGI/WSGI adapters (IS-10 RS-22..RS-41): denied requests get
the guard's answer (NMOS error JSON, WWW-Authenticate, CORS) before any handler runs, a
WebSocket upgrade included (RS-39: refused before the handshake; `access_token` in the query
counts on upgrades only, RS-37, RS-40); CORS pre-flight is answered by the guard. The raw
request target is judged (`request.raw_path`: aiohttp's `path` is percent-decoded, RS-32).
Handlers find the token's claims in `request["nmos_auth"]` (None when no token was needed).
The verified TLS client certificate (`transport.get_extra_info("peercert")`, when the app's
SSLContext asks for one) goes to the guard: under the IPMX profile a token's client_id must
name it (SEC-44).
An allowed WebSocket is closed with code 1008 at the guard's ws_deadline (ws_expiry "close").
aiohttp is optional: `pip install 'nmosauth-lite[aiohttp]'`.
"""

import asyncio
import logging
import time
import warnings

from aiohttp import web

from .aio.tlsutil import peer_cert_names
from .guard import WS_EXPIRED_CODE, WS_EXPIRED_REASON, fold_header, is_websocket_upgrade

log = logging.getLogger("nmosauth_lite.aiohttp")

REQUEST_KEY = "nmos_auth"  # a plain string, as the docs promise (`request["nmos_auth"]`)
_SKIP = ("content-length",)  # aiohttp frames the body itself


def request_headers(request):
    """The request's fields as the guard wants them (a repeated Authorization kept as a list)."""
    out = {}
    for n, v in request.raw_headers:
        fold_header(out, n.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def answer_response(answer):
    """The guard's Answer as an aiohttp Response."""
    headers = [(n, v) for n, v in answer.headers if n.lower() not in _SKIP]
    return web.Response(status=answer.status, body=answer.body, headers=headers)


_state = {"quiet": False}


def nmos_auth_middleware(guard, clock=time.time):
    """The middleware for `web.Application(middlewares=[...])`, deciding with `guard`."""
    cors = guard.cors_headers()

    def add_cors(response):
        for n, v in cors:
            if n not in response.headers:
                response.headers[n] = v

    @web.middleware
    async def nmos_auth(request, handler):
        headers = request_headers(request)
        transport = request.transport
        cert = None if transport is None else peer_cert_names(transport.get_extra_info("peercert"))
        verdict = guard.check(request.method, request.raw_path, headers, clock(), None, cert)
        if verdict.answer is not None:
            return answer_response(verdict.answer)
        if _state["quiet"]:
            request[REQUEST_KEY] = verdict.decision.claims
        else:  # aiohttp >= 3.12 warns once about a str key: the documented name is one on purpose
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                request[REQUEST_KEY] = verdict.decision.claims
            _state["quiet"] = True
        timers = []
        if request.method == "GET" and is_websocket_upgrade(headers):
            deadline = guard.ws_deadline(verdict)
            if deadline is not None:
                _close_at(request, deadline - clock(), timers)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a handler's raised answer gets CORS like a returned one
            add_cors(exc)
            raise
        finally:
            for t in timers:
                t.cancel()
        if isinstance(response, web.StreamResponse) and not response.prepared:
            add_cors(response)
        return response

    return nmos_auth


def _close_at(request, delay, timers):
    """Close the WebSocketResponse the handler prepares for `request` after `delay` seconds
    (RFC 6455 §7.4.1 code 1008). aiohttp calls request._prepare_hook(response) from
    StreamResponse.prepare; wrapping it on this one request is how a middleware meets the
    response of a handler that never returns it while the socket is open."""
    original = getattr(request, "_prepare_hook", None)
    if original is None:  # an aiohttp without the hook: the socket is kept (ws_expiry keep)
        log.warning("this aiohttp offers no prepare hook: WebSockets are kept past their token's expiry")
        return
    loop = asyncio.get_running_loop()

    async def close(ws):
        if not ws.closed:
            await ws.close(code=WS_EXPIRED_CODE, message=WS_EXPIRED_REASON.encode())

    async def hook(response):
        await original(response)
        if isinstance(response, web.WebSocketResponse):
            tasks = []

            def fire():
                tasks.append(asyncio.ensure_future(close(response)))
            timers.append(loop.call_later(max(0.0, delay), fire))

    request._prepare_hook = hook
