"""Prometheus metrics for `protect` and `as serve`, on their own optional listener (issue 14).

A small stdlib writer of the Prometheus text format 0.0.4 (counters, gauges, histograms, label
escaping, `_total` / `_seconds` names as prometheus_client writes them), a label-set cap per
metric (attacker-chosen strings never grow memory: extra sets fold into "other"), the /metrics
listener (plain HTTP, meant for loopback or a management network, never the public port), and
the wiring: the guard's decisions through its audit callback, the validator's cache, the key
store, upstream latency, connections; for the AS, tokens, registrations and refusals.
"""

import math
import time

from ..errors import CAUSES

MAX_SERIES = 64  # label sets per metric; more fold into "other"
# Label values come from closed sets only (issue 23): anything else is counted as "other", so no
# client can grow, blind or forge a series. errors.CAUSES names the guard's decision causes.
STATUSES = frozenset(("200", "400", "401", "403", "404", "405", "408", "413", "429", "500", "502", "503", "504"))
REJECT_CAUSES = frozenset(("bad_request", "handshake_timeout", "head_timeout", "body_timeout", "over_address_cap",
                           "over_capacity", "dropped_over_capacity", "evicted", "client_cert_failed"))
UPSTREAM_OUTCOMES = frozenset(("answered", "bad_gateway", "timeout"))
GRANT_TYPES = frozenset(("authorization_code", "client_credentials", "refresh_token", "missing"))
TOKEN_ALGS = frozenset(("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"))
OAUTH_ERRORS = frozenset((  # RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 7591 §3.2.2, RFC 6750 §3.1
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
    "invalid_scope", "unsupported_token_type", "invalid_redirect_uri", "invalid_client_metadata",
    "invalid_software_statement", "unapproved_software_statement", "invalid_token", "insufficient_scope",
    "server_error", "temporarily_unavailable", "unknown", "refused"))


DECISION_CAUSES = frozenset(CAUSES)


def closed(value, allowed):
    """`value` as a label if it is one of `allowed`, else "other"."""
    value = str(value)
    return value if value in allowed else "other"
MAX_LABEL_LEN = 64
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def _labels(names, values, extra=()):
    pairs = list(zip(names, values)) + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join('%s="%s"' % (n, _escape(str(v))) for n, v in pairs) + "}"


class _Metric:
    kind = None

    def __init__(self, name, help_text, labels=()):
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labels)
        self._series = {}

    def _key(self, values):
        if len(values) != len(self.labelnames):
            raise ValueError("%s wants labels %s" % (self.name, ",".join(self.labelnames)))
        key = tuple(str(v)[:MAX_LABEL_LEN] for v in values)
        if key not in self._series and len(self._series) >= MAX_SERIES:
            key = ("other",) * len(key)
        return key

    def header(self, family):
        return ["# HELP %s %s" % (family, _escape(self.help)), "# TYPE %s %s" % (family, self.kind)]


class Counter(_Metric):
    """`name` without `_total` (added in the exposition, as prometheus_client does)."""

    kind = "counter"

    def inc(self, *labels, amount=1):
        k = self._key(labels)
        self._series[k] = self._series.get(k, 0) + amount

    def value(self, *labels):
        return self._series.get(tuple(str(v) for v in labels), 0)

    def render(self):
        out = self.header(self.name + "_total")
        for k, v in sorted(self._series.items()):
            out.append("%s_total%s %s" % (self.name, _labels(self.labelnames, k), _num(v)))
        return out


class Gauge(_Metric):
    """Set directly, or from `collect() -> {label tuple: value}` at scrape time."""

    kind = "gauge"

    def __init__(self, name, help_text, labels=(), collect=None):
        super().__init__(name, help_text, labels)
        self.collect = collect

    def set(self, *labels, value):
        self._series[self._key(labels)] = value

    def render(self):
        series = self._series
        if self.collect is not None:
            series = {}
            for k, v in list(self.collect().items())[:MAX_SERIES]:
                series[tuple(str(x)[:MAX_LABEL_LEN] for x in k)] = v
        out = self.header(self.name)
        for k, v in sorted(series.items()):
            out.append("%s%s %s" % (self.name, _labels(self.labelnames, k), _num(v)))
        return out


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name, help_text, labels=(), buckets=LATENCY_BUCKETS):
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))

    def observe(self, *labels, value):
        k = self._key(labels)
        s = self._series.get(k)
        if s is None:
            s = self._series[k] = [[0] * len(self.buckets), 0, 0.0]
        for i, b in enumerate(self.buckets):
            if value <= b:
                s[0][i] += 1
        s[1] += 1
        s[2] += value

    def render(self):
        out = self.header(self.name)
        for k, (counts, n, total) in sorted(self._series.items()):
            for b, c in zip(self.buckets, counts):
                out.append("%s_bucket%s %s" % (self.name, _labels(self.labelnames, k, [("le", _num(float(b)))]), c))
            out.append("%s_bucket%s %s" % (self.name, _labels(self.labelnames, k, [("le", "+Inf")]), n))
            out.append("%s_count%s %s" % (self.name, _labels(self.labelnames, k), n))
            out.append("%s_sum%s %s" % (self.name, _labels(self.labelnames, k), _num(total)))
        return out


class Registry:
    def __init__(self):
        self.metrics = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def counter(self, *a, **kw):
        return self.add(Counter(*a, **kw))

    def gauge(self, *a, **kw):
        return self.add(Gauge(*a, **kw))

    def histogram(self, *a, **kw):
        return self.add(Histogram(*a, **kw))

    def render(self):
        lines = []
        for m in self.metrics:
            lines.extend(m.render())
        return ("\n".join(lines) + "\n").encode("utf-8")


# --- the listener ---------------------------------------------------------------------------------
async def start_listener(registry, listen):
    """Serve GET /metrics on `listen` ("HOST:PORT"): its own HTTPServer, plain HTTP (scrapers on a
    management network or loopback). Returns the started server."""
    from .address import parse_listen
    from ..errors import ConfigError
    from .server import HTTPServer
    from .web import Response, error_response

    host, port = parse_listen(listen)

    def handle(request):
        if request.path != "/metrics" or request.method not in ("GET", "HEAD"):
            return error_response(404, "not found")
        return Response(200, registry.render(), [("content-type", CONTENT_TYPE), ("cache-control", "no-store")])

    server = HTTPServer(handle, max_connections=8, max_body=0)
    try:
        await server.start(host, port)
    except OSError as e:
        raise ConfigError("cannot listen for metrics on %s: %s" % (listen, e.strerror or e))
    return server


_WOULD_DENY_STATUS = {400: "400", 401: "401", 403: "403", 503: "503"}


# --- protect --------------------------------------------------------------------------------------------
class ProxyMetrics:
    """What `protect --metrics` exposes. Hooks: `audit(next)` wraps the guard's audit callback,
    `validator(v)` wraps the validator, `handler(proxy)` wraps the server handler, `rejected(cause)`
    is the server's on_reject, `watch(server, store)` adds scrape-time gauges."""

    def __init__(self, profile="is-10"):
        r = self.registry = Registry()
        self.decisions = r.counter("nmosauth_decisions", "Requests decided by the guard, by HTTP status and reason",
                                   ("status", "reason"))
        self.would_deny = r.counter("nmosauth_would_deny", "Refusals observe mode forwarded (protect --enforce), "
                                    "by the HTTP status enforcing would have answered", ("status",))
        self.cache = r.counter("nmosauth_token_cache_lookups", "Token cache lookups by result (hit or miss)",
                               ("result",))
        self.upstream = r.histogram("nmosauth_upstream_response_seconds",
                                    "Time from forwarding to the upstream's response head", ("outcome",))
        self.rejects = r.counter("nmosauth_rejected_connections", "Connections refused before a handler ran, by cause",
                                 ("cause",))
        self._server = None
        self._store = None
        r.gauge("nmosauth_open_connections", "Client connections open now", collect=self._connections)
        r.counter("nmosauth_key_fetches", "Metadata/JWKS exchanges started by the key store")
        r.metrics[-1].render = self._render_fetches
        r.gauge("nmosauth_key_age_seconds", "Age of each trusted issuer's key set", ("issuer",), collect=self._ages)
        r.gauge("nmosauth_key_fetch_failures", "Consecutive failed key fetches per issuer (0: last one worked)",
                ("issuer",), collect=self._failures)
        r.gauge("nmosauth_keys", "Keys held per issuer", ("issuer",), collect=self._key_counts)
        self.ipmx_status = None
        if profile == "ipmx":
            # TR-10-SEC SEC-49: 64-bit monotonic status counters a-i, one series per name of the
            # closed set ipmx.STATUS_COUNTERS (anything else would be "other"; nothing else is set).
            from ..ipmx import STATUS_COUNTERS

            self._status_names = frozenset(STATUS_COUNTERS)
            self.ipmx_status = r.counter("nmosauth_ipmx_status", "IPMX (TR-10-SEC SEC-49) status counters",
                                         ("counter",))
            for name in STATUS_COUNTERS:
                self.ipmx_status.inc(name, amount=0)  # every counter exists from boot, at 0
            plain = self.ipmx_status.render

            def render():
                n = self._store.fetch_failures if self._store is not None else 0
                self.ipmx_status._series[("key_fetch_failed",)] = n  # SEC-49 g, from the key store
                return plain()
            self.ipmx_status.render = render

    def audit(self, then=None):
        def record(rec):
            self.decisions.inc(closed(rec["status"], STATUSES), closed(rec.get("cause"), DECISION_CAUSES))
            if rec.get("outcome") == "would_deny":
                self.would_deny.inc(_WOULD_DENY_STATUS.get(rec["status"], "other"))
            sc = rec.get("status_counter")
            if sc is not None and self.ipmx_status is not None:
                self.ipmx_status.inc(sc if sc in self._status_names else "other")
            if then is not None:
                then(rec)
        return record

    def validator(self, v):
        return _MeteredValidator(v, self.cache)

    def handler(self, proxy):
        hist = self.upstream

        async def timed(result):
            t0 = time.monotonic()
            resp = await result
            hist.observe(closed({502: "bad_gateway", 504: "timeout"}.get(resp.status, "answered"), UPSTREAM_OUTCOMES),
                         value=time.monotonic() - t0)
            return resp

        def handle(request):
            result = proxy(request)
            return result if not hasattr(result, "__await__") else timed(result)
        return handle

    def rejected(self, cause):
        self.rejects.inc(closed(cause, REJECT_CAUSES))
        if cause == "client_cert_failed" and self.ipmx_status is not None:
            self.ipmx_status.inc("client_cert_failed")  # SEC-49 f

    def watch(self, server, store=None):
        self._server = server
        self._store = store

    # scrape-time values
    def _connections(self):
        return {(): self._server.connection_count if self._server is not None else 0}

    def _status(self):
        return self._store.status() if self._store is not None else []

    def _ages(self):
        return dict(((s["issuer"],), s["age"]) for s in self._status() if s["age"] is not None)

    def _failures(self):
        return dict(((s["issuer"],), s["failures"]) for s in self._status())

    def _key_counts(self):
        return dict(((s["issuer"],), len(s["kids"])) for s in self._status())

    def _render_fetches(self):
        n = self._store.fetch_count if self._store is not None else 0
        return ["# HELP nmosauth_key_fetches_total Metadata/JWKS exchanges started by the key store",
                "# TYPE nmosauth_key_fetches_total counter", "nmosauth_key_fetches_total %d" % n]


class _MeteredValidator:
    """Counts cache hits around TokenValidator.check; everything else is the validator's own."""

    def __init__(self, v, counter):
        self._v = v
        self._counter = counter

    def __getattr__(self, name):
        return getattr(self._v, name)

    def check(self, token, method="GET", path="/", now=None, *client_cert):
        if token and method != "OPTIONS":
            v = self._v
            # the validator's two cache generations (validator.py _put): read only, never changed here
            hit = token in getattr(v, "_new", ()) or token in getattr(v, "_old", ())
            self._counter.inc("hit" if hit else "miss")
        return self._v.check(token, method, path, now, *client_cert)  # client_cert: ipmx only (SEC-44)


# --- the authorization server ---------------------------------------------------------------------------
class ASMetrics:
    """What `as serve --metrics` exposes; `instrument(app)` wraps the token and registration endpoints."""

    def __init__(self):
        r = self.registry = Registry()
        self.issued = r.counter("nmosauth_as_tokens_issued", "Access tokens issued, by grant type and alg",
                                ("grant_type", "alg"))
        self.refused = r.counter("nmosauth_as_token_refusals", "Token requests refused, by RFC 6749 error code",
                                 ("error",))
        self.registrations = r.counter("nmosauth_as_registrations", "Client registrations, by outcome (RFC 7591)",
                                       ("outcome",))

    def instrument(self, app):
        oauth_token = app.oauth.token
        register = app.registrar.register

        async def token(form, *args, **kw):
            status, body, headers = await oauth_token(form, *args, **kw)
            self.on_token(form, status, body)
            return status, body, headers

        def registered(*args, **kw):
            status, out, headers = register(*args, **kw)
            self.registrations.inc("registered" if status in (200, 201) else
                                   closed((out or {}).get("error", "refused"), OAUTH_ERRORS))
            return status, out, headers

        app.oauth.token = token
        app.registrar.register = registered
        return app

    def on_token(self, form, status, body):
        grant = form.get("grant_type") if isinstance(form, dict) else None
        grant = closed(grant, GRANT_TYPES) if isinstance(grant, str) else "missing"
        if status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
            self.issued.inc(grant, closed(_alg_of(body["access_token"]), TOKEN_ALGS))
        else:
            err = body.get("error") if isinstance(body, dict) else None
            self.refused.inc(closed(err, OAUTH_ERRORS) if isinstance(err, str) else "unknown")


def _alg_of(token):
    from .. import b64url, jsonshim

    try:
        return jsonshim.loads(b64url.decode(token.split(".", 1)[0])).get("alg", "unknown")
    except (ValueError, AttributeError):
        return "unknown"


async def start_for_as(running, listen):
    """`as serve --metrics`: instrument the running app, start the listener; returns the server."""
    from .address import parse_listen
    from ..errors import ConfigError

    if parse_listen(listen)[1] == running.port:
        raise ConfigError("--metrics needs its own port, never the public one")
    m = ASMetrics()
    m.instrument(running.app)
    return await start_listener(m.registry, listen)
