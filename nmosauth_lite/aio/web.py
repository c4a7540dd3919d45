"""Request, Response and Router: what handlers of our asyncio HTTP server see and return.

A handler is `handler(request) -> Response` or an awaitable of one. The Request reads
its body through the connection that owns it (nmosauth_lite.aio.server); a Response
carries a fixed or streamed body, or an `upgrade` callback for 101. Error bodies are
the NMOS error JSON (IS-04 error schema; ARCHITECTURE.md, Errors on the wire).
"""

from .. import jsonshim
from ..http11 import HTTPError


class Response:
    """What a handler returns. `body`: bytes/str, or an async iterable of bytes (streamed,
    chunked unless `content_length` is given). `upgrade`: with status 101, an
    `async def cb(reader, writer)` that gets the connection as asyncio streams.
    Do not put Content-Length or Transfer-Encoding in `headers`: the server frames bodies.
    """

    __slots__ = ("status", "body", "headers", "reason", "content_length", "upgrade")

    def __init__(self, status=200, body=b"", headers=None, *, content_type=None, reason=None,
                 content_length=None, upgrade=None):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        if headers is None:
            headers = []
        elif isinstance(headers, dict):
            headers = list(headers.items())
        else:
            headers = list(headers)
        if content_type is not None:
            headers.append(("content-type", content_type))
        self.headers = headers
        self.reason = reason
        self.content_length = content_length
        self.upgrade = upgrade


def json_response(obj, status=200, headers=None):
    return Response(status, jsonshim.dumps(obj).encode("utf-8"), headers,
                    content_type="application/json")


def error_response(status, message, headers=None):
    """NMOS error JSON (IS-04 error schema): {"code", "error", "debug"}."""
    return json_response({"code": status, "error": message, "debug": None}, status, headers)


class Request:
    """One request: method, target, path (raw, percent-encoded), query (raw), headers
    (list of lowercased-name/value bytes pairs), client address, TLS details, body."""

    __slots__ = ("method", "target", "path", "query", "head", "headers", "_conn", "_fields")

    def __init__(self, conn, head):
        self._conn = conn
        self.head = head
        self.headers = head.headers
        self.method = head.method.decode("ascii")
        target = self.target = head.target.decode("ascii")
        if target[0] != "/" and target != "*":
            scheme, sep, rest = target.partition("://")  # absolute-form (RFC 9112 §3.2.2)
            slash = rest.find("/")
            target = rest[slash:] if sep and slash >= 0 else "/"
        self.path, _, self.query = target.partition("?")
        self._fields = None

    def header(self, name, default=None):
        """First value of a header (name in any case) as str, or `default`."""
        fields = self._fields
        if fields is None:
            fields = self._fields = {}
            for n, v in reversed(self.headers):
                fields[n] = v
        value = fields.get(name.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    @property
    def client(self):
        return self._conn.peername

    @property
    def version(self):
        return self.head.version.decode()

    @property
    def keep_alive(self):
        return self.head.keep_alive

    @property
    def upgrade(self):
        """Upgrade protocol (lowercase str) when the client asked for one, else None."""
        up = self.head.upgrade
        return up.decode("latin-1").strip().lower() if up else None

    @property
    def has_body(self):
        return self.head.chunked or bool(self.head.content_length)

    @property
    def tls(self):
        return self._conn.transport.get_extra_info("sslcontext") is not None

    @property
    def peer_cert(self):
        """The verified client certificate (ssl.getpeercert() dict), or None."""
        return self._conn.transport.get_extra_info("peercert") or None

    @property
    def transport(self):
        return self._conn.transport

    async def read(self, limit=None):
        """The whole body. Raises HTTPError 413 past `limit` or the server's max_body."""
        parts = []
        size = 0
        while True:
            chunk = await self._conn.read_chunk()
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if limit is not None and size > limit:
                exc = HTTPError("body too large")
                exc.status_hint = 413
                raise exc
            parts.append(chunk)

    async def iter_body(self):
        """The body as it arrives (for streaming to an upstream)."""
        while True:
            chunk = await self._conn.read_chunk()
            if not chunk:
                return
            yield chunk


class Router:
    """Method + path -> handler. Exact paths first, then the longest matching prefix
    (segment-wise: "/x-nmos" matches "/x-nmos" and "/x-nmos/..."). Method "*" = any;
    HEAD falls back to GET. Unknown path: 404; known path, other method: 405 + Allow."""

    def __init__(self):
        self._exact = {}
        self._prefixes = []

    def add(self, methods, path, handler, *, prefix=False):
        if isinstance(methods, str):
            methods = [methods]
        if prefix:
            key = path if path.endswith("/") else path + "/"
            for p, table in self._prefixes:
                if p == key:
                    break
            else:
                table = {}
                self._prefixes.append((key, table))
                self._prefixes.sort(key=lambda item: -len(item[0]))
        else:
            table = self._exact.setdefault(path, {})
        for m in methods:
            table[m.upper()] = handler
        return handler

    def __call__(self, request):
        path = request.path
        table = self._exact.get(path)
        if table is None:
            probe = path + "/"
            for p, t in self._prefixes:
                if probe.startswith(p):
                    table = t
                    break
            else:
                return error_response(404, "not found")
        handler = table.get(request.method) or table.get("*")
        if handler is None and request.method == "HEAD":
            handler = table.get("GET")
        if handler is None:
            allow = sorted(table) + (["HEAD"] if "GET" in table and "HEAD" not in table else [])
            return error_response(405, "method not allowed", [("allow", ", ".join(allow))])
        return handler(request)
