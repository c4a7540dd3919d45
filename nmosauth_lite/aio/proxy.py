"""The authorizing reverse proxy behind `nmosauth-lite protect` (issue 3, item 5): its I/O.

Every request meets the Guard first (IS-10 RS-22..RS-41: answers, CORS, audit; with the verified
TLS client certificate's names, for the IPMX client_id binding, SEC-44), then the
token-free boundary and header rewrite of `aio.boundary` (issue 11 §1); allowed ones go to one
upstream origin (http, or https verified against the system CAs plus a CA file) over a small
keep-alive pool, bodies streamed both ways, WebSocket upgrades spliced after the upstream's 101
(RFC 6455 §4.1; aio/splice.py, which also closes them at the token's expiry, issue 20 §3). During start-up a
request waits, bounded, for keys being fetched (issue 12 §1). Upstream
failures are answered 502/504 in NMOS error JSON. Leaves out HTTP/2, caching, load balancing.
"""

import asyncio
import logging
import time
import urllib.parse

from ..errors import ConfigError
from ..guard import strip_access_token
from ..http11 import NEED_DATA, Data, EndOfMessage, HTTPError, ResponseParser, build_chunk, build_request_head
from ..logfield import escape
from ..validator import ALLOW_PUBLIC
from .boundary import (MAX_TRUST_CACHE, PUBLIC_ALLOW, REFUSED_METHODS, TOKEN_FREE_METHODS,  # noqa: F401
                       answer_response, canonical_path, forward_headers, guard_headers, is_in_networks,
                       is_websocket_upgrade, parse_networks, response_headers, target_refusal,
                       token_free_refusal, upstream_target)
from .closing import abort
from .files import is_loopback
from .splice import splice
from .tlsutil import client_context, peer_cert_names
from .web import Response, error_response

log = logging.getLogger("nmosauth_lite.proxy")

DEFAULT_CONNECT_TIMEOUT = 5.0  # TCP connect + TLS handshake to the upstream
DEFAULT_UPSTREAM_TIMEOUT = 30.0  # waiting for the upstream: response head, each body read, each write
DEFAULT_POOL_SIZE = 8  # idle upstream connections kept
POOL_IDLE = 4.0  # below the common 5 s keep-alive timeout of upstream servers
READ_SIZE = 65536
STREAM_LIMIT = 1 << 60  # bodies are streamed through: the parser enforces framing, not size


class _Conn:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def abort(self):
        abort(self.writer)


class _Stale(Exception):
    """A pooled connection the upstream had closed before answering."""


class AuthProxy:
    """An HTTPServer handler: `HTTPServer(AuthProxy(guard, "http://127.0.0.1:8080"), ssl=ctx)`.

    keep_host: forward the client's Host instead of the upstream's. strip_authorization:
    do not forward the Authorization header. `ca_file` adds trust anchors for an https upstream.
    trusted_proxies: addresses or networks ("127.0.0.1", "10.0.0.0/8") whose X-Forwarded-* and
    Forwarded values are kept and appended to; from anyone else they are dropped.
    keys, key_wait: a KeyStore and the seconds a request waits for a key fetch in flight
    before its 503 stands (issue 12 §1; IS-10 RS-07), in its start-up window only (issue 19 §2).
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
        self.trusted = parse_networks(trusted_proxies)
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
            refused = target_refusal(method, target, request.header("host"))
            if refused is not None:
                return self.error(400, refused)
            if target != "*":  # absolute-form naming us: judge the path, as the server routes it
                target = request.path + ("?" + request.query if request.query else "")
        headers = guard_headers(request.headers)
        peer = request.client[0] if request.client else None
        verdict = self.guard.check(method, target, headers, self.clock(), peer, peer_cert_names(request.peer_cert))
        if verdict.answer is not None:
            if verdict.decision.status == 503 and self.keys is not None and self.key_wait > 0 \
                    and self.keys.starting:  # waiting belongs to start-up only (issue 19 §2)
                return self._after_keys(request, target, headers)
            return answer_response(verdict.answer)
        return self._admit(request, target, verdict)

    def _admit(self, request, target, verdict):
        """The guard allowed it: refuse what a token-free request may not carry, then forward."""
        if verdict.decision is ALLOW_PUBLIC:  # no token was needed: / and /x-nmos, or OPTIONS
            refused = token_free_refusal(request.method, request.has_body)
            if refused is not None:
                return self.error(*refused)
            return self._forward(request, target, False)
        websocket = is_websocket_upgrade(request.method, request.upgrade)
        if verdict.would_deny:
            # observe mode: forwarded without the credentials enforcing would have stopped
            return self._forward(request, target, websocket, None, True)
        return self._forward(request, target, websocket, self.guard.ws_deadline(verdict) if websocket else None)

    async def _after_keys(self, request, target, headers):
        """Keys for the token's issuer are being fetched: wait for it (bounded by key_wait),
        deciding again each time a fetch ends; the 503 + Retry-After stands after that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.key_wait
        while True:
            changed = await self.keys.wait_change(deadline - loop.time())
            verdict = self.guard.check(request.method, target, headers, self.clock(),
                                       request.client[0] if request.client else None,
                                       peer_cert_names(request.peer_cert))
            if verdict.answer is None or verdict.decision.status != 503 or not changed:
                break
        if verdict.answer is not None:
            return answer_response(verdict.answer)
        result = self._admit(request, target, verdict)
        return (await result) if not isinstance(result, Response) else result

    def is_trusted(self, address):
        """True when `address` (the client's IP) is a configured trusted proxy."""
        if not self.trusted or not address:
            return False
        known = self._trust_cache.get(address)
        if known is None:
            known = is_in_networks(address, self.trusted)
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
    def _headers(self, request, websocket, strip_authorization=False):
        client = request.client[0] if request.client else None
        return forward_headers(request, websocket, self.is_trusted(client), self.host_header,
                               self.keep_host, self.strip_authorization or strip_authorization)

    async def _forward(self, request, target, websocket, ws_deadline=None, strip_authorization=False):
        head = build_request_head(request.method, upstream_target(self.base, target),
                                  self._headers(request, websocket, strip_authorization))
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
                            upgrade=self._splice(conn, parser.take_buffer(), ws_deadline))
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
        return response_headers(resp.headers, self.guard.cors_headers())

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

    # --- WebSocket splice (aio/splice.py) ---------------------------------------------------
    def _splice(self, conn, leftover, deadline):
        async def relay(reader, writer):
            await splice(reader, writer, conn, leftover, deadline, self.clock)
        return relay


class _ClientSide(ConnectionError):
    """Reading the client's body failed: re-raised as the original error, not a 502."""


async def _empty():
    return
    yield  # an async generator with no items
