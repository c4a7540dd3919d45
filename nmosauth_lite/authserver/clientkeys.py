"""Keys behind a client's `jwks_uri` (RFC 7591 §2, RFC 7523): outbound fetches a client chooses.

The URI is the client's choice, so the fetch is fenced (issue 11 §3): https only; the host
is resolved once and every address it gives must be global (no loopback, private,
link-local, multicast, unspecified, reserved, nor those inside IPv4-mapped IPv6) unless
the operator allows it (`client_jwks.allow_private_addresses`, for labs); the connection
goes to the address that was checked (no second lookup to rebind). One fetch at a time
per client and at most one per MIN_REFETCH s; answers cached by their Cache-Control /
Expires within [min_ttl, max_ttl], failures for negative_ttl; size and time capped;
failures logged as a short category, never the peer's or TLS library's text.
"""

import asyncio
import email.utils
import ipaddress
import logging
import socket
import urllib.parse

from ..errors import KeyFormatError
from ..jwk import parse_jwks
from ..logfield import escape
from .config import DEFAULT_JWKS_MAX_TTL, DEFAULT_JWKS_MIN_TTL, DEFAULT_JWKS_NEGATIVE_TTL

log = logging.getLogger("nmosauth_lite.authserver.clientkeys")

MAX_DOCUMENT = 64 * 1024  # a JWK Set of a few keys is 1-5 KiB
FETCH_TIMEOUT = 5.0  # connect + TLS + whole answer
MIN_REFETCH = 10.0  # at most one fetch per client per this many seconds (also on a failed signature)
DEFAULT_TTL = 300  # no cache headers
MAX_ENTRIES = 1024  # clients whose keys are held; the least recently fetched go first


class FetchError(Exception):
    """A fetch failed; `category` is the short, log-safe reason."""

    def __init__(self, category):
        super().__init__(category)
        self.category = category


def is_allowed_address(address, allow_private=False):
    """True when an outbound fetch may connect to `address` (an IP address string)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if allow_private:
        return True
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback
                                 or ip.is_link_local or ip.is_private)


def cache_ttl(headers, now, min_ttl, max_ttl, default=DEFAULT_TTL):
    """Seconds to keep an answer, from its Cache-Control / Expires / Age (RFC 9111 §4.2.1)."""
    cc = (headers.get("cache-control") or "").lower()
    ttl = None
    for part in cc.split(","):
        name, _, value = part.strip().partition("=")
        if name in ("no-store", "no-cache"):
            ttl = 0
            break
        if name in ("max-age", "s-maxage") and value.strip().strip('"').isdigit():
            ttl = int(value.strip().strip('"'))
    if ttl is None and headers.get("expires"):
        try:
            ttl = email.utils.parsedate_to_datetime(headers["expires"]).timestamp() - now
        except (TypeError, ValueError, OverflowError):
            ttl = 0  # RFC 9111 §5.3: an invalid Expires means already expired
    if ttl is None:
        ttl = default
    age = headers.get("age") or ""
    if age.isdigit():
        ttl -= int(age)
    return float(min(max_ttl, max(min_ttl, ttl)))


class _Entry:
    __slots__ = ("uri", "keys", "expires", "attempt")

    def __init__(self, uri, keys, expires, attempt):
        self.uri = uri
        self.keys = keys  # list of keys, or None after a failure with nothing good to keep
        self.expires = expires
        self.attempt = attempt


class ClientKeys:
    """`await get(client_id, uri, now)` -> keys; `await refresh(...)` after a failed signature."""

    def __init__(self, *, algorithms, allow_private=False, min_ttl=DEFAULT_JWKS_MIN_TTL,
                 max_ttl=DEFAULT_JWKS_MAX_TTL, negative_ttl=DEFAULT_JWKS_NEGATIVE_TTL, ca_file=None,
                 resolve=None, max_entries=MAX_ENTRIES):
        self.algorithms = algorithms
        self.allow_private = allow_private
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.ca_file = ca_file
        self.resolve = resolve  # async host, port -> [address]; None: the event loop's getaddrinfo
        self.max_entries = max_entries
        self.fetches = 0  # outbound fetches started (tests and metrics)
        self._entries = {}  # client_id -> _Entry
        self._inflight = {}  # client_id -> Task
        self._http = None

    async def close(self):
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def get(self, client_id, uri, now):
        """The client's keys; FetchError when there are none to use (fetch failed, negatively cached)."""
        e = self._entries.get(client_id)
        if e is not None and e.uri == uri and (now < e.expires or now - e.attempt < MIN_REFETCH):
            if e.keys is None:
                raise FetchError("cached failure")
            return e.keys
        return await self._fetch(client_id, uri, now)

    async def refresh(self, client_id, uri, now):
        """Fetch again because a signature did not verify (the client may have rotated its key):
        new keys, or None when the last fetch is too recent for another."""
        e = self._entries.get(client_id)
        if e is not None and e.uri == uri and now - e.attempt < MIN_REFETCH:
            return None
        try:
            return await self._fetch(client_id, uri, now)
        except FetchError:
            return None

    async def _fetch(self, client_id, uri, now):
        task = self._inflight.get(client_id)
        if task is None:  # one fetch per client at a time: concurrent requests share it
            task = asyncio.ensure_future(self._fetch_and_store(client_id, uri, now))
            self._inflight[client_id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(client_id, None))
        return await asyncio.shield(task)

    async def _fetch_and_store(self, client_id, uri, now):
        old = self._entries.get(client_id)
        self.fetches += 1
        try:
            keys, ttl = await asyncio.wait_for(self._download(uri, now), FETCH_TIMEOUT)
        except (FetchError, asyncio.TimeoutError) as exc:
            category = exc.category if isinstance(exc, FetchError) else "timeout"
            log.warning("client %s: fetching its jwks_uri failed (%s)", escape(client_id), category)
            kept = old.keys if old is not None and old.uri == uri else None  # keep the last good keys
            self._store(client_id, _Entry(uri, kept, now + self.negative_ttl, now))
            if kept is None:
                raise FetchError(category)
            return kept
        self._store(client_id, _Entry(uri, keys, now + ttl, now))
        return keys

    def _store(self, client_id, entry):
        self._entries.pop(client_id, None)
        if len(self._entries) >= self.max_entries:
            for cid in list(self._entries)[:max(1, len(self._entries) // 8)]:  # oldest inserted first
                del self._entries[cid]
        self._entries[client_id] = entry

    async def _addresses(self, host, port):
        if self.resolve is not None:
            return await self.resolve(host, port)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise FetchError("name not resolved")
        return list(dict.fromkeys(info[4][0] for info in infos))

    async def _download(self, uri, now):
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme != "https" or not parts.hostname:
            raise FetchError("not an https URL")
        try:
            port = parts.port or 443
        except ValueError:
            raise FetchError("bad port")
        addresses = await self._addresses(parts.hostname, port)
        if not addresses:
            raise FetchError("name not resolved")
        if not all(is_allowed_address(a, self.allow_private) for a in addresses):
            raise FetchError("address not allowed (loopback, private or other non-global)")
        from ..aio.client import (ClientConnectError, ClientError, ClientTimeoutError, HTTPClient,
                                  ResponseTooLargeError)

        if self._http is None:
            self._http = HTTPClient(ca_file=self.ca_file, connect_timeout=FETCH_TIMEOUT, read_timeout=FETCH_TIMEOUT,
                                    max_response=MAX_DOCUMENT, pool_size=0)
        try:
            # connect_host: the checked address, not a second lookup (DNS rebinding)
            resp = await self._http.request("GET", uri, headers=[("accept", "application/json")],
                                            connect_host=addresses[0])
            if resp.status != 200:
                raise FetchError("HTTP status %d" % resp.status)
            doc = resp.json()
        except ClientTimeoutError:
            raise FetchError("timeout")
        except ResponseTooLargeError:
            raise FetchError("answer over %d bytes" % MAX_DOCUMENT)
        except ClientConnectError as exc:
            import ssl

            raise FetchError("TLS failure" if isinstance(exc.__context__, ssl.SSLError) else "connection failed")
        except ClientError:
            raise FetchError("bad HTTP answer or not JSON")
        except OSError:
            raise FetchError("connection failed")
        try:
            keys, _ = parse_jwks(doc, self.algorithms)
        except KeyFormatError:
            raise FetchError("not a JWK Set")
        if not keys:
            raise FetchError("no usable key")
        headers = {n: resp.header(n) for n in ("cache-control", "expires", "age")}
        return keys, cache_ttl(headers, now, self.min_ttl, self.max_ttl)
