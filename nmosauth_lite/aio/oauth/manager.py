"""TokenManager: always hold a valid access token; BearerClient: use it on our HTTP client.

`await manager.token()` returns a token with at least `min_validity` seconds left, fetching
one (single flight) when needed. A background task refreshes at min(half-life, exp - 15 s)
with jitter (IS-10 CL-32), backs off at random while no server answers and keeps the
current token meanwhile; Retry-After from a 503 is honoured. client_credentials is simply
run again (CL-35); authorization-code tokens use their rotating refresh token (CL-33) and,
when it is refused, the `authorize` callback (CL-34). `invalidate(token)` after a resource
server's 401 forces one refresh; BearerClient does that and retries once (CL-40, CL-41,
BCP-003-02 BCP-N-01). `close()` revokes what the server lets us revoke (CL-42).
"""

import asyncio
import logging
import random
import time

from ... import challenge, oauth
from ...errors import NmosAuthError
from .client import AuthorizationRequired
from .servers import Unavailable

log = logging.getLogger("nmosauth_lite.oauth.manager")

MIN_VALIDITY = 5.0  # a token handed out has at least this long to live
ACQUIRE_TIMEOUT = 60.0  # one token() call waits this long for servers at most
REVOKE_TIMEOUT = 5.0
RETRY_BASE = 1.0
RETRY_CAP = 30.0
MAX_RETRY_AFTER_WAIT = 10.0  # BearerClient waits out a resource server's 503 this long at most


class TokenUnavailableError(NmosAuthError):
    """No valid token could be obtained in time."""


class TokenManager:
    def __init__(self, client, *, authorize=None, min_validity=MIN_VALIDITY, acquire_timeout=ACQUIRE_TIMEOUT,
                 clock=time.time, rng=None):
        self.client = client
        self.authorize = authorize  # async () -> tokens, for authorization-code clients
        self.min_validity = min_validity
        self.acquire_timeout = acquire_timeout
        self.clock = clock
        self._rng = rng or random.SystemRandom().random
        self._tokens = None
        self._next = None
        self._invalid = set()
        self._inflight = None
        self._task = None
        self._wake = asyncio.Event()
        self.refreshes = 0  # tokens obtained (observability, tests)

    @property
    def tokens(self):
        return self._tokens

    async def start(self, tokens=None):
        """Take `tokens` (e.g. from OAuthClient.authorize) or fetch the first; start refreshing."""
        if tokens is not None:
            self._accept(tokens)
        else:
            await self._refresh_now()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()

    def _valid(self, t):
        return (t is not None and t["access_token"] not in self._invalid
                and t["expires_at"] - self.clock() >= self.min_validity)

    async def token(self):
        """A currently valid access token (IS-10 CL-40); TokenUnavailableError when none can be had."""
        for _ in range(3):
            if self._valid(self._tokens):
                return self._tokens["access_token"]
            await self._refresh_now()
        raise TokenUnavailableError("the authorization server keeps issuing tokens that are already invalid")

    async def invalidate(self, token):
        """A resource server refused `token` (401): refresh once (if nobody did) and return the new one."""
        if self._tokens is not None and self._tokens["access_token"] == token:
            self._invalid.add(token)
        return await self.token()

    async def _refresh_now(self):
        if self._inflight is None:
            self._inflight = asyncio.get_running_loop().create_task(self._obtain())
            self._inflight.add_done_callback(self._clear_inflight)
        try:
            await asyncio.shield(self._inflight)
        except (Unavailable, oauth.OAuthError) as e:
            raise TokenUnavailableError("no access token: %s" % e.message)

    def _clear_inflight(self, task):
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged as lost

    async def _obtain(self):
        t = self._tokens
        if self.client.grant == "client_credentials":
            new = await self.client.client_credentials(self.acquire_timeout)
        elif t is not None and t.get("refresh_token"):
            try:
                new = await self.client.refresh(t)
            except AuthorizationRequired:
                if self.authorize is None:
                    raise
                log.warning("refresh token refused: asking for a new authorization")
                new = await self.authorize()
        elif self.authorize is not None:
            new = await self.authorize()
        else:
            raise AuthorizationRequired("no refresh token and no way to authorize")
        self._accept(new)

    def _accept(self, new):
        self._tokens = new  # the old refresh token is dropped here (CL-33)
        self._invalid.intersection_update([new["access_token"]])
        self._next = oauth.refresh_time(new["issued_at"], new["expires_at"], self._rng())
        self.refreshes += 1
        self._wake.set()

    async def _loop(self):
        attempt = 0
        while True:
            delay = self._next - self.clock() if self._next is not None else RETRY_BASE
            if delay > 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                    continue  # a new token arrived meanwhile: recompute
                except TimeoutError:
                    pass
            try:
                await self._refresh_now()
                attempt = 0
            except TokenUnavailableError as e:
                cause = e.__context__
                wait = oauth.backoff_delay(attempt, self._rng(), RETRY_BASE, RETRY_CAP)
                ra = getattr(cause, "retry_after", None)
                if ra:
                    wait = max(wait, ra)  # Retry-After honoured
                if self._tokens is not None:
                    wait = min(wait, max(self._tokens["expires_at"] - self.clock() - self.min_validity, RETRY_BASE))
                log.warning("token refresh failed (%s); next try in %.1f s", e.message, wait)
                self._next = self.clock() + wait
                attempt += 1
            except Exception:
                log.exception("token refresh crashed")
                self._next = self.clock() + RETRY_CAP

    async def close(self, revoke=True):
        """Stop refreshing; revoke the refresh (or access) token when offered (RFC 7009)."""
        task, self._task = self._task, None
        for t in (task, self._inflight):
            if t is not None:
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)
        tokens, self._tokens = self._tokens, None
        if revoke and tokens is not None:
            try:
                return await asyncio.wait_for(self.client.revoke(tokens), REVOKE_TIMEOUT)
            except (NmosAuthError, OSError, asyncio.TimeoutError) as e:
                log.warning("revocation at shutdown failed: %s", e)
        return False


class BearerClient:
    """Our HTTPClient with `Authorization: Bearer` added (RFC 6750 §2.1; IS-10 CL-40). A 401
    gets one retry with a fresh token; a 503 with a short Retry-After one retry after it;
    a 403 insufficient_scope is returned as is (retrying cannot fix it, BCP-N-02)."""

    def __init__(self, manager, http):
        self.manager = manager
        self.http = http

    async def request(self, method, url, *, headers=None, **kw):
        retriable = not (kw.get("body") is not None and not isinstance(kw["body"], (bytes, bytearray)))
        token = await self.manager.token()
        resp = await self._send(method, url, headers, token, kw)
        kind = challenge.resource_error(resp.status, resp.header("www-authenticate"))
        if kind == "retry" and retriable:
            log.info("%s %s: 401, retrying once with a new token", method, url)
            token = await self.manager.invalidate(token)
            resp = await self._send(method, url, headers, token, kw)
        elif kind == "later" and retriable:
            wait = challenge.parse_retry_after(resp.header("retry-after"), time.time())
            if wait is not None and wait <= MAX_RETRY_AFTER_WAIT:
                await asyncio.sleep(wait)
                resp = await self._send(method, url, headers, await self.manager.token(), kw)
        elif kind == "scope":
            log.warning("%s %s: 403 insufficient_scope (not retried)", method, url)
        return resp

    async def _send(self, method, url, headers, token, kw):
        h = [(n, v) for n, v in (headers.items() if isinstance(headers, dict) else headers or [])
             if n.lower() != "authorization"]
        return await self.http.request(method, url, headers=h + [("authorization", "Bearer " + token)], **kw)

    async def get(self, url, **kw):
        return await self.request("GET", url, **kw)

    async def post_json(self, url, obj, **kw):
        return await self.request("POST", url, json=obj, **kw)
