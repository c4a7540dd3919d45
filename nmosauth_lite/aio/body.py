"""The request body of one server connection: read as the handler asks, timed by the server.

Mixed into aio.connection._Connection, like aio/reply.py and aio/sniff.py (issue 11 §2): `read_chunk`
sends 100 Continue once, when the handler first reads (RFC 9110 §10.1.1), resumes a socket paused
for back-pressure and then starts a new rate window (the server's tick judges the rate from
`body_since`/`body_bytes`); `body_failed` turns a late or slow body into a 408 for every later read;
`_finish_body_now` discards what is left when it is already buffered, so the connection can be kept.
Uses the connection's `parser`, `transport`, `request`, `loop`, `server`, `peername` and body fields.
"""

import logging

from ..http11 import NEED_DATA, Data, HTTPError

log = logging.getLogger("nmosauth_lite.http.server")

_INF = float("inf")


class RequestBody:
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
