"""A small asyncio HTTP/1.1 server on the sans-I/O core (`nmosauth_lite.http11`): the listener.

Owns the listening sockets (TLS via stdlib ssl, started per connection), the connection tables
and the caps of issue 11 §2: a per-source-address cap, a global cap that sheds the oldest idle
keep-alive connection first (then excess connections get a 503 once their head is in, or are
dropped when too many wait), the tick enforcing every deadline and the minimum body rate, the
Date field, graceful shutdown. Connections: `aio.connection` and `aio.reply`; Request,
Response, Router: `web`. Leaves out HTTP/2, content codings.
"""

import asyncio
import gc
import time

from .admission import DEFAULT_GROUPING, FairTable, default_per_group
from .connection import READ_HIGH_WATER, _Connection  # noqa: F401 (READ_HIGH_WATER: kept importable here)
from .web import Request, Response, Router, error_response, json_response

__all__ = ["HTTPServer", "Request", "Response", "Router", "error_response", "json_response"]

DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_IDLE_TIMEOUT = 30.0  # keep-alive wait for the next request
DEFAULT_HEAD_TIMEOUT = 10.0  # connection start (or, on keep-alive, first byte) to end of head
DEFAULT_HANDSHAKE_TIMEOUT = 5.0  # connection start to end of the TLS handshake
DEFAULT_BODY_TIMEOUT = 30.0  # end of head to end of body
DEFAULT_MIN_BODY_RATE = 512  # bytes/s a request body must keep up after BODY_RATE_GRACE (0: off)
BODY_RATE_GRACE = 2.0  # seconds of a body before its rate is judged
DEFAULT_SEND_TIMEOUT = 30.0  # a peer that stops reading our response
DEFAULT_MAX_BODY = 1024 * 1024
RELEASE_AFTER = 64  # connections closed since the peak before freed heap is handed back (issue 23)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds):
    """IMF-fixdate (RFC 9110 §5.6.7), without importing email (about 1 MiB of RSS)."""
    t = time.gmtime(seconds)
    return ("%s, %02d %s %04d %02d:%02d:%02d GMT" % (_DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
                                                    t.tm_hour, t.tm_min, t.tm_sec)).encode()


def default_per_address(max_connections):
    """The per-address-group cap used when none is given: well below the global one."""
    return default_per_group(max_connections)


def release_memory():
    """Give freed heap back to the system (glibc malloc_trim): after a burst of connections closes,
    their memory would otherwise stay in the process (~10 MB after 512). No-op elsewhere."""
    fn = _TRIM.get("fn", False)
    if fn is False:
        fn = None
        try:
            import ctypes  # only once a burst has closed: imports cost memory too

            fn = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError, ImportError):
            pass
        _TRIM["fn"] = fn
    gc.collect()  # closed TLS connections sit in reference cycles (transport <-> protocol) until then
    if fn is not None:
        fn(0)


_TRIM = {}


def late_body(conn, now):
    """A body judged by its time to completion (issue 23): at the rate seen so far, the rest of
    its Content-Length would arrive after the body deadline."""
    total = conn.request.head.content_length if conn.request is not None else None
    if not total or conn.body_bytes >= total:
        return False
    elapsed = now - conn.body_since
    if conn.body_bytes <= 0 or elapsed <= 0:
        return True
    return now + (total - conn.body_bytes) * elapsed / conn.body_bytes > conn.deadline


class HTTPServer:
    """`HTTPServer(handler, ssl=ctx)`; `await start(host, port)` (repeatable for more
    listeners); `port`; `await shutdown(timeout)`. `handler(request)` returns a Response
    or an awaitable of one; a Router is a handler.

    max_per_address: connections one address group may hold (None: default_per_address);
    beyond it a new connection is dropped at once unless one of that group's idle
    keep-alive connections can be shed. grouping: an aio.admission.Grouping (IPv4 /32,
    IPv6 /64 by default). min_body_rate: bytes/s (0 turns the check off).
    """

    def __init__(self, handler, *, ssl=None, max_connections=DEFAULT_MAX_CONNECTIONS,
                 idle_timeout=DEFAULT_IDLE_TIMEOUT, head_timeout=DEFAULT_HEAD_TIMEOUT,
                 body_timeout=DEFAULT_BODY_TIMEOUT, send_timeout=DEFAULT_SEND_TIMEOUT,
                 max_body=DEFAULT_MAX_BODY, server_header=None, max_per_address=None,
                 handshake_timeout=DEFAULT_HANDSHAKE_TIMEOUT, min_body_rate=DEFAULT_MIN_BODY_RATE,
                 hsts_max_age=0, grouping=None):
        self.handler = handler
        self.ssl = ssl
        self.max_connections = max_connections
        self.max_per_address = default_per_address(max_connections) if max_per_address is None \
            else max_per_address
        self.grouping = grouping or DEFAULT_GROUPING
        self.slots = FairTable(max_connections, self.max_per_address)  # issue 23: fair share, eviction
        self.handshake_timeout = handshake_timeout
        self.min_body_rate = min_body_rate
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.max_body = max_body
        self._extra = b"server: %s\r\n" % server_header.encode() if server_header else b""
        if hsts_max_age and ssl is not None:
            # BCP-003-01; first, so a UA reads ours, not a handler's (RFC 6797 §8.1)
            self._extra += b"strict-transport-security: max-age=%d\r\n" % int(hsts_max_age)
        self._servers = []
        self._conns = set()
        self._idle = {}  # idle keep-alive connections, oldest first (dicts keep insertion order)
        self._waiting = set()  # over the cap: will get a 503
        self._peak = 0  # most connections held since memory was last released
        self._last_count = 0
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
        n = len(self._conns)
        if n > self._peak:
            self._peak = n
        elif self._peak - n >= RELEASE_AFTER and n == self._last_count:  # a burst closed and it settled
            self._peak = n
            release_memory()
        self._last_count = n
        for conn in list(self._conns) + list(self._waiting):
            if now >= conn.deadline or now >= conn.send_deadline:
                conn.timed_out(now)
            elif rate and conn.body_since is not None and not conn.read_paused:
                judged = now - conn.body_since - BODY_RATE_GRACE
                if judged > 0 and (conn.body_bytes < rate * judged or late_body(conn, now)):
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

    # --- the connection tables (caps, shedding) -------------------------------------
    def admit(self, conn, now):
        """Count a new connection against the slots (aio.admission): False when it was dropped.

        Its address group at its share: one of the group's idle keep-alive connections makes
        room, else the newcomer is dropped. Every slot taken: the slowest connection of a
        larger group (aio.admission.FairTable) makes room, so a flood displaces itself;
        when nothing may be evicted, the newcomer waits for a 503 (or is dropped)."""
        group = self.grouping.group(conn.peername[0] if conn.peername else None)
        conn.counted = group
        slots = self.slots
        if slots.count(group) >= slots.per_group or slots.full():
            victim = slots.victim(group, self._eviction_rank, self._idle_rank)
            if victim is None and slots.full() and slots.count(group) < slots.per_group and self._idle:
                victim = next(iter(self._idle))  # anyone's idle keep-alive connection costs nobody a request
            if victim is not None:
                self._evict(victim)
            elif slots.count(group) >= slots.per_group:
                conn.transport.abort()  # one group holds its share: costs nothing more
                self.rejected("over_address_cap")  # metrics (issue 14)
                return False
            else:
                if len(self._waiting) >= max(8, self.max_connections // 8):
                    conn.transport.abort()
                    self.rejected("dropped_over_capacity")  # metrics (issue 14)
                    return False
                conn.over_cap = True
                self._waiting.add(conn)
                conn.deadline = now + min(self.head_timeout, 2.0)
                return True
        slots.add(conn, group, now)
        conn.is_counted = True
        self._conns.add(conn)
        conn.deadline = now + self.head_timeout  # absolute: a new client speaks first
        return True

    def _idle_rank(self, conn, since):
        return (0, since) if conn in self._idle else None

    def _eviction_rank(self, conn, since):
        """None for a connection being answered; else idle keep-alive first, then the one that
        has waited longest for its handshake, head or body (slow clients go before fast ones)."""
        if conn in self._idle:
            return (0, since)
        if conn.request is None:
            return (1, since)
        if not conn.body_done:
            return (1, conn.body_since if conn.body_since is not None else since)
        return None

    def _evict(self, conn):
        """Make room: `conn` leaves every table now and is closed (idle) or cut off."""
        idle = conn in self._idle
        self.forget(conn)
        if idle:
            conn.transport.close()
        else:
            conn.transport.abort()
            self.rejected("evicted")  # metrics (issue 14)

    def _uncount(self, conn):
        if conn.is_counted:
            conn.is_counted = False
            self.slots.remove(conn, conn.counted)

    def forget(self, conn):
        """`conn` leaves every table (idempotent): closed, shed or handed over."""
        self._conns.discard(conn)
        self._waiting.discard(conn)
        self._idle.pop(conn, None)
        self._uncount(conn)
