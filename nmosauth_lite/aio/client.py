"""An asyncio HTTPS client on the sans-I/O core, for metadata, JWKS, token and registry calls.

TLS is verified always: chain to the system CAs plus `ca_file`, and the host name (IS-10
CL-03, BCP-003-01). Plain `http://` is refused unless the client is built with
`insecure_http=True`, which is for lab use and logged at WARNING. Connections are reused
through a small per-origin pool. `connect_host` / `resolve` connect to an address while
the URL's host name (or `server_hostname`) is used for SNI, verification and Host: what
DNS-SD discovery needs (ARCHITECTURE.md, Discovery). Redirects are followed only when
asked, a bounded number of times. Leaves out proxies, cookies, HTTP/2, content codings.
"""

import asyncio
import logging
import ssl
import urllib.parse

from .. import jsonshim
from ..errors import NmosAuthError
from ..http11 import (NEED_DATA, BodyTooLargeError, Data, EndOfMessage, HTTPError,
                      ResponseParser, build_chunk, build_request_head)
from .closing import abort, close_writers
from .tlsutil import client_context

log = logging.getLogger("nmosauth_lite.http.client")

DEFAULT_CONNECT_TIMEOUT = 10.0  # TCP connect + TLS handshake
DEFAULT_READ_TIMEOUT = 30.0  # request sent -> whole response received
DEFAULT_MAX_RESPONSE = 4 * 1024 * 1024  # JWKS and metadata documents are a few KiB
DEFAULT_POOL_SIZE = 4  # idle connections kept per origin
DEFAULT_POOL_IDLE = 5.0  # seconds an idle connection is kept (servers drop them too)
DEFAULT_MAX_REDIRECTS = 5
_IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
_REDIRECTS = (301, 302, 303, 307, 308)


class ClientError(NmosAuthError):
    """An HTTP exchange failed: connection, TLS, timeout, bad or oversized response."""


class ClientConnectError(ClientError):
    """Could not connect or complete the TLS handshake (incl. certificate checks)."""


class ClientTimeoutError(ClientError):
    """Connect or read timeout."""


class ResponseTooLargeError(ClientError):
    """The response body is larger than the client's `max_response`."""


class HTTPStatusError(ClientError):
    """A non-2xx answer where a 2xx was needed (`get_json`); `.response` has it."""

    response = None


class ClientResponse:
    def __init__(self, url, head, body):
        self.url = url
        self.status = head.status
        self.reason = head.reason.decode("latin-1")
        self.headers = head.headers  # [(lowercased name bytes, value bytes)]
        self.body = body

    def header(self, name, default=None):
        value = None
        key = name.lower().encode("latin-1")
        for n, v in self.headers:
            if n == key:
                value = v
                break
        return default if value is None else value.decode("latin-1")

    def json(self):
        try:
            return jsonshim.loads(self.body)
        except ValueError:
            raise ClientError("response from %s is not valid JSON" % self.url)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<ClientResponse %d %s>" % (self.status, self.url)


class _Conn:
    def __init__(self, reader, writer, loop):
        self.reader = reader
        self.writer = writer
        self.idle_since = loop.time()

    def usable(self, now):
        return (not self.reader.at_eof() and not self.writer.is_closing()
                and now - self.idle_since < DEFAULT_POOL_IDLE)

    def close(self):
        """Drop the connection now (a failed or unwanted one: no TLS close_notify wait)."""
        abort(self.writer)


class HTTPClient:
    """`HTTPClient(ca_file=...)`; `await request(method, url, ...)`, `get`, `get_json`,
    `post_json`, `post_form`; `await close()` (or `async with`)."""

    def __init__(self, *, ca_file=None, ssl_context=None, insecure_http=False, resolve=None,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT, read_timeout=DEFAULT_READ_TIMEOUT,
                 max_response=DEFAULT_MAX_RESPONSE, pool_size=DEFAULT_POOL_SIZE,
                 follow_redirects=False, max_redirects=DEFAULT_MAX_REDIRECTS, headers=None,
                 cert_file=None, key_file=None):
        self._ssl = ssl_context
        self._ca_file = ca_file
        self._cert = (cert_file, key_file)
        self.insecure_http = insecure_http
        if insecure_http:
            log.warning("INSECURE: plain http:// allowed for this client (lab use only; "
                        "IS-10 requires TLS for all authorization traffic)")
        self.resolve = resolve or {}  # host name -> address, or a callable
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response = max_response
        self.pool_size = pool_size
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        self._pool = {}

    def _ssl_context(self):
        if self._ssl is None:  # built on first use: loading CA stores takes time
            self._ssl = client_context(self._ca_file, cert_file=self._cert[0], key_file=self._cert[1])
        return self._ssl

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        """Close pooled connections (politely, for at most half a second)."""
        pool, self._pool = self._pool, {}
        await close_writers([conn.writer for conns in pool.values() for conn in conns], 0.5)

    # --- convenience ----------------------------------------------------------
    async def get(self, url, **kw):
        return await self.request("GET", url, **kw)

    async def get_json(self, url, **kw):
        """GET and parse JSON; raise HTTPStatusError unless the status is 2xx."""
        headers = list(kw.pop("headers", None) or []) + [("accept", "application/json")]
        resp = await self.request("GET", url, headers=headers, **kw)
        if not 200 <= resp.status < 300:
            exc = HTTPStatusError("GET %s: HTTP %d" % (url, resp.status))
            exc.response = resp
            raise exc
        return resp.json()

    async def post_json(self, url, obj, **kw):
        return await self.request("POST", url, json=obj, **kw)

    async def post_form(self, url, fields, **kw):
        return await self.request("POST", url, form=fields, **kw)

    # --- the exchange -----------------------------------------------------------
    async def request(self, method, url, *, headers=None, body=None, json=None, form=None,
                      connect_host=None, server_hostname=None, follow_redirects=None):
        """Send one request; returns a ClientResponse with the whole body read.

        `body`: bytes or an async iterable of bytes (sent chunked). `json`/`form` set the
        body and Content-Type. `connect_host`: address to connect to instead of the URL's
        host; `server_hostname`: name for SNI, verification and Host instead of the URL's.
        """
        method = method.upper()
        headers = self.headers + list(headers.items() if isinstance(headers, dict) else headers or [])
        if json is not None:
            body = jsonshim.dumps(json).encode("utf-8")
            headers.append(("content-type", "application/json"))
        elif form is not None:
            body = urllib.parse.urlencode(form).encode("ascii")
            headers.append(("content-type", "application/x-www-form-urlencoded"))
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        for _ in range(self.max_redirects + 1):
            resp = await self._send(method, url, headers, body, connect_host, server_hostname)
            location = resp.header("location")
            if not follow or resp.status not in _REDIRECTS or location is None:
                return resp
            new_url = urllib.parse.urljoin(url, location)
            old, new = urllib.parse.urlsplit(url), urllib.parse.urlsplit(new_url)
            if new.scheme not in ("https", "http") or (new.scheme == "http" and old.scheme == "https"):
                raise ClientError("refusing redirect from %s to %s" % (url, new_url))
            if (old.scheme, old.netloc) != (new.scheme, new.netloc):
                # another origin: credentials and our address override stay behind
                headers = [(n, v) for n, v in headers if n.lower() not in ("authorization", "cookie")]
                connect_host = server_hostname = None
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method = "GET" if method != "HEAD" else method
                body = None
                headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
            url = new_url
        raise ClientError("too many redirects (last: %s)" % url)

    async def _send(self, method, url, headers, body, connect_host, server_hostname):
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise ClientError("unsupported URL scheme: %r" % scheme)
        if scheme == "http" and not self.insecure_http:
            raise ClientError("refusing plain http:// URL %s (TLS is required; the insecure "
                              "lab mode must be enabled explicitly)" % url)
        host = parts.hostname
        if not host:
            raise ClientError("URL has no host: %s" % url)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise ClientError("bad port in URL %s" % url)
        name = (server_hostname or host).rstrip(".")  # trailing dot: BCP-003-01 notes
        address = connect_host or self._resolve(host)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        host_value = ("[%s]" % name if ":" in name else name)
        if port != (443 if scheme == "https" else 80):
            host_value += ":%d" % port
        all_headers = [("host", host_value)] + headers
        if not any(n.lower() == "user-agent" for n, _ in headers):
            all_headers.append(("user-agent", "nmosauth-lite"))
        streamed = body is not None and not isinstance(body, (bytes, bytearray, memoryview))
        if streamed:
            all_headers.append(("transfer-encoding", "chunked"))
        elif body is not None or method in ("POST", "PUT", "PATCH"):
            all_headers.append(("content-length", str(len(body or b""))))
        head = build_request_head(method, target, all_headers)
        key = (scheme, address, port, name)
        for attempt in (0, 1):
            conn, reused = self._take(key), True
            if conn is None:
                conn, reused = await self._connect(scheme, address, port, name), False
            try:
                return await self._exchange(conn, key, method, url, head, body, streamed)
            except (OSError, _StaleConnection) as exc:
                conn.close()
                # A TLS alert the server sent after the handshake (TLS 1.3: a client certificate it
                # refuses) sits in the reader while writing only saw "Connection lost": name it
                alert = conn.reader.exception()
                cause = alert if isinstance(alert, ssl.SSLError) else exc
                # A pooled connection the server had already closed: retry once on a
                # fresh one, if no byte of an answer came and the method is idempotent.
                if not reused or attempt or method not in _IDEMPOTENT or streamed:
                    raise ClientError("connection to %s failed: %s" % (url, cause or type(cause).__name__)) from cause
            except BaseException:
                conn.close()
                raise

    def _resolve(self, host):
        if callable(self.resolve):
            return self.resolve(host) or host
        return self.resolve.get(host.rstrip("."), host)

    def _take(self, key):
        conns = self._pool.get(key)
        now = asyncio.get_running_loop().time()
        while conns:
            conn = conns.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def _connect(self, scheme, address, port, name):
        ctx = None
        if scheme == "https":
            ctx = self._ssl_context()
        else:
            log.warning("INSECURE: plain HTTP connection to %s:%s", address, port)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, ssl=ctx, server_hostname=name if ctx else None,
                                        limit=2 ** 16),
                self.connect_timeout)
        except asyncio.TimeoutError:
            raise ClientTimeoutError("connect to %s:%s (%s) timed out" % (address, port, name))
        except OSError as exc:  # includes ssl.SSLError / SSLCertVerificationError
            raise ClientConnectError("connect to %s:%s (%s) failed: %s" % (address, port, name, exc))
        return _Conn(reader, writer, asyncio.get_running_loop())

    async def _exchange(self, conn, key, method, url, head, body, streamed):
        writer, reader = conn.writer, conn.reader
        parser = ResponseParser(self.max_response)
        parser.start(method)
        received = False
        try:
            async with asyncio.timeout(self.read_timeout):
                if streamed:
                    writer.write(head)
                    async for chunk in body:
                        writer.write(build_chunk(chunk))
                        await writer.drain()
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(head + body if body else head)
                await writer.drain()
                parts = []
                resp_head = None
                while True:
                    event = parser.next_event()
                    if event is NEED_DATA:
                        data = await reader.read(65536)
                        if data:
                            received = True
                            parser.feed(data)
                        elif not received:
                            raise _StaleConnection("closed before any response")
                        else:
                            parser.feed_eof()
                    elif event.__class__ is Data:
                        parts.append(event.data)
                    elif event.__class__ is EndOfMessage:
                        break
                    elif event.status >= 200 or event.status == 101:
                        resp_head = event
                        if event.status == 101:
                            break
        except TimeoutError:
            raise ClientTimeoutError("no complete answer from %s within %ss" % (url, self.read_timeout))
        except BodyTooLargeError:
            raise ResponseTooLargeError("response from %s over %d bytes" % (url, self.max_response))
        except HTTPError as exc:
            raise ClientError("bad HTTP response from %s: %s" % (url, exc.message))
        if resp_head.keep_alive and resp_head.status != 101 and not parser.buffered:
            conn.idle_since = asyncio.get_running_loop().time()
            conns = self._pool.setdefault(key, [])
            if len(conns) < self.pool_size:
                conns.append(conn)
            else:
                conn.close()
        else:
            conn.close()
        return ClientResponse(url, resp_head, b"".join(parts))


class _StaleConnection(Exception):
    pass
