"""Plain HTTP sent to a TLS port: seen in the first bytes, answered in clear text (issue 22 item 8).

A TLS listener reads a connection's first bytes itself, before any TLS object exists. A TLS
connection opens with a handshake record, content type 22 (RFC 8446 §5.1; an SSLv2-compatible
hello starts with a byte >= 0x80); an HTTP/1.x request line starts with its method, uppercase
ASCII letters (RFC 9112 §3). TLS bytes are handed to the TLS layer as its first input
(tlsutil.start_tls `initial`); a plain request gets a 400 whose body says to use https, instead
of a handshake failure that looks like an empty reply. Nothing is peeked: no second descriptor
and no extra reader, which an emulated kernel (qemu-user) or a proactor loop may not honour.
Leaves out ALPN, PROXY protocol.
"""

import logging

from .closing import close

log = logging.getLogger("nmosauth_lite.http.server")

MAX_PLAIN_HEAD = 8192  # a plain request head is read (then dropped) up to this, so closing sends no RST
TLS_HANDSHAKE = 0x16  # RFC 8446 §5.1 ContentType.handshake
PLAIN_HTTP_BODY = (b'{"code": 400, "error": "plain HTTP sent to a TLS port: this server speaks HTTPS only, '
                   b'use an https:// URL", "debug": null}')
PLAIN_HTTP_ANSWER = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\nconnection: close\r\n\r\n" % len(PLAIN_HTTP_BODY)) + PLAIN_HTTP_BODY


def looks_like_http(first):
    """True when `first` (the first bytes of a connection) starts an HTTP request line, not TLS."""
    return bool(first) and 0x41 <= first[0] <= 0x5A  # 'A'..'Z': a method; TLS starts 0x16 or >= 0x80


class PlainHTTPAnswer:
    """Mixed into aio.connection._Connection: the first bytes of a TLS port decide. Uses the
    connection's `transport`, `loop`, `closed`, `peername`, `sniffing`, `plain`, `task` and
    `_start_tls(raw, initial)`."""

    def _first_bytes(self, data):
        self.sniffing = False
        if looks_like_http(data):
            log.info("plain HTTP on the TLS port from %s: 400", self.peername)
            self.plain = b""
            self._plain_data(data)
            return
        self.transport.pause_reading()  # the TLS layer takes over the bytes from here
        self.task = self.loop.create_task(self._start_tls(self.transport, data))

    def _plain_data(self, data, eof=False):
        self.plain += data[:MAX_PLAIN_HEAD]
        if eof or b"\r\n\r\n" in self.plain or len(self.plain) >= MAX_PLAIN_HEAD:
            self.plain = b""
            self.transport.write(PLAIN_HTTP_ANSWER)
            close(self.transport)
