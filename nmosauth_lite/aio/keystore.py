"""Trusted issuers' keys for a resource server: persisted, refreshed, fetched on demand.

Plugs into TokenValidator(keys=KeyStore(...)) through keys_for/missing_key. At
construction the persisted key sets are read (before any network I/O), so a Node
validates tokens right after boot with the authorization server down. `run()`
refreshes hourly plus 0-60 s jitter (IS-10 RS-02) with conditional GETs, tries
each known server of an issuer in turn and backs off at random when none
answers (RS-03), keeping the last good keys (RS-04). A key missing from a fresh
set is withdrawn at once, with every cached token it signed. Unknown kids
trigger one single-flight fetch per issuer, rate-limited (RS-10), answered 503
+ Retry-After meanwhile (RS-07); `prime()` fetches every issuer at start-up
(bounded) and `wait_change()` lets a request wait a bounded time for a fetch in
flight before its 503 stands (issue 12 §1; at start-up only). Only configured or discovered https
issuers are trusted; a token naming any other `iss` never causes a fetch.
Under the IPMX profile (profile.py): refresh every 23 h + 0-3600 s, back-off 1..64 s,
keys unusable 36 h after they were obtained (logged once, SEC-56), no fetch on demand
(SEC-57), and keys persisted by an earlier run are not used before this run has fetched
its own (SEC-51, SEC-53: refuse until an initial set is obtained).
Fetching from the servers is aio/keyfetch.py's (a mixin, with `Server`); DNS-SD trust, aio/discovered.py's.
"""

import asyncio
import logging
import random
import time

from ..errors import KeyFetchPendingError, with_attrs
from ..issuer import check_issuer
from ..jwks_cache import IssuerKeys
from ..jws import DEFAULT_ALGORITHMS
from ..oauth import backoff_delay
from ..profile import get_profile
from .discovered import DiscoveredIssuers
from .keyfetch import KeyFetcher, Server  # Server: importable from here too (demo, tests)
from .keyfiles import KeyFiles
from .ratelog import RateLimitedLog

log = logging.getLogger("nmosauth_lite.keys")

DEFAULT_RETRY_AFTER = 2  # seconds told to clients while a key is fetched (RS-07)
FETCH_TIMEOUT = 10.0  # per server, metadata + JWKS
DEFAULT_KEY_WAIT = 2.0  # seconds a request may wait for a key fetch in flight (issue 12 §1)
DEFAULT_STARTUP_TIMEOUT = 10.0  # prime(): the most start-up waits for the issuers' keys
# prime(): randomized exponential back-off between tries of a silent issuer, the formula the client
# uses too (oauth.backoff_delay: uniform in [d/2, d], d = base * 2**attempt capped): (base, cap) s.
# Jitter keeps a site's Nodes, powered up together, from asking the AS in lock-step (issue 22 item 7).
STARTUP_RETRY = (0.25, 4.0)
WARN_INTERVAL = 60.0  # a repeated warning of one cause is logged at most once a minute


class KeyStore(KeyFetcher, DiscoveredIssuers):
    server_class = Server  # what add_discovered (aio/discovered.py) makes for an advert

    def __init__(self, issuers=(), state_dir=None, ca_file=None, insecure_http=False,
                 algorithms=DEFAULT_ALGORITHMS, retry_after=DEFAULT_RETRY_AFTER, rng=None, clock=None,
                 fetch_timeout=FETCH_TIMEOUT, profile="is-10", resolve=None):
        self.profile = get_profile(profile)
        self.algorithms = tuple(algorithms)
        self.fetch_failures = 0  # issuer refreshes where no server answered (IPMX SEC-49 g)
        self._invalidated = set()  # issuers whose keys passed the maximum age (logged once, SEC-56)
        # host name -> address chosen by the operator (--connect): connect there, keep the name
        # for TLS and Host; wins over DNS-SD answers for the same name (IS-10 CL-03, DS-13)
        self.resolve = {k.rstrip(".").lower(): v for k, v in (resolve or {}).items()}
        self.insecure_http = insecure_http
        self.ca_file = ca_file
        self.retry_after = retry_after
        self.fetch_timeout = fetch_timeout
        self._rng = rng or random.random
        self._clock = clock or time.time
        self._issuers = {}  # iss -> IssuerKeys
        self._servers = {}  # iss -> [Server]
        self._inflight = {}  # iss -> asyncio.Task
        self._priming = False  # prime() running: a token of an issuer without keys gets 503, not 401
        self._changed = None  # a Future resolved when a fetch ends or priming stops
        self._wakeup = None
        self._clients = {}
        self._init_discovery()  # aio/discovered.py
        self._running = False  # run() is refreshing in the background: a "next try" will happen
        self.warn = RateLimitedLog(log, WARN_INTERVAL)
        self.fetch_count = 0  # JWKS/metadata exchanges started: observability and tests
        self.files = KeyFiles(state_dir)  # persisted key sets (none without a state dir)
        for iss in issuers:
            self.add_issuer(iss)

    # --- trust ---------------------------------------------------------------------

    def add_issuer(self, issuer, servers=None):
        """Trust `issuer` (configured, or discovered through DNS-SD). Loads its persisted keys."""
        check_issuer(issuer, self.insecure_http)
        if servers is None:
            servers = [Server.for_issuer(issuer, resolve=self.resolve)]
        known = self._servers.get(issuer)
        if known is not None:
            urls = set(s.metadata_url for s in known)
            known.extend(s for s in servers if s.metadata_url not in urls)
            return self._issuers[issuer]
        self._servers[issuer] = list(servers)
        state = IssuerKeys(issuer, self.algorithms, self.profile)
        self._issuers[issuer] = state
        if self.profile.key_max_age is None:
            self.files.load(state)
        # else (IPMX SEC-51, SEC-53): keys of an earlier run wait for this run's own first fetch
        if self._wakeup is not None:
            self._wakeup.set()
        return state

    @property
    def issuers(self):
        return list(self._issuers)

    # --- the validator's interface ---------------------------------------------------

    def keys_for(self, iss):
        state = self._issuers.get(iss)
        return None if state is None else state.keys

    def missing_key(self, iss, kid, now):
        """No held key verified a token of trusted `iss`: fetch once (single flight, rate-limited)."""
        state = self._issuers[iss]
        if not self.profile.on_demand_fetch:
            return None  # IPMX SEC-57: a token never causes a key fetch; it is refused (401)
        if iss in self._inflight or (self._priming and not state.keys):
            raise with_attrs(KeyFetchPendingError("keys being fetched"), retry_after=self.retry_after)
        if not state.may_fetch_for_unknown_kid(now, kid):
            if not state.keys:  # nothing held to judge it by: "try later" (RS-07), not "bad token"
                raise with_attrs(KeyFetchPendingError("no keys yet"), retry_after=self.retry_after)
            return None  # RS-10: rate limit reached; the token is simply refused (401)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None  # no event loop: nothing can fetch now
        state.note_unknown_kid_fetch(now)
        self._start_fetch(iss, loop)
        raise with_attrs(KeyFetchPendingError("keys being fetched"), retry_after=self.retry_after)

    # --- fetching: when (how: aio/keyfetch.py) ---------------------------------------

    def _start_fetch(self, iss, loop=None):
        task = self._inflight.get(iss)
        if task is None:
            loop = loop or asyncio.get_running_loop()
            task = loop.create_task(self._refresh_issuer(iss))
            self._inflight[iss] = task
            task.add_done_callback(lambda t, iss=iss: self._fetch_done(iss))
        return task

    def _fetch_done(self, iss):
        self._inflight.pop(iss, None)
        self._signal()

    def _signal(self):
        fut, self._changed = self._changed, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    @property
    def starting(self):
        """From begin_startup() (or prime()) until prime() ends: only then may a request wait for
        keys; after it an unseen key gets 503 + Retry-After at once (issue 19 §2, IS-10 RS-07)."""
        return self._priming

    def begin_startup(self):
        """Open the start-up window before the listener accepts; prime() closes it."""
        self._priming = True

    @property
    def pending(self):
        """True while a key fetch is in flight or start-up priming runs."""
        return bool(self._inflight) or self._priming

    async def wait_change(self, timeout):
        """Wait up to `timeout` s for a fetch in flight to end (or priming to stop): True if one
        did, False at once when nothing is pending. The caller decides again after it."""
        if not self.pending or timeout <= 0:
            return False
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait([self._changed], timeout=timeout)
        return bool(done)

    async def prime(self, timeout=DEFAULT_STARTUP_TIMEOUT, retry=STARTUP_RETRY):
        """Start-up (before READY): fetch every trusted issuer's keys once, and retry those
        still without a key (an authorization server starting at the same moment) with
        randomized exponential back-off (STARTUP_RETRY) until each has keys or `timeout`
        passed. Returns the issuers still without keys. Bounded: an AS that is down delays
        start-up by `timeout` at most, then RS-07 503s remain and the background back-off
        (jwks_cache, RS-03) takes over. Every line logged names the real next attempt."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        base, cap = retry
        attempt = 0
        self._priming = True
        try:
            todo = list(self._issuers)
            while todo:
                tasks = [self._start_fetch(iss) for iss in todo]
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait(tasks, timeout=left)  # never cancels them: they finish anyway
                todo = [iss for iss in self._issuers if not self._issuers[iss].keys]
                left = deadline - loop.time()
                if not todo or left <= 0:
                    break
                pause = backoff_delay(attempt, self._rng(), base, cap)
                attempt += 1
                if pause >= left:
                    break  # no try fits before the deadline: the background back-off decides
                for iss in todo:
                    self.warn.warning(("prime", iss), "start-up: keys of %s not fetched yet (%s); next try in %.2f s",
                                      iss, self._issuers[iss].last_error or "no answer", pause)
                await asyncio.sleep(pause)
        finally:
            self._priming = False
            self._signal()
        missing = [iss for iss in self._issuers if not self._issuers[iss].keys]
        now = self._clock()
        for iss in missing:
            state = self._issuers[iss]
            # one step of the steady back-off for the whole start-up, not one per start-up try
            delay = state.fetch_failed(now, self._rng, state.last_error or "no answer at start-up")
            log.warning("no keys for %s after %.1f s at start-up: its tokens get %d until a fetch succeeds; "
                        "next try in %.0f s", iss, timeout, self.profile.no_keys_status, delay)
        return missing

    async def wait(self, iss, timeout):
        """Wait (bounded) for an in-flight fetch of `iss`; True when one finished in time."""
        task = self._inflight.get(iss)
        if task is None:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def refresh(self, issuers=None, force=False):
        """Refresh the due (or, with force, all) issuers now; returns {iss: error or None}."""
        now = self._clock()
        names = list(self._issuers) if issuers is None else list(issuers)
        tasks = {}
        for iss in names:
            if iss in self._issuers and (force or self._issuers[iss].due(now)):
                tasks[iss] = self._start_fetch(iss)
        out = {}
        for iss, task in tasks.items():
            await asyncio.shield(task)
            out[iss] = self._issuers[iss].last_error
        return out

    async def run(self):
        """Background refresh loop; cancel it to stop."""
        self._wakeup = asyncio.Event()
        self._running = True
        try:
            await self._refresh_forever()
        finally:
            self._running = False

    async def _refresh_forever(self):
        while True:
            await self.refresh()
            now = self._clock()
            self.note_expiry(now)
            nxt = min((s.next_refresh for s in self._issuers.values()), default=now + 3600)
            for s in self._issuers.values():
                t = s.expires_at()
                if t is not None and t > now and t < nxt:
                    nxt = t  # wake when keys pass their maximum age, to log it (SEC-56)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), max(0.05, nxt - now))
            except asyncio.TimeoutError:
                pass

    def note_expiry(self, now):
        """Log once per issuer when its keys pass the profile's maximum age (IPMX SEC-54, SEC-56:
        the invalidation MUST be logged); returns the issuers whose keys are past it."""
        out = []
        for iss, s in self._issuers.items():
            if s.expired(now):
                out.append(iss)
                if iss not in self._invalidated:
                    self._invalidated.add(iss)
                    log.warning("keys of %s invalidated: obtained %.1f h ago (maximum %.0f h); tokens are "
                                "refused until a fetch succeeds", iss, (now - s.fetched_at) / 3600, s.max_age / 3600)
            else:
                self._invalidated.discard(iss)
        return out

    async def close(self):
        for task in list(self._inflight.values()):
            task.cancel()
        for c in self._clients.values():
            await c.close()
        self._clients = {}

    # --- reporting -----------------------------------------------------------------------

    def status(self, now=None):
        now = self._clock() if now is None else now
        out = []
        for iss, s in self._issuers.items():
            out.append({
                "issuer": iss,
                "jwks_uri": s.jwks_uri,
                "metadata_form": s.metadata_form,
                "metadata_url": s.metadata_url,
                "kids": [k.kid or k.thumbprint for k in s.keys],
                "age": None if s.fetched_at is None else round(now - s.fetched_at, 1),
                "next_refresh_in": round(s.next_refresh - now, 1),
                "failures": s.failures,
                "last_error": s.last_error,
            })
        return out
