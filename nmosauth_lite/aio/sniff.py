"""Plain HTTP sent to a TLS port: seen in the first bytes, answered in clear text (issue 22 item 8).

Before a TLS listener starts the handshake it peeks (MSG_PEEK, through a duplicate of the
socket's descriptor: nothing is consumed, asyncio's own reader is paused) at the first bytes.
A TLS connection opens with a handshake record, content type 22 (RFC 8446 §5.1; an SSLv2
compatible hello starts with a byte >= 0x80); an HTTP/1.x request line starts with its method,
uppercase ASCII letters (RFC 9112 §3). Such a client gets a 400 whose body says to use https,
instead of a handshake failure that looks like an empty reply. Leaves out ALPN, PROXY protocol.
"""

import logging
import socket

from .closing import close

log = logging.getLogger("nmosauth_lite.http.server")

PEEK_BYTES = 8  # enough to tell a method from a TLS record header
MAX_PLAIN_HEAD = 8192  # a plain request head is read (then dropped) up to this, so closing sends no RST
TLS_HANDSHAKE = 0x16  # RFC 8446 §5.1 ContentType.handshake
PLAIN_HTTP_BODY = (b'{"code": 400, "error": "plain HTTP sent to a TLS port: this server speaks HTTPS only, '
                   b'use an https:// URL", "debug": null}')
PLAIN_HTTP_ANSWER = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\nconnection: close\r\n\r\n" % len(PLAIN_HTTP_BODY)) + PLAIN_HTTP_BODY


def looks_like_http(first):
    """True when `first` (the first bytes of a connection) starts an HTTP request line, not TLS."""
    return bool(first) and 0x41 <= first[0] <= 0x5A  # 'A'..'Z': a method; TLS starts 0x16 or >= 0x80


class FirstBytes:
    """Call `callback(bytes)` once the connection's first bytes can be peeked (b"" at EOF or on
    an error), or at once with None when the transport has no socket to peek at. `cancel()`
    stops waiting (the connection closed first); it is safe to call twice."""

    def __init__(self, loop, transport, callback):
        self.loop = loop
        self.callback = callback
        self.sock = None
        raw = transport.get_extra_info("socket")
        if raw is None:
            loop.call_soon(callback, None)
            return
        try:
            # A duplicate descriptor: asyncio refuses readers on a transport's own one.
            self.sock = raw.dup()
            self.sock.setblocking(False)
            first = self._peek()
            if first is not None:  # the first bytes are there already: no reader, no extra turn
                self.cancel()
                loop.call_soon(callback, first)
                return
            loop.add_reader(self.sock.fileno(), self._readable)
        except (OSError, RuntimeError, NotImplementedError):  # e.g. a proactor loop: no peeking
            self.cancel()
            loop.call_soon(callback, None)

    def _peek(self):
        """The first bytes (b"" at EOF or on an error), or None while nothing has arrived."""
        try:
            return self.sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def _readable(self):
        data = self._peek()
        if data is None:
            return
        self.cancel()
        self.callback(data)

    def cancel(self):
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                self.loop.remove_reader(sock.fileno())
            finally:
                sock.close()


class PlainHTTPAnswer:
    """Mixed into aio.connection._Connection: what happens once FirstBytes calls back. Uses the
    connection's `transport`, `loop`, `closed`, `peername`, `sniff`, `plain` and `_start_tls`."""

    def _first_bytes(self, first):
        self.sniff = None
        if self.closed:
            return
        if first is not None and looks_like_http(first):
            log.info("plain HTTP on the TLS port from %s: 400", self.peername)
            self.plain = b""
            self.transport.resume_reading()  # read the head, so closing does not reset the answer
            return
        self.task = self.loop.create_task(self._start_tls(self.transport))

    def _plain_data(self, data, eof=False):
        self.plain += data[:MAX_PLAIN_HEAD]
        if eof or b"\r\n\r\n" in self.plain or len(self.plain) >= MAX_PLAIN_HEAD:
            self.plain = b""
            self.transport.write(PLAIN_HTTP_ANSWER)
            close(self.transport)
