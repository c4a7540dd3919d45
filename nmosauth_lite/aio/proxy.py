"""The authorizing reverse proxy behind `nmosauth-lite protect` (issue 3, item 5).

Every request meets the Guard first (IS-10 RS-22..RS-41: answers, CORS, audit);
allowed ones go to one upstream origin (http, or https verified against the
system CAs plus a CA file) over a small keep-alive pool, with hop-by-hop fields
dropped (RFC 9110 §7.6.1), Host and X-Forwarded-* set from what we saw (a
client's own kept only from trusted proxies), bodies streamed both ways, and
WebSocket upgrades spliced after the upstream's 101 (RFC 6455 §4.1) only for a
GET whose token was checked. Without a token only GET, HEAD and OPTIONS without
a body or upgrade pass (issue 11 §1: `token_free`). The path sent upstream is
the canonical path the guard judged (RS-32). Upstream failures are answered
502/504 in NMOS error JSON. Leaves out HTTP/2, caching, load balancing.
"""

import asyncio
import ipaddress
import logging
import time
import urllib.parse

from ..errors import ConfigError, InvalidRequestError
from ..guard import FIELDS as GUARD_FIELDS
from ..guard import fold_header, strip_access_token
from ..http11 import NEED_DATA, Data, EndOfMessage, HTTPError, ResponseParser, build_chunk, build_request_head
from ..logfield import escape
from ..permissions import normalize_path
from ..validator import ALLOW_PUBLIC
from .files import is_loopback
from .tlsutil import client_context
from .web import Response, error_response

log = logging.getLogger("nmosauth_lite.proxy")

DEFAULT_CONNECT_TIMEOUT = 5.0  # TCP connect + TLS handshake to the upstream
DEFAULT_UPSTREAM_TIMEOUT = 30.0  # waiting for the upstream: response head, each body read, each write
DEFAULT_POOL_SIZE = 8  # idle upstream connections kept
POOL_IDLE = 4.0  # below the common 5 s keep-alive timeout of upstream servers
SPLICE_LINGER = 2.0  # after one side of a spliced WebSocket ends, the other gets this long
READ_SIZE = 65536
STREAM_LIMIT = 1 << 60  # bodies are streamed through: the parser enforces framing, not size
# RFC 9110 §7.6.1 hop-by-hop fields, plus what we frame or set ourselves.
_HOP_REQUEST = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
                b"host", b"content-length", b"expect", b"x-forwarded-for", b"x-forwarded-proto",
                b"x-forwarded-host", b"forwarded", b"x-real-ip"}
# What a client may claim about earlier hops: believed (appended to) only from a trusted proxy.
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-real-ip")
# Issue 11 §1: what may reach the upstream without a token. Nothing else does.
TOKEN_FREE_METHODS = ("GET", "HEAD", "OPTIONS")  # on / and /x-nmos; OPTIONS anywhere (GEN-04)
PUBLIC_ALLOW = "GET, HEAD, OPTIONS"  # the Allow of a 405 on / and /x-nmos
REFUSED_METHODS = ("CONNECT", "TRACE")  # never forwarded: tunnels and reflection
MAX_TRUST_CACHE = 256  # client addresses remembered as trusted proxy or not
_HOP_RESPONSE = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
                 b"content-length", b"date"}  # our server writes its own Date


# The fields Guard.check reads (token, WebSocket upgrade, CORS pre-flight): only these are
# decoded for it, on every request (the hot path). Keep in step with guard.py.
_GUARD_FIELDS = dict((n.encode(), n) for n in GUARD_FIELDS)


def guard_headers(raw):
    """The request's [(lowercase bytes, bytes)] as the guard wants them: str dict of the fields
    it reads, repeated fields joined with ', ', a repeated Authorization kept as a list."""
    out = {}
    fields = _GUARD_FIELDS
    for n, v in raw:
        name = fields.get(n)
        if name is not None:
            fold_header(out, name, v.decode("latin-1"))
    return out


def answer_response(answer):
    """A guard Answer as a server Response (the server frames the body itself)."""
    return Response(answer.status, answer.body, [h for h in answer.headers if h[0].lower() != "content-length"])


def canonical_path(path):
    """The path the validator judged, as a string: unreserved escapes decoded, dot segments
    removed, repeated slashes merged; a trailing slash kept (NMOS listings use it)."""
    if "%" not in path and "//" not in path and "/." not in path:
        return path
    segs = normalize_path(path)
    tail = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    return "/" + "/".join(segs) + ("/" if segs and tail else "")


def _connection_tokens(headers):
    out = set()
    for n, v in headers:
        if n == b"connection":
            out.update(t.strip().lower() for t in v.split(b",") if t.strip())
    return out


class _Conn:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def abort(self):
        self.writer.transport.abort()


class _Stale(Exception):
    """A pooled connection the upstream had closed before answering."""


class AuthProxy:
    """An HTTPServer handler: `HTTPServer(AuthProxy(guard, "http://127.0.0.1:8080"), ssl=ctx)`.

    keep_host: forward the client's Host instead of the upstream's. strip_authorization:
    do not forward the Authorization header. `ca_file` adds trust anchors for an https upstream.
    trusted_proxies: addresses or networks ("127.0.0.1", "10.0.0.0/8") whose X-Forwarded-* and
    Forwarded values are kept and appended to; from anyone else they are dropped.
    keys, key_wait: a KeyStore and the seconds a request waits for a key fetch in flight
    before its 503 stands (issue 12 §1; IS-10 RS-07).
    """

    def __init__(self, guard, upstream, *, ca_file=None, ssl_context=None, keep_host=False,
                 strip_authorization=False, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                 timeout=DEFAULT_UPSTREAM_TIMEOUT, pool_size=DEFAULT_POOL_SIZE, clock=time.time,
                 trusted_proxies=(), keys=None, key_wait=0.0):
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError("upstream must be an http:// or https:// URL without query: %r" % upstream[:80])
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ConfigError("bad port in upstream URL %r" % upstream[:80])
        self.guard = guard
        self.upstream = upstream
        self.host = parts.hostname
        self.base = parts.path.rstrip("/")
        name = "[%s]" % self.host if ":" in self.host else self.host
        default_port = 443 if parts.scheme == "https" else 80
        self.host_header = (name if self.port == default_port else "%s:%d" % (name, self.port)).encode()
        self._ssl = None
        if parts.scheme == "https":
            self._ssl = ssl_context or client_context(ca_file)
        elif not is_loopback(self.host):
            log.warning("upstream %s is plain HTTP on the network: tokens and data cross it unencrypted "
                        "(IS-10 GEN-01); use https or a loopback upstream", upstream)
        self.keep_host = keep_host
        self.strip_authorization = strip_authorization
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.pool_size = pool_size
        self.clock = clock
        self.trusted = _networks(trusted_proxies)
        self._trust_cache = {}
        self.keys = keys
        self.key_wait = key_wait
        self._pool = []

    # --- the handler ----------------------------------------------------------------
    def __call__(self, request):
        method = request.method
        if method in REFUSED_METHODS:
            return self.error(405, "Method Not Allowed: %s is not forwarded" % method,
                              [("Allow", self.guard.allow_methods)])
        target = request.target
        if target[:1] != "/":
            refused = self._refuse_target(request, target)
            if refused is not None:
                return refused
            if target != "*":  # absolute-form naming us: judge the path, as the server routes it
                target = request.path + ("?" + request.query if request.query else "")
        headers = guard_headers(request.headers)
        verdict = self.guard.check(method, target, headers, self.clock())
        if verdict.answer is not None:
            if verdict.decision.status == 503 and self.keys is not None and self.key_wait > 0:
                return self._after_keys(request, target, headers)
            return answer_response(verdict.answer)
        return self._admit(request, target, verdict)

    def _admit(self, request, target, verdict):
        """The guard allowed it: refuse what a token-free request may not carry, then forward."""
        if verdict.decision is ALLOW_PUBLIC:  # no token was needed: / and /x-nmos, or OPTIONS
            if request.method not in TOKEN_FREE_METHODS:
                return self.error(405, "Method Not Allowed: only GET, HEAD and OPTIONS here",
                                  [("Allow", PUBLIC_ALLOW)])
            if request.has_body:
                return self.error(400, "Bad Request: a request without a token carries no body",
                                  [("Connection", "close")])
            return self._forward(request, target, False)
        # BCP-003-02: only a GET whose token was checked becomes a WebSocket upgrade
        return self._forward(request, target, request.method == "GET" and request.upgrade == "websocket")

    async def _after_keys(self, request, target, headers):
        """Keys for the token's issuer are being fetched: wait for it (bounded by key_wait),
        deciding again each time a fetch ends; the 503 + Retry-After stands after that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.key_wait
        while True:
            changed = await self.keys.wait_change(deadline - loop.time())
            verdict = self.guard.check(request.method, target, headers, self.clock())
            if verdict.answer is None or verdict.decision.status != 503 or not changed:
                break
        if verdict.answer is not None:
            return answer_response(verdict.answer)
        result = self._admit(request, target, verdict)
        return (await result) if not isinstance(result, Response) else result

    def _refuse_target(self, request, target):
        """RFC 9112 §3.2: authority-form is for CONNECT only, asterisk-form for OPTIONS only,
        absolute-form must name this server (the Host the client sent), never another one."""
        if target == "*":
            return None if request.method == "OPTIONS" else self.error(400, "Bad Request: '*' is for OPTIONS")
        scheme, sep, rest = target.partition("://")
        if not sep:
            return self.error(400, "Bad Request: authority-form target is not forwarded")
        authority = rest.split("/", 1)[0].split("?", 1)[0].lower()
        host = request.header("host")
        if scheme.lower() not in ("http", "https") or not authority or host is None or \
                authority != host.strip().lower():
            return self.error(400, "Bad Request: absolute-form target names another host")
        return None

    def is_trusted(self, address):
        """True when `address` (the client's IP) is a configured trusted proxy."""
        if not self.trusted or not address:
            return False
        known = self._trust_cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                known = any(ip in net for net in self.trusted)
            except ValueError:
                known = False
            if len(self._trust_cache) >= MAX_TRUST_CACHE:
                self._trust_cache = {}
            self._trust_cache[address] = known
        return known

    def error(self, status, message, headers=()):
        return error_response(status, message, self.guard.cors_headers() + list(headers))

    async def close(self):
        pool, self._pool = self._pool, []
        for conn in pool:
            conn.abort()

    # --- the upstream request ----------------------------------------------------------
    def _target(self, target):
        path, q, query = target.partition("?")
        try:
            path = canonical_path(path)
        except InvalidRequestError:
            pass  # judged without a path (OPTIONS): forwarded as sent
        return self.base + path + (strip_access_token("?" + query) if q else "")

    def _headers(self, request, websocket):
        hop = _HOP_REQUEST
        listed = _connection_tokens(request.headers)
        out = [None]
        client = request.client[0] if request.client else None
        trusted = self.is_trusted(client)
        seen = {}  # a trusted proxy's X-Forwarded-* / Forwarded values
        client_host = None
        for n, v in request.headers:
            if n in hop or n in listed or n[:6] == b"proxy-":
                if n == b"host":
                    client_host = v
                elif trusted and n in _FORWARDED:
                    seen[n] = v if n not in seen else seen[n] + b", " + v
                continue
            if n == b"authorization" and self.strip_authorization:
                continue
            out.append((n, v))
        out[0] = (b"host", client_host if self.keep_host and client_host else self.host_header)
        proto = b"https" if request.tls else b"http"
        mine = {b"x-forwarded-for": (client or "unknown").encode(), b"x-forwarded-proto": proto,
                b"x-forwarded-host": client_host}
        for name, value in mine.items():  # what we saw, appended to what a trusted proxy said
            if value is not None:
                out.append((name, value if name not in seen else seen[name] + b", " + value))
        if trusted:
            if b"x-real-ip" in seen:
                out.append((b"x-real-ip", seen[b"x-real-ip"]))
            if b"forwarded" in seen:  # RFC 7239 §4: our element appended to the list
                node = client or "unknown"
                node = '"[%s]"' % node if ":" in node else node
                mine = b"for=%s;proto=%s" % (node.encode(), proto)
                out.append((b"forwarded", seen[b"forwarded"] + b", " + mine))
        if websocket:
            out.append((b"connection", b"upgrade"))
            out.append((b"upgrade", b"websocket"))
        head = request.head
        if head.chunked:
            out.append((b"transfer-encoding", b"chunked"))
        elif head.content_length is not None:
            out.append((b"content-length", b"%d" % head.content_length))
        return out

    async def _forward(self, request, target, websocket):
        head = build_request_head(request.method, self._target(target), self._headers(request, websocket))
        has_body = request.has_body
        conn = None
        try:
            conn = self._take()
            try:
                if conn is None:
                    raise _Stale()
                resp, parser = await self._exchange(conn, request, head, has_body)
            except _Stale:
                if conn is not None:
                    conn.abort()
                    if has_body:  # the body is gone: it cannot be sent again
                        raise ConnectionResetError("pooled upstream connection closed")
                conn = await self._connect()
                resp, parser = await self._exchange(conn, request, head, has_body)
        except BaseException as exc:
            if conn is not None:
                conn.abort()
            if isinstance(exc, _ClientSide):  # the client's body failed: its own error, not a 502
                raise exc.__cause__
            what = "%s %s" % (request.method, strip_access_token(target)[:200])
            if isinstance(exc, TimeoutError):  # before OSError, of which it is a subclass
                log.warning("upstream %s timed out for %s", self.upstream, escape(what))
                return self.error(504, "Gateway Timeout: upstream did not answer in time")
            if isinstance(exc, (OSError, HTTPError, _Stale)):
                log.warning("upstream %s failed for %s: %s", self.upstream, escape(what),
                            escape(exc or type(exc).__name__))
                return self.error(502, "Bad Gateway: upstream unreachable or invalid answer")
            raise
        if resp.status == 101:
            if not websocket:  # never splice what no token allowed (issue 11 §1)
                conn.abort()
                log.warning("upstream %s switched protocols for a request not forwarded as an upgrade",
                            self.upstream)
                return self.error(502, "Bad Gateway: unexpected protocol switch", [("Connection", "close")])
            return Response(101, headers=self._response_headers(resp) + [("upgrade", "websocket")],
                            upgrade=self._splice(conn, parser.take_buffer()))
        return self._response(request, conn, resp, parser)

    async def _connect(self):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl,
                                        server_hostname=self.host if self._ssl else None, limit=READ_SIZE),
                self.connect_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("connect timeout")
        return _Conn(reader, writer)

    async def _exchange(self, conn, request, head, has_body):
        writer = conn.writer
        writer.write(head)
        if has_body:
            chunked = request.head.chunked
            body = request.iter_body()
            while True:
                try:
                    chunk = await body.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:  # the client's side failed (408, reset): not a 502
                    raise _ClientSide() from exc
                writer.write(build_chunk(chunk) if chunked else chunk)
                await asyncio.wait_for(writer.drain(), self.timeout)
            if chunked:
                writer.write(b"0\r\n\r\n")
        try:
            await asyncio.wait_for(writer.drain(), self.timeout)
        except ConnectionError:  # a pooled connection the upstream had closed: retried if it can be
            raise _Stale()
        parser = ResponseParser(STREAM_LIMIT)
        parser.start(request.method)
        received = False
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                try:
                    data = await asyncio.wait_for(conn.reader.read(READ_SIZE), self.timeout)
                except ConnectionError:
                    if received:
                        raise
                    data = b""
                if data:
                    received = True
                    parser.feed(data)
                elif not received:
                    raise _Stale()
                else:
                    parser.feed_eof()
            elif event.status >= 200 or event.status == 101:
                return event, parser
            # other 1xx: interim, the final answer follows (RFC 9110 §15.2)

    def _response_headers(self, resp):
        hop = _HOP_RESPONSE
        listed = _connection_tokens(resp.headers)
        out = [(n, v) for n, v in resp.headers if not (n in hop or n in listed or n[:6] == b"proxy-")]
        names = set(n for n, _ in out)
        # The guard's CORS fields where the upstream set none (IS-10 RS-27: on every response)
        return out + [(n, v) for n, v in self.guard.cors_headers() if n.lower().encode() not in names]

    def _response(self, request, conn, resp, parser):
        headers = self._response_headers(resp)
        if request.method == "HEAD" or resp.status in (204, 304):
            try:
                ended = parser.next_event().__class__ is EndOfMessage
            except HTTPError:
                ended = False
            self._release(conn, resp, parser, ended)
            length = None
            if request.method == "HEAD":  # the parser does not read framing of a HEAD answer
                cl = resp.get(b"content-length")
                length = int(cl) if cl is not None and cl.isdigit() and len(cl) < 19 else None
            return Response(resp.status, _empty(), headers, content_length=length)
        parts = []
        try:
            while True:  # what already arrived with the head: small answers need no stream
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                if event.__class__ is not Data:
                    self._release(conn, resp, parser)
                    return Response(resp.status, b"".join(parts), headers)
                parts.append(event.data)
        except HTTPError as exc:
            conn.abort()
            log.warning("upstream %s sent a bad body: %s", self.upstream, escape(exc.message))
            return self.error(502, "Bad Gateway: invalid answer from upstream")
        return Response(resp.status, self._stream(conn, resp, parser, parts), headers,
                        content_length=resp.content_length)

    async def _stream(self, conn, resp, parser, parts):
        done = False
        try:
            for part in parts:
                yield part
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    data = await asyncio.wait_for(conn.reader.read(READ_SIZE), self.timeout)
                    if data:
                        parser.feed(data)
                    else:
                        parser.feed_eof()
                elif event.__class__ is Data:
                    yield event.data
                else:
                    done = True
                    return
        except (OSError, HTTPError, asyncio.TimeoutError) as exc:
            log.warning("upstream %s failed mid-response: %s", self.upstream, escape(exc or type(exc).__name__))
            raise ConnectionResetError("upstream failed mid-response")
        finally:
            if done:
                self._release(conn, resp, parser)
            else:
                conn.abort()

    # --- the pool -------------------------------------------------------------------------
    def _release(self, conn, resp, parser, ended=True):
        if ended and resp.keep_alive and not parser.buffered and len(self._pool) < self.pool_size \
                and not conn.reader.at_eof() and not conn.writer.is_closing():
            conn.idle_since = time.monotonic()
            self._pool.append(conn)
        else:
            conn.abort()

    def _take(self):
        now = time.monotonic()
        while self._pool:
            conn = self._pool.pop()
            if now - conn.idle_since < POOL_IDLE and not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.abort()
        return None

    # --- WebSocket splice -------------------------------------------------------------------
    def _splice(self, conn, leftover):
        async def splice(reader, writer):
            if leftover:
                writer.write(leftover)
            a = asyncio.ensure_future(_pump(reader, conn.writer))
            b = asyncio.ensure_future(_pump(conn.reader, writer))
            try:
                done, pending = await asyncio.wait((a, b), return_when=asyncio.FIRST_COMPLETED)
                if pending:
                    await asyncio.wait(pending, timeout=SPLICE_LINGER)
            finally:
                a.cancel()
                b.cancel()
                conn.abort()
        return splice


def _networks(specs):
    out = []
    for spec in specs or ():
        try:
            out.append(ipaddress.ip_network(str(spec).strip(), strict=False))
        except ValueError:
            raise ConfigError("trusted proxy %r is not an IP address or network" % str(spec)[:80])
    return tuple(out)


class _ClientSide(ConnectionError):
    """Reading the client's body failed: re-raised as the original error, not a 502."""


async def _pump(src, dst):
    """Copy until EOF, then pass the EOF on (half-close where the transport can, else close)."""
    try:
        while True:
            data = await src.read(READ_SIZE)
            if not data:
                break
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
        else:
            dst.close()
    except (OSError, RuntimeError):
        dst.transport.abort()


async def _empty():
    return
    yield  # an async generator with no items
