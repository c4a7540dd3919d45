"""The forward proxy behind `nmosauth-lite attach` (issue 19 §1): a Node's outgoing IS-04 calls, with tokens.

The Node talks plain HTTP to us on loopback or a Unix socket; each request is admitted by
aio/attach_rules.py (its Registry only, Registration API paths and methods only), its body
read whole (bounded: it may be sent twice), and sent over verified TLS (BCP-003-01) to the
Registry, configured or found by DNS-SD (`_nmos-register._tcp`: lowest pri first, random among
equals, the one that answered kept; connection errors, time-outs and 5xx fail over to the next,
IS-04), with our token for the `registration` scope from the TokenManager and never the
Node's own. A 401 gets one fresh token and one retry (IS-10 CL-41, BCP-003-02 BCP-N-01); a 503
with Retry-After goes back to the Node as it came and holds that Registry until then, answered
locally meanwhile (BCP-N-05: no hammering). Without a manager (the IPMX profile, TR-10-SEC
SEC-04/SEC-75) no token is asked for or sent: the Registry authenticates attach by TLS alone
(RAP 2: our client certificate in the SSL context), and a TLS failure is named (tls_cause).
Leaves out WebSocket upgrades and streaming.
"""

import asyncio
import logging
import ssl
import time
import urllib.parse

from .. import challenge
from ..errors import ConfigError, NmosAuthError
from ..guard import strip_access_token
from ..http11 import HeaderError
from ..logfield import escape
from ..registry_advert import Registry
from .attach_rules import REGISTRATION, SHORT_RETRY_AFTER, admit, hold_seconds, outbound_headers
from .boundary import response_headers
from .client import ClientConnectError, ClientError, ClientTimeoutError, HTTPClient, _StaleConnection
from .oauth.manager import TokenUnavailableError
from .web import Response, error_response

log = logging.getLogger("nmosauth_lite.attach")

DEFAULT_MAX_BODY = 1024 * 1024  # IS-04 resources are a few KiB; a whole Node is well under this
DEFAULT_MAX_RESPONSE = 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 10.0  # IS-04 heartbeats are every 5 s: a Registry slower than this is failed over
DEFAULT_TOKEN_WAIT = 10.0  # a request waits this long for a token, then 503 + Retry-After
TOKEN_RETRY_AFTER = 5  # what the Node is told to wait when we have no token (one heartbeat)
NO_REGISTRY_RETRY_AFTER = 5
FAILED_HOLD = 60.0  # a Registry that failed goes to the back of the list this long (IS-04)
MAX_TRIES = 3  # Registries tried for one request
MAX_LOG_TARGET = 200
MAX_CAUSE_DEPTH = 5  # exception links followed looking for the TLS error under a ClientError
# OpenSSL alert reasons a server sends when it does not accept our client certificate (RFC 8446
# §6.2: certificate_required, bad_certificate, unknown_ca, access_denied...; RFC 5246 §7.2.2)
CLIENT_CERT_ALERTS = ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                      "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_ACCESS_DENIED",
                      "SSLV3_ALERT_CERTIFICATE_REVOKED", "SSLV3_ALERT_CERTIFICATE_EXPIRED",
                      "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "SSLV3_ALERT_HANDSHAKE_FAILURE")


def tls_cause(exc, rap=None):
    """What went wrong in TLS under a client error, in words for logs and the Node's 502, or None
    when `exc` holds no TLS error. Follows __cause__/__context__ (the client wraps OSErrors).
    `rap`: the IPMX Registry Access Policy (1, 2) or None (is-10). Under IPMX a Registry that
    closes or resets the connection after the handshake, without a TLS alert we could read
    (asyncio's own TLS server sends none, ours does; a reset can overtake one), is named as the
    likely cause: our client certificate refused (RAP 2), or one required and none presented (RAP 1)."""
    closed = False
    connected = not isinstance(exc, ClientConnectError)  # a refused connect is no verdict on our certificate
    seen = 0
    while exc is not None and seen < MAX_CAUSE_DEPTH:
        if isinstance(exc, ssl.SSLCertVerificationError):  # BCP-003-01: the chain or the name failed
            return "the Registry's certificate failed verification (%s)" % (exc.verify_message or exc.reason)
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or ""
            if reason in CLIENT_CERT_ALERTS:  # TR-10-SEC SEC-79, SEC-99: the Registry refused us
                return "the Registry refused attach's TLS client certificate (%s)" % reason
            return "TLS with the Registry failed (%s)" % (reason or type(exc).__name__)
        closed = closed or isinstance(exc, (ConnectionResetError, BrokenPipeError, _StaleConnection))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    if closed and connected and rap == 2:  # TLS 1.3: our certificate is checked after our handshake ends
        return "the Registry closed the TLS connection without answering: it may not accept attach's client " \
               "certificate (RAP 2, SEC-79)"
    if closed and connected and rap == 1:
        return "the Registry closed the TLS connection without answering: it may require a client certificate " \
               "(RAP 2, SEC-79) where attach is set to RAP 1 (SEC-77: one policy for all)"
    return None


def parse_registry_url(url, index=0):
    """A configured Registry as a Registry object: https://host[:port], nothing after."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme != "https":  # BCP-003-01; tokens never cross plain HTTP (IS-10 GEN-01)
        raise ConfigError("registry must be an https:// URL: %r" % url[:80])
    try:
        port = parts.port or 443
    except ValueError:
        raise ConfigError("bad port in registry URL %r" % url[:80])
    if not parts.hostname or parts.username or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ConfigError("registry URL takes scheme, host and port only (the Node sends the paths): %r" % url[:80])
    host = parts.hostname.rstrip(".").lower()
    return Registry(url, host, port, [], "https", [], index)


class Registries:
    """Where attach forwards: configured Registries in the order given, or a DiscoveryCache of
    `_nmos-register._tcp` adverts (registry_advert.RegistryDiscovery). The Registry that last
    answered stays first while it works (IS-04: a Node stays with its Registry); one that failed
    waits at the back; a 503's Retry-After holds one."""

    def __init__(self, urls=(), discovery=None, *, failed_hold=FAILED_HOLD, clock=time.monotonic):
        if not urls and discovery is None:
            raise ConfigError("give a registry URL or DNS-SD discovery")
        self.static = [parse_registry_url(u, i) for i, u in enumerate(urls)]
        self.discovery = discovery
        self.failed_hold = failed_hold
        self.clock = clock
        self._failed = {}  # key -> until
        self._held = {}  # key -> (until, seconds)
        self._current = None
        self._known = list(self.static)

    async def candidates(self, version=None):
        """The Registries to try for a request to API `version`, in order."""
        found = list(self.static)
        if self.discovery is not None:
            try:
                found += await self.discovery.get()
            except (NmosAuthError, OSError) as e:
                log.warning("Registry discovery (DNS-SD) failed: %s", escape(e))
        self._known = found
        now = self.clock()
        usable = [r for r in found if r.offers(version)]
        good = [r for r in usable if self._failed.get(r.key(), 0) <= now]
        order = good + [r for r in usable if self._failed.get(r.key(), 0) > now]
        for i, r in enumerate(order):
            if r.key() == self._current and i and r in good:
                order.insert(0, order.pop(i))
                break
        return order

    def hosts(self):
        """Host names of every Registry known: what an absolute-form target may name."""
        return set(r.host for r in self._known)

    def mark_failed(self, reg):
        self._failed[reg.key()] = self.clock() + self.failed_hold
        if self._current == reg.key():
            self._current = None
        if self.discovery is not None and reg not in self.static:
            self.discovery.mark_failed(reg)

    def mark_good(self, reg):
        self._failed.pop(reg.key(), None)
        self._current = reg.key()

    def hold(self, reg, seconds):
        self._held[reg.key()] = (self.clock() + seconds, seconds)

    def held(self, reg):
        """(seconds left, seconds asked) of a Registry's Retry-After hold, or None."""
        entry = self._held.get(reg.key())
        if entry is None:
            return None
        left = entry[0] - self.clock()
        if left <= 0:
            del self._held[reg.key()]
            return None
        return left, entry[1]


class _Failed(Exception):
    """One Registry did not answer usably; `status` is what the Node gets when none does."""

    def __init__(self, status, message, response=None, cause=None):
        super().__init__(message if cause is None else "%s: %s" % (cause, message))
        self.status = status
        self.response = response
        self.cause = cause


class AttachProxy:
    """An HTTPServer handler: `HTTPServer(AttachProxy(registries, manager), ...)`.

    manager: a TokenManager for the scopes of `apis` (IS-10 CL-40), or None: TLS-only
    registration, no token asked for or sent (IPMX, TR-10-SEC SEC-04, SEC-75). own_hosts: names an
    absolute-form target may use for attach itself. metrics: an AttachMetrics or None.
    rap: the IPMX Registry Access Policy (1, 2; None under is-10), for tls_cause."""

    def __init__(self, registries, manager, *, apis=(REGISTRATION,), ca_file=None, ssl_context=None, own_hosts=(),
                 max_body=DEFAULT_MAX_BODY, max_response=DEFAULT_MAX_RESPONSE,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT, timeout=DEFAULT_TIMEOUT, token_wait=DEFAULT_TOKEN_WAIT,
                 max_tries=MAX_TRIES, metrics=None, http=None, rap=None):
        self.registries = registries
        self.manager = manager
        self.apis = tuple(apis)
        self.own_hosts = set(h.lower().rstrip(".") for h in own_hosts)
        self.max_body = max_body
        self.token_wait = token_wait
        self.max_tries = max_tries
        self.metrics = metrics
        self.rap = rap
        self.http = http or HTTPClient(ca_file=ca_file, ssl_context=ssl_context, connect_timeout=connect_timeout,
                                       read_timeout=timeout, max_response=max_response)

    async def close(self):
        await self.http.close()

    def _count(self, outcome):
        if self.metrics is not None:
            self.metrics.outcome(outcome)

    def refuse(self, status, message, headers=(), outcome="refused"):
        self._count(outcome)
        return error_response(status, message, list(headers))

    async def __call__(self, request):
        target = request.target
        if target[:1] != "/" and self.registries.discovery is not None:
            await self.registries.candidates()  # the names an absolute-form target may use
        verdict = admit(request.method, target, self.registries.hosts() | self.own_hosts, self.apis)
        if verdict.status:
            log.info("refused %s %s: %d %s", request.method, escape(strip_access_token(target)[:MAX_LOG_TARGET]),
                     verdict.status, verdict.message)
            extra = [("allow", verdict.allow)] if verdict.allow else []
            return self.refuse(verdict.status, verdict.message, extra + [("connection", "close")]
                               if request.has_body else extra)
        try:
            body = await request.read(self.max_body) if request.has_body else None
        except NmosAuthError as e:  # http11.HTTPError: 413 past max_body, 408 too slow
            status = getattr(e, "status_hint", 400)
            return self.refuse(status, "Payload Too Large" if status == 413 else "Bad Request: body not read",
                               [("connection", "close")], "too_large" if status == 413 else "refused")
        return await self._forward(request, verdict, body)

    async def _token(self):
        try:
            return await asyncio.wait_for(self.manager.token(), self.token_wait)
        except (TokenUnavailableError, asyncio.TimeoutError) as e:
            log.warning("no access token for the Registry: %s", escape(getattr(e, "message", None) or "timed out"))
            return None

    async def _forward(self, request, verdict, body):
        method = request.method
        what = "%s %s" % (method, escape(verdict.target[:MAX_LOG_TARGET]))
        token = None  # stays None under IPMX: TLS only (SEC-75)
        if self.manager is not None:
            token = await self._token()
            if token is None:
                return self.refuse(503, "Service Unavailable: no access token from the authorization server",
                                   [("retry-after", str(TOKEN_RETRY_AFTER))], "no_token")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in outbound_headers(request.headers)]
        failure = None
        held_left = None
        tried = 0
        for reg in await self.registries.candidates(verdict.version):
            held = self.registries.held(reg)
            if held is not None:
                left, asked = held
                if asked <= SHORT_RETRY_AFTER:  # BCP-N-05: a short wait is for this Registry, answered here
                    return self._held_answer(left)
                held_left = left if held_left is None else min(held_left, left)
                continue  # a long one: the next Registry (IS-04 failover)
            if tried >= self.max_tries:
                break
            tried += 1
            if tried > 1 and self.metrics is not None:
                self.metrics.failover()
            try:
                resp, token = await self._exchange(reg, method, verdict.target, headers, body, token)
            except _Failed as f:
                log.warning("Registry %s failed for %s: %s", reg.base, what, f)
                self.registries.mark_failed(reg)
                failure = f
                continue
            if resp.status == 503:
                wait = hold_seconds(challenge.parse_retry_after(resp.header("retry-after"), time.time()))
                if wait is not None:  # BCP-N-05: the Node hears it as it came; we leave the Registry alone
                    self.registries.hold(reg, wait)
                    log.warning("Registry %s answered 503 for %s: held %d s (Retry-After)", reg.base, what, wait)
                    self._count("retry_later")
                    return self._answer(resp)
            if resp.status >= 500:  # IS-04: any other 5xx -> the next Registry
                log.warning("Registry %s answered %d for %s", reg.base, resp.status, what)
                self.registries.mark_failed(reg)
                failure = _Failed(resp.status, "HTTP %d" % resp.status, resp)
                continue
            self.registries.mark_good(reg)
            if not (verdict.heartbeat and resp.status == 200):  # heartbeats every 5 s: only the unusual ones
                log.info("%s -> %s: %d", what, reg.base, resp.status)
            self._count(_status_class(resp.status))
            return self._answer(resp)
        if failure is None and held_left is not None:
            return self._held_answer(held_left)
        if failure is None:
            log.warning("no Registry to forward %s to", what)
            return self.refuse(503, "Service Unavailable: no Registry found",
                               [("retry-after", str(NO_REGISTRY_RETRY_AFTER))], "no_registry")
        if failure.response is not None:
            self._count(_status_class(failure.response.status))
            return self._answer(failure.response)
        if failure.status == 504:
            return self.refuse(504, "Gateway Timeout: the Registry did not answer in time", (), "timeout")
        if failure.cause is not None and self.manager is None:  # IPMX: say why TLS failed (SEC-99)
            return self.refuse(502, "Bad Gateway: " + failure.cause, (), "unreachable")
        return self.refuse(502, "Bad Gateway: no Registry reachable", (), "unreachable")

    async def _exchange(self, reg, method, target, headers, body, token):
        """Send once with `token`; after a 401, once more with a fresh one. (response, token used)."""
        resp = await self._send(reg, method, target, headers, body, token)
        if resp.status == 401 and self.manager is None:  # TLS only: there is no token to renew
            log.warning("Registry %s answered 401 with no token sent: it asks for OAuth, which IPMX registration "
                        "does not use (TR-10-SEC SEC-75); check its access policy", reg.base)
            return resp, token
        if resp.status == 401:  # IS-10 CL-41: one new token, one retry (never a loop, BCP-N-01)
            log.info("Registry %s answered 401: retrying once with a new token", reg.base)
            if self.metrics is not None:
                self.metrics.token_retry()
            try:
                token = await asyncio.wait_for(self.manager.invalidate(token), self.token_wait)
            except (TokenUnavailableError, asyncio.TimeoutError):
                return resp, token
            resp = await self._send(reg, method, target, headers, body, token)
        return resp, token

    async def _send(self, reg, method, target, headers, body, token):
        t0 = time.monotonic()
        outcome = "failed"
        auth = [("authorization", "Bearer " + token)] if token is not None else []  # none under IPMX (SEC-75)
        kw = dict(body=body, headers=headers + auth,
                  connect_host=reg.addresses[0] if reg.addresses else None)
        try:
            try:
                resp = await self.http.request(method, reg.base + target, **kw)
            except ClientError as e:
                if type(e) is not ClientError:  # no connection, time-out, too large: that Registry's fault
                    raise
                # A kept-alive connection the Registry had closed before answering: the client retries
                # only idempotent methods; IS-04's POSTs are idempotent too (a resource registered
                # again is updated), so once more on a fresh connection before failing over.
                resp = await self.http.request(method, reg.base + target, **kw)
            outcome = "answered"
            return resp
        except ClientTimeoutError as e:
            raise _Failed(504, e.message)
        except (ClientError, HeaderError) as e:  # no connection, bad TLS, an answer too large or malformed
            raise _Failed(502, e.message, cause=tls_cause(e, self.rap))
        finally:
            if self.metrics is not None:
                self.metrics.registry_time(outcome, time.monotonic() - t0)

    def _answer(self, resp):
        return Response(resp.status, resp.body, response_headers(resp.headers, ()))

    def _held_answer(self, left):
        seconds = max(1, int(left + 0.999))
        return self.refuse(503, "Service Unavailable: the Registry asked to retry later",
                           [("retry-after", str(seconds))], "retry_later")


def _status_class(status):
    return "%dxx" % (status // 100) if 200 <= status < 600 else "other"
