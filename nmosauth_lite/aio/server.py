"""A small asyncio HTTP/1.1 server on the sans-I/O core (`nmosauth_lite.http11`).

One asyncio.Protocol per connection and no per-byte awaits: bytes go to the parser in
data_received, and a handler that is a plain function answers a bodiless request
without a task or a loop iteration; async handlers get one task per request (started
eagerly on Python 3.12+). Request, Response and Router live in `web`. Owns TLS
(stdlib ssl), keep-alive and pipelining, and slow clients (issue 11 §2): a TLS handshake
deadline and a head deadline counted from the connection's start (a trickle cannot extend
them), a body deadline and a minimum body rate, a send timeout, a per-source-address
connection cap, and a global cap that sheds the oldest idle keep-alive connection first
(then excess connections get a 503 once their head is in, or are dropped when too many
wait). Also graceful shutdown, routing, streamed bodies, HEAD, 100-continue and handing
the connection over after a 101 (WebSocket splices). Leaves out HTTP/2, content codings.
"""

import asyncio
import logging
import sys
import time

from ..errors import ProtocolError
from ..http11 import (CLOSED, NEED_DATA, Data, HeaderError, HTTPError, RequestParser,
                      build_chunk, build_fields, build_status_line, is_known_name)
from ..logfield import escape
from .web import Request, Response, Router, error_response, json_response

__all__ = ["HTTPServer", "Request", "Response", "Router", "error_response", "json_response"]
log = logging.getLogger("nmosauth_lite.http.server")

DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_IDLE_TIMEOUT = 30.0  # keep-alive wait for the next request
DEFAULT_HEAD_TIMEOUT = 10.0  # connection start (or, on keep-alive, first byte) to end of head
DEFAULT_HANDSHAKE_TIMEOUT = 5.0  # connection start to end of the TLS handshake
DEFAULT_BODY_TIMEOUT = 30.0  # end of head to end of body
DEFAULT_MIN_BODY_RATE = 512  # bytes/s a request body must keep up after BODY_RATE_GRACE (0: off)
BODY_RATE_GRACE = 2.0  # seconds of a body before its rate is judged
DEFAULT_SEND_TIMEOUT = 30.0  # a peer that stops reading our response
DEFAULT_MAX_BODY = 1024 * 1024
PER_ADDRESS_SHARE = 8  # default per-address cap: max(MIN_PER_ADDRESS, max_connections // 8)
MIN_PER_ADDRESS = 4
READ_HIGH_WATER = 256 * 1024  # buffered unread bytes before we stop reading the socket
_INF = float("inf")
_EAGER = sys.version_info >= (3, 12)
_RESERVED = {b"content-length": 1, b"transfer-encoding": 1}  # the server frames bodies
_NO_BODY_STATUS = (204, 304)
_STATUS_LINES = {}


def _status_line(status, reason):
    if reason is not None:
        return build_status_line(status, reason)
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = build_status_line(status)
    return line



_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds):
    """IMF-fixdate (RFC 9110 §5.6.7), without importing email (about 1 MiB of RSS)."""
    t = time.gmtime(seconds)
    return ("%s, %02d %s %04d %02d:%02d:%02d GMT" % (_DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
                                                    t.tm_hour, t.tm_min, t.tm_sec)).encode()

def default_per_address(max_connections):
    """The per-source-address cap used when none is given: well below the global one."""
    return max(MIN_PER_ADDRESS, max_connections // PER_ADDRESS_SHARE)


class HTTPServer:
    """`HTTPServer(handler, ssl=ctx)`; `await start(host, port)` (repeatable for more
    listeners); `port`; `await shutdown(timeout)`. `handler(request)` returns a Response
    or an awaitable of one; a Router is a handler.

    max_per_address: connections one source address may hold (None: default_per_address);
    beyond it a new connection is dropped at once unless one of that address's idle
    keep-alive connections can be shed. min_body_rate: bytes/s (0 turns the check off).
    """

    def __init__(self, handler, *, ssl=None, max_connections=DEFAULT_MAX_CONNECTIONS,
                 idle_timeout=DEFAULT_IDLE_TIMEOUT, head_timeout=DEFAULT_HEAD_TIMEOUT,
                 body_timeout=DEFAULT_BODY_TIMEOUT, send_timeout=DEFAULT_SEND_TIMEOUT,
                 max_body=DEFAULT_MAX_BODY, server_header=None, max_per_address=None,
                 handshake_timeout=DEFAULT_HANDSHAKE_TIMEOUT, min_body_rate=DEFAULT_MIN_BODY_RATE):
        self.handler = handler
        self.ssl = ssl
        self.max_connections = max_connections
        self.max_per_address = default_per_address(max_connections) if max_per_address is None \
            else max_per_address
        self.handshake_timeout = handshake_timeout
        self.min_body_rate = min_body_rate
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.max_body = max_body
        self._extra = b"server: %s\r\n" % server_header.encode() if server_header else b""
        self._servers = []
        self._conns = set()
        self._idle = {}  # idle keep-alive connections, oldest first (dicts keep insertion order)
        self._per_address = {}  # source host -> connections it holds (handshaking included)
        self._waiting = set()  # over the cap: will get a 503
        self._handed_over = set()  # tasks running upgrade callbacks
        self._draining = False
        self._loop = None
        self._ticker = None
        self._date = b""
        self._date_at = 0
        self.on_reject = None  # metrics hook (issue 14): called with a cause when a connection is refused

    async def start(self, host="127.0.0.1", port=0, *, sock=None, backlog=512):
        self._loop = asyncio.get_running_loop()
        if self._ticker is None:
            self._tick()
        # TLS is started per connection (start_tls), not by the listener: the connection is
        # counted against the caps and the handshake deadline from its first moment.
        srv = await self._loop.create_server(
            lambda: _Connection(self), host=None if sock else host, port=None if sock else port,
            sock=sock, backlog=backlog)
        self._servers.append(srv)
        return self

    @property
    def sockets(self):
        return [s for srv in self._servers for s in srv.sockets]

    @property
    def port(self):
        return self.sockets[0].getsockname()[1]

    @property
    def connection_count(self):
        return len(self._conns)

    def rejected(self, cause):
        """A connection or request refused before a handler ran: tell the metrics hook, if any."""
        if self.on_reject is not None:
            self.on_reject(cause)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.shutdown()

    async def serve_forever(self):
        await asyncio.Event().wait()

    def _tick(self):
        loop = self._loop
        now = loop.time()
        second = int(time.time())
        if second != self._date_at:
            self._date_at = second
            self._date = b"date: " + http_date(second) + b"\r\n"
        rate = self.min_body_rate
        for conn in list(self._conns) + list(self._waiting):
            if now >= conn.deadline or now >= conn.send_deadline:
                conn.timed_out(now)
            elif rate and conn.body_since is not None and not conn.read_paused:
                judged = now - conn.body_since - BODY_RATE_GRACE
                if judged > 0 and conn.body_bytes < rate * judged:
                    conn.body_failed("request body too slow")
        interval = min(1.0, self.idle_timeout, self.head_timeout, self.body_timeout,
                       self.send_timeout, self.handshake_timeout) / 4
        self._ticker = loop.call_later(max(interval, 0.01), self._tick)

    async def shutdown(self, timeout=10.0):
        """Stop accepting, close idle connections, let requests in flight finish (their
        responses say Connection: close) until `timeout`, then abort what is left."""
        if self._loop is None:
            return
        self._draining = True
        for srv in self._servers:
            srv.close()
        for conn in list(self._conns) + list(self._waiting):
            if conn.request is None:
                conn.transport.close()
        self._idle.clear()
        deadline = self._loop.time() + timeout
        # Wait for requests in flight (closed idle TLS connections may still be
        # waiting for the peer's close_notify: not worth waiting for).
        while (any(c.request is not None for c in self._conns) or self._handed_over) \
                and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self._conns) + list(self._waiting):
            if conn.task is not None:
                conn.task.cancel()
            conn.transport.abort()
        for task in list(self._handed_over):
            task.cancel()
        for srv in self._servers:
            await srv.wait_closed()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for _ in range(3):  # let aborted transports run connection_lost
            await asyncio.sleep(0)


_IDLE, _HEAD, _BUSY = range(3)


class _Connection(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.loop = server._loop
        self.parser = RequestParser(server.max_body)
        self.transport = None
        self.peername = None
        self.request = None
        self.task = None
        self.deadline = _INF
        self.send_deadline = _INF
        self.phase = _IDLE
        self.closed = False
        self.over_cap = False
        self.body_done = True
        self.continue_sent = False
        self.processing = False
        self.read_paused = False
        self.write_paused = False
        self.body_waiter = None
        self.drain_waiter = None
        self.body_error = None
        self.keep = False
        self.served = 0  # requests answered on this connection
        self.started = 0.0
        self.handshaking = False
        self.counted = None  # the source host counted in server._per_address
        self.is_counted = False
        self.early = None  # (bytes, eof) received before start_tls returned
        self.body_since = None  # while a body is read: when its rate window began
        self.body_bytes = 0

    # --- asyncio callbacks ------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        srv = self.server
        peer = transport.get_extra_info("peername")
        self.peername = tuple(peer[:2]) if peer else None
        if srv._draining:
            transport.abort()
            return
        now = self.started = self.loop.time()
        host = self.peername[0] if self.peername else None
        per = srv._per_address
        if per.get(host, 0) >= srv.max_per_address and not self._shed(host):
            transport.abort()  # one address holds its share: costs nothing more
            srv.rejected("over_address_cap")  # metrics (issue 14)
            return
        per[host] = per.get(host, 0) + 1
        self.counted = host
        self.is_counted = True
        if len(srv._conns) >= srv.max_connections and not self._shed(None):
            if len(srv._waiting) >= max(8, srv.max_connections // 8):
                self._uncount()
                transport.abort()
                srv.rejected("dropped_over_capacity")  # metrics (issue 14)
                return
            self.over_cap = True
            srv._waiting.add(self)
            self.deadline = now + min(srv.head_timeout, 2.0)
        else:
            srv._conns.add(self)
            self.deadline = now + srv.head_timeout  # absolute: a new client speaks first
        if srv.ssl is not None:
            self.handshaking = True
            self.deadline = min(self.deadline, now + srv.handshake_timeout)
            transport.pause_reading()  # start_tls takes over the bytes
            self.task = self.loop.create_task(self._start_tls(transport))

    async def _start_tls(self, raw):
        srv = self.server
        try:
            transport = await self.loop.start_tls(raw, self, srv.ssl, server_side=True,
                                                  ssl_handshake_timeout=srv.handshake_timeout,
                                                  ssl_shutdown_timeout=5.0)
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.CancelledError, ValueError):
            self.task = None
            raw.abort()
            self.connection_lost(None)  # SSLProtocol tells the app nothing during a handshake
            return
        self.task = None
        self.handshaking = False
        if transport is None:  # aborted (the handshake deadline) as the handshake ended
            self.connection_lost(None)
            return
        if self.closed:
            return
        self.transport = transport
        if not self.over_cap:
            self.deadline = self.started + srv.head_timeout
        early, self.early = self.early, None
        if early is not None:  # arrived between the handshake's end and this line
            if early[0]:
                self.data_received(early[0])
            if early[1] and not self.closed and not self.eof_received():
                transport.close()

    def _shed(self, host):
        """Close the oldest idle keep-alive connection (of `host`, or of anyone): True if one was."""
        srv = self.server
        for conn in srv._idle:
            if host is None or conn.counted == host:
                break
        else:
            return False
        conn.forget()
        conn.transport.close()
        return True

    def _uncount(self):
        if self.is_counted:
            self.is_counted = False
            per = self.server._per_address
            host = self.counted
            n = per.get(host, 0) - 1
            if n > 0:
                per[host] = n
            else:
                per.pop(host, None)

    def forget(self):
        """Leave every table of the server (idempotent): closed, shed or handed over."""
        srv = self.server
        srv._conns.discard(self)
        srv._waiting.discard(self)
        srv._idle.pop(self, None)
        self._uncount()

    def data_received(self, data):
        if self.handshaking:  # TLS is up but start_tls has not handed us its transport yet
            self.early = (self.early[0] + data if self.early else data, False)
            return
        if self.transport.is_closing():
            return  # we already answered and are closing: ignore the rest
        parser = self.parser
        parser.feed(data)
        self.body_bytes += len(data)
        if self.request is None:
            if self.over_cap:
                self._answer_over_cap()
            else:
                self._process()
            return
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if parser.buffered > READ_HIGH_WATER and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def eof_received(self):
        if self.handshaking:
            self.early = (self.early[0] if self.early else b"", True)
            return True
        if self.over_cap:
            return False
        self.parser.feed_eof()
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.request is None:
            self._process()
            return False
        # Keep a plain-TCP half-closed connection open to send the response.
        return self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc):
        if self.closed:
            return
        self.closed = True
        self.forget()
        for waiter in (self.body_waiter, self.drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self):
        self.write_paused = True

    def resume_writing(self):
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def timed_out(self, now):
        if self.handshaking:
            log.info("TLS handshake timeout from %s", self.peername)
            self.server.rejected("handshake_timeout")  # metrics (issue 14)
            self.transport.abort()
        elif now >= self.send_deadline or self.over_cap or self.transport.get_write_buffer_size():
            self.transport.abort()  # also a peer that never reads what we wrote
        elif self.request is None:
            if self.phase == _HEAD:
                log.info("request head timeout from %s", self.peername)
                self.server.rejected("head_timeout")  # metrics (issue 14)
                self._send_error(408, "request head timeout")
            else:
                self.transport.close()
        elif not self.body_done:
            self.body_failed("request body timeout")
        self.deadline = _INF

    def body_failed(self, message):
        """The body came too late or too slowly: 408 to whoever reads it next."""
        log.info("%s from %s", message, self.peername)
        self.server.rejected("body_timeout")  # metrics (issue 14)
        exc = HTTPError(message)
        exc.status_hint = 408
        self.body_error = exc  # every later read fails the same way
        self.body_since = None
        self.deadline = _INF
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # --- request cycle --------------------------------------------------------
    def _process(self):
        if self.processing:
            return
        self.processing = True
        try:
            # A connection that is closing (we answered `connection: close`) parses nothing more: the
            # peer's FIN or pipelined bytes arriving during the TLS shutdown are not a new request.
            while self.request is None and not self.closed and not self.transport.is_closing():
                try:
                    event = self.parser.next_event()
                except HTTPError as exc:
                    log.info("bad request from %s: %s", self.peername, escape(exc.message))
                    self.server.rejected("bad_request")  # metrics (issue 14)
                    self._send_error(exc.status_hint, exc.message)
                    return
                if event is NEED_DATA:
                    if self.phase == _IDLE and self.parser.buffered:
                        self.phase = _HEAD
                        if self.served:  # keep-alive: from this request's first byte, once
                            self.server._idle.pop(self, None)
                            self.deadline = self.loop.time() + self.server.head_timeout
                    if self.read_paused:
                        self.read_paused = False
                        self.transport.resume_reading()
                    return
                if event is CLOSED:
                    self.transport.close()
                    return
                self._dispatch(event)
        finally:
            self.processing = False

    def _dispatch(self, head):
        self.request = request = Request(self, head)
        if self.phase == _IDLE and self.served:
            self.server._idle.pop(self, None)  # the whole head came in one read
        self.phase = _BUSY
        if head.chunked or head.content_length:
            self.body_done = False
            self.body_since = now = self.loop.time()
            self.body_bytes = self.parser.buffered
            self.deadline = now + self.server.body_timeout
        else:
            self.parser.next_event()  # the EndOfMessage of a bodiless request
            self.body_done = True
            self.deadline = _INF
        try:
            result = self.server.handler(request)
        except Exception as exc:
            result = _crash(exc)
        if result.__class__ is Response and result.upgrade is None and \
                result.body.__class__ is bytes:
            try:
                self._write_fixed(result)
            except HeaderError as exc:  # raised before anything is written
                log.error("bad response from handler: %s", escape(exc.message))
                self._send_error(500, "internal server error")
                return
            self._end_cycle()
        elif _EAGER:  # Python 3.12+: run the handler now, up to its first real wait
            task = asyncio.Task(self._complete(result), loop=self.loop, eager_start=True)
            if not task.done():
                self.task = task
        else:
            self.task = self.loop.create_task(self._complete(result))

    async def _complete(self, result):
        try:
            if not isinstance(result, Response):
                try:
                    result = await result
                except ConnectionError:  # the client went away while we waited for it
                    self.transport.abort()
                    return
                except ProtocolError as exc:
                    result = error_response(exc.status_hint, exc.message)
                except Exception as exc:
                    result = _crash(exc)
                if not isinstance(result, Response):
                    result = _crash(TypeError("handler returned %r" % type(result).__name__))
            if result.upgrade is not None and result.status == 101:
                await self._hand_over(result)
                return
            body = result.body
            if isinstance(body, (bytes, bytearray, memoryview)):
                self._write_fixed(result)
                if self.write_paused:
                    await self._drain()
            else:
                await self._write_stream(result)
        except HeaderError as exc:  # raised before anything is written
            log.error("bad response from handler: %s", escape(exc.message))
            self._send_error(500, "internal server error")
            return
        except ConnectionError:
            self.transport.abort()
            return
        except asyncio.CancelledError:
            self.transport.abort()
            raise
        except Exception:
            log.exception("response to %s failed", self.peername)
            self.transport.abort()
            return
        finally:
            self.task = None
        self._end_cycle()

    def _end_cycle(self):
        keep = self.keep
        self.request = None
        self.continue_sent = False
        self.body_since = None
        self.served += 1
        if not keep or self.closed or self.server._draining:
            self.transport.close()
            return
        self.phase = _IDLE
        self.deadline = self.loop.time() + self.server.idle_timeout
        if self.parser.buffered:
            self._process()
        if self.phase == _IDLE and self.request is None and not self.closed:
            self.server._idle[self] = None  # the first to shed when the table is full

    # --- request bodies ---------------------------------------------------
    async def read_chunk(self):
        """Next piece of the request body; b"" at its end."""
        if self.body_error is not None:
            raise self.body_error
        if self.body_done:
            return b""
        request = self.request
        if request.head.expect_continue and not self.continue_sent:
            self.continue_sent = True  # RFC 9110 §10.1.1: only once the handler wants it
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            event = self.parser.next_event()
            if event is NEED_DATA:
                if self.closed:
                    raise ConnectionResetError("connection lost")
                if self.read_paused:
                    self.read_paused = False
                    self.transport.resume_reading()
                    if self.body_since is not None:  # we held the client back: a new window
                        self.body_since = self.loop.time()
                        self.body_bytes = 0
                self.body_waiter = self.loop.create_future()
                try:
                    await self.body_waiter
                finally:
                    self.body_waiter = None
            elif event.__class__ is Data:
                return event.data
            else:
                self.body_done = True
                self.body_since = None
                self.deadline = _INF
                return b""

    def _finish_body_now(self):
        """Discard the rest of an unread request body if it is already buffered."""
        if self.body_waiter is not None or self.body_error is not None:
            return False
        try:
            while not self.body_done:
                event = self.parser.next_event()
                if event is NEED_DATA:
                    return False
                if event.__class__ is not Data:
                    self.body_done = True
                    self.body_since = None
        except HTTPError:
            return False
        return True

    # --- responses --------------------------------------------------------
    def _head(self, resp, length, chunked):
        request = self.request
        keep = request.head.keep_alive and not self.server._draining and \
            (self.body_done or self._finish_body_now())
        status = resp.status
        said_close = False
        out = [_status_line(status, resp.reason), self.server._date, self.server._extra]
        for name, value in resp.headers:
            # One pass: bytes, validation (http11 rules), framing fields kept for us.
            if name.__class__ is str:
                name = name.encode("latin-1")
            if value.__class__ is not bytes:
                value = value.encode("latin-1") if value.__class__ is str else str(value).encode()
            lname = name.lower()
            if lname in _RESERVED:
                raise HeaderError("handlers must not set " + lname.decode())
            if lname == b"connection" and b"close" in value.lower():
                keep, said_close = False, True
            if not is_known_name(lname) or b"\r" in value or b"\n" in value or b"\0" in value:
                build_fields(((name, value),), out)  # full checks; raises HeaderError
            else:
                out.append(name + b": " + value + b"\r\n")
        if length is not None:
            out.append(b"content-length: %d\r\n" % length)
        elif chunked:
            out.append(b"transfer-encoding: chunked\r\n")
        elif status >= 200 and status not in _NO_BODY_STATUS and request.method != "HEAD":
            keep = False  # body delimited by closing the connection
        if status == 101:
            pass
        elif not keep and not said_close:
            out.append(b"connection: close\r\n")
        elif request.head.version == b"1.0":
            out.append(b"connection: keep-alive\r\n")
        out.append(b"\r\n")
        self.keep = keep
        return b"".join(out)

    def _write_fixed(self, resp):
        body = resp.body
        status = resp.status
        if status in _NO_BODY_STATUS or status < 200:
            self.transport.write(self._head(resp, None, False))
        elif self.request.method == "HEAD":
            self.transport.write(self._head(resp, len(body), False))
        elif len(body) <= 16384:
            self.transport.write(self._head(resp, len(body), False) + body)
        else:
            self.transport.write(self._head(resp, len(body), False))
            self.transport.write(body)

    async def _write_stream(self, resp):
        body = resp.body
        no_body = self.request.method == "HEAD" or resp.status in _NO_BODY_STATUS
        length = resp.content_length
        chunked = length is None and not no_body and self.request.head.version == b"1.1"
        self.transport.write(self._head(resp, length, chunked))
        sent = 0
        try:
            if not no_body:
                async for chunk in body:
                    if not chunk:
                        continue
                    if self.closed:
                        raise ConnectionResetError("connection lost")
                    sent += len(chunk)
                    if length is not None and sent > length:
                        raise ValueError("streamed body longer than content_length")
                    self.transport.write(build_chunk(chunk) if chunked else chunk)
                    if self.write_paused:
                        await self._drain()
                if chunked:
                    self.transport.write(b"0\r\n\r\n")
                elif length is not None and sent != length:
                    raise ValueError("streamed body shorter than content_length")
        finally:
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()

    async def _drain(self):
        if self.closed:
            raise ConnectionResetError("connection lost")
        self.drain_waiter = self.loop.create_future()
        self.send_deadline = self.loop.time() + self.server.send_timeout
        try:
            await self.drain_waiter
        finally:
            self.drain_waiter = None
            self.send_deadline = _INF

    async def _hand_over(self, resp):
        """Write the 101, then give the raw connection to resp.upgrade(reader, writer)."""
        if not any(n.lower() in ("connection", b"connection") for n, _ in resp.headers):
            resp.headers.append(("connection", "upgrade"))
        self.transport.write(self._head(resp, None, False))
        srv = self.server
        self.forget()  # no longer an HTTP connection: not counted, never shed
        self.body_since = None
        transport = self.transport
        reader = asyncio.StreamReader(limit=2 ** 16)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        rest = self.parser.take_buffer()
        if rest:
            reader.feed_data(rest)
        if self.parser._eof:
            reader.feed_eof()
        if self.read_paused:
            transport.resume_reading()
        writer = asyncio.StreamWriter(transport, protocol, reader, self.loop)
        task = asyncio.current_task()
        srv._handed_over.add(task)
        try:
            await resp.upgrade(reader, writer)
        except Exception:
            log.exception("upgraded connection handler failed")
        finally:
            srv._handed_over.discard(task)
            transport.close()

    def _send_error(self, status, message, headers=()):
        resp = error_response(status, message, list(headers))
        body = resp.body
        out = [_status_line(status, None), self.server._date,
               b"connection: close\r\ncontent-length: %d\r\n" % len(body)]
        build_fields(resp.headers, out)
        out.append(b"\r\n")
        out.append(body)
        self.transport.write(b"".join(out))
        self.transport.close()

    def _answer_over_cap(self):
        try:
            if self.parser.next_event() is NEED_DATA:
                return
        except HTTPError:
            pass
        self.server.rejected("over_capacity")  # metrics (issue 14)
        self._send_error(503, "too many connections", [("retry-after", "1")])


def _as_bytes(value):
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def _crash(exc):
    if isinstance(exc, ProtocolError):
        return error_response(exc.status_hint, exc.message)
    log.error("handler failed", exc_info=exc)
    return error_response(500, "internal server error")
