"""One HTTP/1.1 connection of the server: an asyncio.Protocol on the sans-I/O parser.

Bytes go to the parser in data_received, no per-byte awaits; a plain-function handler answers
a bodiless request without a task, an async one gets one task per request (eager on 3.12+).
Owns the connection's side of issue 11 §2: the TLS handshake started per connection, the
head, body and idle deadlines the server's tick enforces, the request body (100-continue,
read back-pressure, the rate window) and keep-alive/pipelining. Reading the body is mixed in
from `aio.body`, response writing from `aio.reply`, plain HTTP on a TLS port from `aio.sniff`;
the caps and tables it is counted in belong to `aio.server.HTTPServer`.
"""

import asyncio
import logging
import ssl
import sys

from ..errors import ProtocolError
from ..http11 import CLOSED, NEED_DATA, HeaderError, HTTPError, RequestParser
from ..logfield import escape
from .body import RequestBody
from .closing import abort, close
from .reply import ResponseWriter
from .sniff import PlainHTTPAnswer
from .tlsutil import start_tls
from .web import Request, Response, error_response

log = logging.getLogger("nmosauth_lite.http.server")

READ_HIGH_WATER = 256 * 1024  # buffered unread bytes before we stop reading the socket
_INF = float("inf")
_EAGER = sys.version_info >= (3, 12)
_IDLE, _HEAD, _BUSY = range(3)


class _Connection(RequestBody, ResponseWriter, PlainHTTPAnswer, asyncio.Protocol):
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
        self.counted = None  # the address group counted in server.slots
        self.is_counted = False
        self.early = None  # (bytes, eof) received before start_tls returned
        self.body_since = None  # while a body is read: when its rate window began
        self.body_bytes = 0
        self.sniffing = False  # a TLS port's first bytes are awaited (aio/sniff.py): TLS or plain HTTP?
        self.plain = None  # bytes of a plain-HTTP request head read on a TLS port (then 400)

    # --- asyncio callbacks ------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        srv = self.server
        peer = transport.get_extra_info("peername")
        self.peername = tuple(peer[:2]) if peer else None
        if srv._draining:
            abort(transport)
            return
        now = self.started = self.loop.time()
        if not srv.admit(self, now):
            return
        if srv.ssl is not None:
            self.handshaking = True
            self.deadline = min(self.deadline, now + srv.handshake_timeout)
            self.sniffing = True  # the first bytes decide: TLS, or plain HTTP that gets a 400

    async def _start_tls(self, raw, initial=b""):
        srv = self.server
        try:
            # The server's tick enforces (and counts) the handshake deadline; asyncio's own timer,
            # a second later, is only a backstop, so it never wins the race and loses the cause.
            transport = await start_tls(self.loop, raw, self, srv.ssl, server_side=True,  # small buffers (issue 23)
                                        ssl_handshake_timeout=srv.handshake_timeout + 1.0,
                                        ssl_shutdown_timeout=5.0, initial=initial)
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.CancelledError, ValueError) as e:
            self.task = None
            if isinstance(e, ssl.SSLCertVerificationError):  # a client certificate that failed validation
                log.info("client certificate refused from %s: %s", self.peername, e.verify_message)
                srv.rejected("client_cert_failed")  # metrics; IPMX SEC-49 f, SEC-99: the connection ends
            abort(raw)
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
                close(transport)

    def data_received(self, data):
        if self.sniffing:
            return self._first_bytes(data)
        if self.plain is not None:
            return None if self.transport.is_closing() else self._plain_data(data)
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
        if self.sniffing:  # gone before saying anything
            return False
        if self.plain is not None:
            if not self.transport.is_closing():
                self._plain_data(b"", eof=True)
            return True
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
        self.server.forget(self)
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
            abort(self.transport)
        elif now >= self.send_deadline or self.over_cap or self.transport.get_write_buffer_size():
            abort(self.transport)  # also a peer that never reads what we wrote
        elif self.request is None:
            if self.phase == _HEAD:
                log.info("request head timeout from %s", self.peername)
                self.server.rejected("head_timeout")  # metrics (issue 14)
                self._send_error(408, "request head timeout")
            else:
                close(self.transport)
        elif not self.body_done:
            self.body_failed("request body timeout")
        self.deadline = _INF

    # --- request cycle (the body: aio/body.py) ---------------------------------
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
                    close(self.transport)
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
                    abort(self.transport)
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
            abort(self.transport)
            return
        except asyncio.CancelledError:
            abort(self.transport)
            raise
        except Exception:
            log.exception("response to %s failed", self.peername)
            abort(self.transport)
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
            close(self.transport)
            return
        self.phase = _IDLE
        self.deadline = self.loop.time() + self.server.idle_timeout
        if self.parser.buffered:
            self._process()
        if self.phase == _IDLE and self.request is None and not self.closed:
            self.server._idle[self] = None  # the first to shed when the table is full

    def _answer_over_cap(self):
        try:
            if self.parser.next_event() is NEED_DATA:
                return
        except HTTPError:
            pass
        self.server.rejected("over_capacity")  # metrics (issue 14)
        self._send_error(503, "too many connections", [("retry-after", "1")])


def _crash(exc):
    if isinstance(exc, ProtocolError):
        return error_response(exc.status_hint, exc.message)
    log.error("handler failed", exc_info=exc)
    return error_response(500, "internal server error")
