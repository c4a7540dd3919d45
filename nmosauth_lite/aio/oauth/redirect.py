"""The controller's loopback redirection endpoint (RFC 6749 §3.1.2, RFC 8252 §7.3; IS-10 CL-20).

Listens on the host and port of the registered redirect URI (http on a loopback address
only) for the one path it names. A request whose `state` does not match the one we sent
is answered 400 and ignored (CSRF, RFC 6749 §10.12), so a stray or forged request cannot
end the wait; the matching one ends it and gets a small page telling the user to return.
"""

import asyncio
import hmac
import ipaddress
import urllib.parse

from ...errors import ConfigError
from ..server import HTTPServer
from ..web import Response

PAGE = (b"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>nmosauth-lite</title></head>"
        b"<body><p>Authorization received. You can close this window.</p></body></html>")
HEADERS = [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
MAX_QUERY = 8192


class RedirectListener:
    def __init__(self, redirect_uri, state):
        parts = urllib.parse.urlsplit(redirect_uri)
        host = parts.hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if parts.scheme != "http" or not loopback or not parts.port:
            raise ConfigError("the redirect listener needs http://<loopback address>:<port>/<path> (RFC 8252 §7.3)")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = parts.port
        self.path = parts.path or "/"
        self.state = state
        self.ignored = 0
        self._future = None
        self._server = None

    def _handle(self, request):
        query = request.query[:MAX_QUERY]
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query, max_num_fields=32).items() if len(v) == 1}
        got = params.get("state", "")
        if not hmac.compare_digest(got.encode(), self.state.encode()):
            self.ignored += 1
            return Response(400, b"unexpected or missing state", HEADERS, content_type="text/plain")
        if not self._future.done():
            self._future.set_result(params)
        return Response(200, PAGE, HEADERS, content_type="text/html; charset=utf-8")

    async def __aenter__(self):
        self._future = asyncio.get_running_loop().create_future()
        server = HTTPServer(self._route)
        try:
            await server.start(self.host, self.port)
        except OSError as e:
            raise ConfigError("cannot listen for the redirect on %s:%d: %s" % (self.host, self.port, e))
        self._server = server
        return self

    def _route(self, request):
        if request.path != self.path or request.method not in ("GET", "HEAD"):
            return Response(404, b"not found", content_type="text/plain")
        return self._handle(request)

    async def wait(self, timeout, told=None):
        """The redirect's parameters; ConfigError after `timeout` s (`told`: the bound to name)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except asyncio.TimeoutError:
            raise ConfigError("no authorization redirect within %g s (--timeout)" % (told or timeout))

    async def __aexit__(self, *exc):
        if self._server is not None:
            await self._server.shutdown(1.0)
