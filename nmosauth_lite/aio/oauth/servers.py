"""Choosing the authorization server: configured issuers or DNS-SD adverts, with failover.

Candidates come from configuration (in the order given) or from an aio.dns.DiscoveryCache
(ordered by `pri`, random among equals: IS-10 DS-12; servers that failed recently go to
the back: DS-11). Each candidate's RFC 8414 metadata is found (a configured issuer's in the
three places aio/metadata.py tries, the same as the key store's) and checked (its issuer
equals the configured one, or fits the advert per DS-14) and judged for the role (CL-02).
`run(op)` tries candidates in turn: connection errors, timeouts, 5xx and unusable metadata
move on to the next (RS-03); when all fail it backs off at random. A 503 with a short
Retry-After is waited out once on the same server (BCP-003-02 BCP-N-05). Connections go to
the advertised address while TLS, SNI and Host keep the advertised name (CL-03, DS-13).
"""

import asyncio
import logging
import random
import time

from ... import challenge, oauth
from ...errors import NmosAuthError, RemoteError
from ...issuer import check_issuer, metadata_urls
from ..client import ClientError, HTTPClient
from ..metadata import find_metadata, note_form, ordered
from ..ratelog import RateLimitedLog

log = logging.getLogger("nmosauth_lite.oauth.servers")

METADATA_TTL = 3600.0  # refetch metadata hourly (and after any failure)
FAILED_HOLD = 60.0  # a failed configured server waits at the back this long (DS-11)
RETRY_AFTER_MAX = 10.0  # longer Retry-After: fail over instead (BCP-N-05)
REQUEST_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
DEFAULT_RUN_TIMEOUT = 60.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
MAX_DOCUMENT = 256 * 1024


class Unavailable(NmosAuthError):
    """This server cannot be used now (no connection, timeout, 5xx, unusable metadata): try another."""

    retry_after = None


class NoServerError(Unavailable):
    """No candidate answered before the deadline."""


class Candidate:
    def __init__(self, issuer, metadata_url, loose=False, advert=None, urls=None):
        self.issuer = issuer  # the configured issuer, or the one built from the advert (DS-14)
        self.metadata_url = metadata_url
        self.urls = list(urls) if urls else [("rfc8414", metadata_url)]  # places tried (aio/metadata.py)
        self.answered = None  # (form, url) that gave the metadata last
        self.loose = loose
        self.advert = advert
        self.metadata = None
        self.fetched_at = 0.0

    def key(self):
        return self.metadata_url

    def __repr__(self):
        return "Candidate(%s)" % self.issuer


class ServerSelector:
    def __init__(self, *, issuers=(), discovery=None, ca_file=None, insecure_http=False, role="node",
                 auth_method="client_secret_basic", register=True, alg=None, resolve=None, http=None,
                 rng=None, clock=time.time, retry_after_max=RETRY_AFTER_MAX, failed_hold=FAILED_HOLD,
                 request_timeout=REQUEST_TIMEOUT, metadata_ttl=METADATA_TTL, connect_timeout=CONNECT_TIMEOUT):
        if not issuers and discovery is None:
            raise NmosAuthError("give issuers or a discovery cache")
        self.insecure_http = insecure_http
        self._configured = []
        for i in issuers:
            urls = metadata_urls(check_issuer(i, insecure_http))
            self._configured.append(Candidate(i, urls[0][1], urls=urls))
        self.discovery = discovery
        self.role, self.auth_method, self.register, self.alg = role, auth_method, register, alg
        self._addresses = {k.rstrip(".").lower(): v for k, v in (resolve or {}).items()}
        self._fixed = set(self._addresses)  # the operator's overrides win over DNS-SD answers
        self._own_http = http is None
        self.http = http or HTTPClient(ca_file=ca_file, insecure_http=insecure_http, resolve=self._resolve,
                                       connect_timeout=connect_timeout, read_timeout=request_timeout,
                                       max_response=MAX_DOCUMENT)
        self._rng = rng or random.SystemRandom().random
        self._clock = clock
        self.retry_after_max = retry_after_max
        self.failed_hold = failed_hold
        self.metadata_ttl = metadata_ttl
        self._failed = {}  # candidate key -> until (monotonic)
        self.warn = RateLimitedLog(log)  # repeated failures: one line per cause per minute
        self._seen = {}  # metadata URL -> Candidate (keeps fetched metadata across discovery runs)

    def _resolve(self, host):
        return self._addresses.get(host.rstrip(".").lower())

    async def close(self):
        if self._own_http:
            await self.http.close()

    # --- candidates ------------------------------------------------------------------------
    async def candidates(self):
        out = list(self._configured)
        if self.discovery is not None:
            try:
                adverts = await self.discovery.get()
            except (NmosAuthError, OSError) as e:
                log.warning("DNS-SD discovery failed: %s", e)
                adverts = []
            for adv in adverts:
                c = self._seen.get(adv.metadata_url)
                if c is None:
                    host = adv.host.rstrip(".").lower()
                    issuer = "%s://%s:%d%s" % (adv.api_proto, host, adv.port,
                                               "/" + adv.api_selector if adv.api_selector else "")
                    c = self._seen[adv.metadata_url] = Candidate(issuer, adv.metadata_url, True, adv)
                c.advert = adv
                host = adv.host.rstrip(".").lower()
                if adv.addresses and host not in self._fixed:
                    self._addresses[host] = adv.addresses[0]
                out.append(c)
        now = time.monotonic()
        good = [c for c in out if self._failed.get(c.key(), 0) <= now]
        return good + [c for c in out if self._failed.get(c.key(), 0) > now]

    def mark_failed(self, c):
        c.metadata = None  # a server that failed may come back with other endpoints
        self._failed[c.key()] = time.monotonic() + self.failed_hold
        if c.advert is not None and self.discovery is not None:
            self.discovery.mark_failed(c.advert)

    def mark_good(self, c):
        self._failed.pop(c.key(), None)

    # --- HTTP with the failover rules -----------------------------------------------------------
    async def request(self, method, url, **kw):
        """One exchange; Unavailable for what warrants another server, the response otherwise."""
        for attempt in (0, 1):
            try:
                resp = await self.http.request(method, url, **kw)
            except (ClientError, OSError, asyncio.TimeoutError) as e:
                raise Unavailable("%s %s: %s" % (method, url, e))
            if resp.status < 500:
                return resp
            wait = challenge.parse_retry_after(resp.header("retry-after"), self._clock())
            if resp.status == 503 and attempt == 0 and wait is not None and wait <= self.retry_after_max:
                log.info("%s answered 503, retrying after %d s (Retry-After)", url, wait)
                await asyncio.sleep(wait)
                continue
            exc = Unavailable("%s %s: HTTP %d" % (method, url, resp.status))
            exc.retry_after = wait
            raise exc

    async def metadata(self, c):
        if c.metadata is not None and time.monotonic() - c.fetched_at < self.metadata_ttl:
            return c.metadata
        async def get(url):
            return await self.request("GET", url, headers=[("accept", "application/json")])

        previous = c.answered[1] if c.answered else None
        try:
            found = await find_metadata(get, c.issuer, ordered(c.urls, previous), self.insecure_http, c.loose)
            doc = found.doc
            oauth.check_metadata_for(doc, self.role, self.auth_method, self.register, self.alg)
        except (RemoteError, ClientError) as e:
            raise Unavailable("%s: %s" % (c.metadata_url, e.message))
        note_form(c.issuer, previous, found)
        c.answered = (found.form, found.url)
        c.issuer = doc["issuer"]  # what tokens will carry; registrations are keyed by it
        c.metadata, c.fetched_at = doc, time.monotonic()
        return doc

    async def _metadata_then(self, op, c):
        return await op(c, await self.metadata(c))

    async def run(self, op, timeout=DEFAULT_RUN_TIMEOUT):
        """`await op(candidate, metadata)` on the first candidate that works (failover, back-off);
        `timeout` bounds every wait in it (the commands' --timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempt = 0

        async def bounded(awaitable, what):
            left = deadline - loop.time()
            if left <= 0:
                awaitable.close()
                raise Unavailable("%s: out of time" % what)
            try:
                return await asyncio.wait_for(awaitable, left)
            except asyncio.TimeoutError:
                raise Unavailable("%s: no answer within %g s (--timeout)" % (what, timeout))
        reasons = []
        while True:
            retry_after = 0
            try:
                found = await bounded(self.candidates(), "discovery")
            except Unavailable as e:
                found = []
                reasons.append(e.message)
            for c in found:
                try:
                    result = await bounded(self._metadata_then(op, c), c.issuer)
                    self.mark_good(c)
                    return result
                except Unavailable as e:
                    self.warn.warning(("unusable", c.issuer), "authorization server %s unusable: %s", c.issuer,
                                      e.message)
                    reasons.append(e.message)
                    del reasons[:-3]
                    retry_after = max(retry_after, e.retry_after or 0)
                    self.mark_failed(c)
                if loop.time() >= deadline:
                    break
            left = deadline - loop.time()
            if left > 0:
                wait = max(oauth.backoff_delay(attempt, self._rng(), BACKOFF_BASE, BACKOFF_CAP), retry_after)
                if wait < left:  # the line names the real next round (issue 22 item 7)
                    self.warn.warning("round", "no authorization server usable; next round in %.1f s", wait)
                await asyncio.sleep(min(left, wait))
                attempt += 1
            if loop.time() >= deadline:
                exc = NoServerError("no authorization server answered: " + ("; ".join(reasons[-3:]) or
                                                                            "none discovered"))
                exc.retry_after = retry_after or None
                raise exc
