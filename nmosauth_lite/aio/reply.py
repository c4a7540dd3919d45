"""Response writing for the HTTP/1.1 server's connections (RFC 9112 §6, RFC 9110 §6.4).

`ResponseWriter` is the half of a connection (`aio.connection`) that puts a Response on the
wire: status line, the Date and Server fields, header validation (http11 rules; handlers may
not set Content-Length or Transfer-Encoding), the keep-alive decision, Content-Length or
chunked framing, HEAD/204/304 without a body, streamed bodies with back-pressure and the send
deadline, error answers that close, and the hand-over of the raw connection after a 101.
"""

import asyncio
import logging

from ..http11 import HeaderError, build_chunk, build_fields, build_status_line, is_known_name
from .web import error_response

log = logging.getLogger("nmosauth_lite.http.server")

_INF = float("inf")
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


class ResponseWriter:
    """Mixed into the connection protocol: uses its transport, request, parser, server and
    its body/keep-alive/drain state; sets `keep` for the connection's end of cycle."""

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
        srv.forget(self)  # no longer an HTTP connection: not counted, never shed
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
        out = [_status_line(status, None), self.server._date, self.server._extra,
               b"connection: close\r\ncontent-length: %d\r\n" % len(body)]
        build_fields(resp.headers, out)
        out.append(b"\r\n")
        out.append(body)
        self.transport.write(b"".join(out))
        self.transport.close()
