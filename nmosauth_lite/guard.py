"""The resource-server guard: a request's method, target and headers in, an HTTP answer out.

Owns the one mapping from a validator Decision to HTTP (ARCHITECTURE.md "Errors
on the wire"): 401/403/400/503 with `WWW-Authenticate` as the AMWA tooling parses
it (IS-10 RS-22..RS-27), NMOS error JSON bodies, CORS on every answer and CORS
pre-flight answered here without a token, allowing `Authorization` (GEN-04,
GEN-05, RS-29); token extraction from `Authorization: Bearer` or, on WebSocket
upgrade requests only, the `access_token` query parameter (RS-37..RS-40); and
one audit record per decision that names the token by a short hash, never by
value (RS-41); and when an open WebSocket's token runs out (`ws_expiry`, IS-10 §12 C3
leaves it open). Observe mode (`enforce`): refusals audited, then let through. Sans-I/O:
the proxy, ASGI, WSGI and aiohttp adapters drive it.
"""

import binascii
import hashlib

from .errors import ConfigError, NmosAuthError
from .jsonshim import dumps
from .permissions import KNOWN_APIS, UNAUTHORISED_APIS, normalize_path

DEFAULT_ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
DEFAULT_ALLOW_HEADERS = "Authorization, Content-Type, Accept"
EXPOSE_HEADERS = "WWW-Authenticate, Retry-After"
PREFLIGHT_MAX_AGE = "600"
# What happens to an open WebSocket when its token expires (IS-10 RS-40 / §12 C3 leave it
# open): "close" (code 1008 at exp + leeway + ws_grace) or "keep" (the socket outlives it).
WS_EXPIRY = ("close", "keep")
DEFAULT_WS_EXPIRY = "close"
DEFAULT_WS_GRACE = 5.0  # seconds past exp + leeway to open a new socket with a fresh token
MAX_WS_GRACE = 300.0
WS_EXPIRED_CODE = 1008  # RFC 6455 §7.4.1 policy violation: what a refused handshake gets too
WS_EXPIRED_REASON = "token expired"
MAX_TOKEN_HASH_CACHE = 1024
MAX_ALLOWED_VERDICTS = 1024  # Verdicts of allowed Decisions reused (cached tokens x paths)
MAX_ENFORCE_APIS = 32
# /x-nmos/<api> names: an `enforce` list names only these.
NMOS_APIS = KNOWN_APIS + UNAUTHORISED_APIS + ("annotation", "auth")
# The request fields Guard.check reads (token, WebSocket upgrade, CORS pre-flight).
FIELDS = ("authorization", "upgrade", "connection", "origin", "access-control-request-method",
          "access-control-request-headers")
UPGRADE = "GET websocket"  # ipmx.UPGRADE: how a WebSocket upgrade is passed to an IPMX validator
_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable", 200: "OK"}


class Answer:
    """An HTTP response the guard gives instead of forwarding: status, [(name, value)], body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class Verdict:
    """What the guard decided for one request. Treat as read-only: allowed ones are shared.

    `answer` is None when the request may proceed (forward it, with `path` as the
    canonical target if the adapter routes itself); `decision` is the validator's.
    """

    would_deny = False  # observe mode: refused when enforcing, let through (answer None)

    def __init__(self, decision, answer, token_hash=None):
        self.decision = decision
        self.answer = answer
        self.token_hash = token_hash


def parse_enforce(value):
    """"on"/None/True -> None (all enforced); "off"/False -> () (observe mode); "node,connection"
    or a list -> those API names enforced. ValueError otherwise: a typo never weakens it."""
    if value is None or value is True or value == "on":
        return None
    if value is False or value == "off":
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ENFORCE_APIS:
        raise ValueError("enforce: on, off or a list of API names")
    names = []
    for n in value:
        n = n.strip().lower() if isinstance(n, str) else n
        if n not in NMOS_APIS:
            raise ValueError("enforce: %r is not an NMOS API name (on, off, or some of %s)"
                             % (n, ",".join(NMOS_APIS)))
        if n not in names:
            names.append(n)
    return tuple(names)


def strip_access_token(target):
    """The target without any access_token query parameter (for logs and upstream)."""
    q = target.find("?")
    if q < 0 or "access_token" not in target:
        return target
    kept = [p for p in target[q + 1 :].split("&") if not (p == "access_token" or p.startswith("access_token="))]
    return target[:q] + ("?" + "&".join(kept) if kept else "")


def query_tokens(target):
    """Values of every access_token parameter in the query (RFC 6750 §2.3), percent-decoded minimally."""
    q = target.find("?")
    if q < 0:
        return []
    out = []
    for p in target[q + 1 :].split("&"):
        if p.startswith("access_token="):
            # base64url JWTs need no decoding; '%2E' style escapes are decoded for robustness
            v = p[13:]
            if "%" in v:
                v = v.replace("%2E", ".").replace("%2e", ".").replace("%2D", "-").replace("%2d", "-").replace("%5F", "_").replace("%5f", "_")
            out.append(v)
    return out


def fold_header(headers, name, value):
    """Add one request field to the dict Guard.check reads: a repeated field is joined with
    ', ' (RFC 9110 §5.3), a repeated Authorization kept as a list (then refused, RFC 6750 §2)."""
    prev = headers.get(name)
    if prev is None:
        headers[name] = value
    elif name == "authorization":
        headers[name] = (prev if isinstance(prev, list) else [prev]) + [value]
    else:
        headers[name] = prev + ", " + value


def is_websocket_upgrade(headers):
    up = headers.get("upgrade")
    conn = headers.get("connection")
    return up is not None and up.lower() == "websocket" and conn is not None and "upgrade" in conn.lower()


class Guard:
    """Decide requests with a TokenValidator and shape the answers.

    audit: None, or a callable taking one dict per decision (the adapter writes it
    out as a JSON line). cors_origin: the Access-Control-Allow-Origin value. ws_expiry,
    ws_grace: what happens to an allowed WebSocket when its token runs out (ws_deadline).
    enforce: see parse_enforce; a refusal of an API not enforced becomes a Verdict with
    `would_deny` set and no answer, audited with outcome "would_deny" (observe mode).
    """

    def __init__(self, validator, audit=None, cors_origin="*", allow_methods=DEFAULT_ALLOW_METHODS,
                 ws_expiry=DEFAULT_WS_EXPIRY, ws_grace=DEFAULT_WS_GRACE, enforce=None):
        if ws_expiry not in WS_EXPIRY:
            raise ConfigError("ws_expiry must be close or keep")
        if not (isinstance(ws_grace, (int, float)) and 0 <= ws_grace <= MAX_WS_GRACE):
            raise ConfigError("ws_grace must be between 0 and 300 seconds")
        self.ws_expiry = ws_expiry
        self.ws_grace = ws_grace
        self.validator = validator
        self.audit = audit
        self.cors_origin = cors_origin
        self.allow_methods = allow_methods
        self.enforce = parse_enforce(enforce)
        self._hashes = {}
        self._bodies = {}
        self._allowed = {}  # allowed Decision -> its Verdict (both read-only; no audit)
        profile = getattr(validator, "profile", None)
        if profile is not None and profile.token_carriage == "header":
            self.check = self._check_header_only  # the token carriage, chosen once (IPMX SEC-11)

    def ws_deadline(self, verdict):
        """UNIX time at which an allowed WebSocket must be closed (code 1008), or None (keep it:
        ws_expiry "keep", or no token was needed). exp + leeway + ws_grace: the grace lets a
        client that watches its token's exp open a new socket with a fresh one first."""
        if self.ws_expiry != "close":
            return None
        c = verdict.decision.claims
        exp = None if c is None else c.get("exp")
        if type(exp) is not int and type(exp) is not float:
            return None
        return exp + getattr(self.validator, "leeway", 0) + self.ws_grace

    def cors_headers(self):
        return [("Access-Control-Allow-Origin", self.cors_origin), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]

    def check(self, method, target, headers, now=None, peer=None, client_cert=None):
        """Decide one request. `headers`: dict of lower-case name -> value (joined with ', ' if repeated;
        a repeated Authorization header must be passed as a list). `peer`: the client's address,
        for the audit record. `client_cert`: the CN and DNS SANs (strings) of the verified TLS
        client certificate, or None without one; only the IPMX profile reads it (SEC-44: the token's
        client_id must be one of them); under IS-10 there is no binding."""
        auth = headers.get("authorization")
        if type(auth) is str and (auth.startswith("Bearer ") or auth[:7].lower() == "bearer ") \
                and "access_token=" not in target:
            token = auth[7:]
            if token and token[0] != " " and method != "OPTIONS":
                # The hot path: one Bearer token in the header (RS-20), decided by the cache.
                d = self.validator.check(token, method, target, now)
                return self._finish(method, target, d, token, now, peer)
        if method == "OPTIONS" and "access-control-request-method" in headers and "origin" in headers:
            return Verdict(self.validator.check(None, "OPTIONS", target, now), self.preflight(headers))
        if isinstance(auth, list):
            d = self.validator.refuse_request("more than one Authorization header", method, target)
            return self._finish(method, target, d, None, now, peer)
        if "access_token=" in target and is_websocket_upgrade(headers):
            qt = query_tokens(target)
            if len(qt) > 1 or (qt and auth is not None):
                # RFC 6750 §2: one method per request (IS-10 RS-40)
                d = self.validator.refuse_request("token sent more than once")
                return self._finish(method, target, d, None, now, peer)
            if qt:
                d = self.validator.check(qt[0], method, target, now)
                return self._finish(method, target, d, qt[0], now, peer)
        token = auth[7:] if auth is not None and auth[:7].lower() == "bearer " else None
        d = self.validator.check_header(auth, method, target, now)
        return self._finish(method, target, d, token, now, peer)

    def _check_header_only(self, method, target, headers, now=None, peer=None, client_cert=None):
        """`check` under a profile that reads the token from the Authorization header only
        (IPMX SEC-11): an access_token query parameter is never read, also on WebSocket
        upgrades, and an upgrade is decided as one (SEC-46: read-write unless a Guest endpoint)."""
        auth = headers.get("authorization")
        if method == "OPTIONS" and "access-control-request-method" in headers and "origin" in headers:
            return Verdict(self.validator.check(None, "OPTIONS", target, now), self.preflight(headers))
        if isinstance(auth, list):
            d = self.validator.refuse_request("more than one Authorization header", method, target)
            return self._finish(method, target, d, None, now, peer)
        as_method = UPGRADE if method == "GET" and is_websocket_upgrade(headers) else method
        token = auth[7:] if auth is not None and auth[:7].lower() == "bearer " else None
        if token and token[0] != " ":
            if client_cert is None:
                d = self.validator.check(token, as_method, target, now)
            else:  # mTLS: the client_id binding (SEC-44)
                d = self.validator.check(token, as_method, target, now, client_cert)
            return self._finish(method, target, d, token, now, peer)
        return self._finish(method, target, self.validator.check_header(auth, as_method, target, now), token, now,
                            peer)

    def preflight(self, headers):
        """CORS pre-flight: no token needed, Authorization allowed (IS-10 GEN-04, GEN-05)."""
        requested = headers.get("access-control-request-headers")
        allow = DEFAULT_ALLOW_HEADERS
        if requested:
            names = [h.strip() for h in requested.split(",") if h.strip()]
            if "authorization" not in [n.lower() for n in names]:
                names.append("Authorization")
            allow = ", ".join(names)
        # 200, not 204: some user agents and proxies treat a 204 pre-flight as failed (and the
        # AMWA testing tool checks for 200); the body stays empty.
        return Answer(200, [
            ("Access-Control-Allow-Origin", self.cors_origin),
            ("Access-Control-Allow-Methods", self.allow_methods),
            ("Access-Control-Allow-Headers", allow),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
            ("Content-Length", "0"),
        ], b"")

    def _hash(self, token):
        h = self._hashes.get(token)
        if h is None:
            if len(self._hashes) >= MAX_TOKEN_HASH_CACHE:
                self._hashes = {}
            # hexlify, not hexdigest(): MicroPython's hashlib objects have digest() only
            h = binascii.hexlify(hashlib.sha256(token.encode("utf-8", "replace")).digest()[:8]).decode()
            self._hashes[token] = h
        return h

    def is_enforced(self, target):
        """True when a refusal for `target` is answered; False when it is only observed."""
        apis = self.enforce
        if apis is None:
            return True
        if not apis:
            return False
        try:
            s = normalize_path(target)
        except NmosAuthError:
            return True  # a path we cannot place is refused (400)
        # Paths of no API (/, /x-nmos, the Node's other paths) stay enforced while any API is.
        return len(s) < 2 or s[0] != "x-nmos" or s[1] in apis

    def _finish(self, method, target, d, token, now, peer=None):
        observed = d.status != 200 and self.enforce is not None and not self.is_enforced(target)
        if self.audit is None:
            if observed:
                return _observed(d, None if not token else self._hash(token))
            if d.status == 200:
                # The steady state: a cached token's cached Decision gets its one Verdict back.
                v = self._allowed.get(d)
                if v is None:
                    if len(self._allowed) >= MAX_ALLOWED_VERDICTS:
                        self._allowed = {}
                    v = self._allowed[d] = Verdict(d, None)
                return v
            return Verdict(d, self.error_answer(d))
        answer = None if d.status == 200 or observed else self.error_answer(d)
        token_hash = None if not token else self._hash(token)
        c = d.claims
        rec = {
            "time": now,
            "method": method,
            "path": strip_access_token(target),
            "status": d.status,
            "reason": d.reason,
            "cause": d.cause,  # errors.CAUSES: a closed set (metrics labels)
            "iss": None if c is None else c.get("iss"),
            "sub": None if c is None else c.get("sub"),
            "client_id": None if c is None else (c.get("client_id") or c.get("azp")),
            "kid": d.kid,
            "jti": None if c is None else c.get("jti"),
            "token": token_hash,
            "outcome": "allow" if d.status == 200 else ("would_deny" if observed else "deny"),
            "peer": peer,
        }
        sc = getattr(d, "status_counter", None)
        if sc is not None:
            rec["status_counter"] = sc  # IPMX SEC-49 (validator_ipmx.py): only that profile sets it
        self.audit(rec)
        if observed:
            return _observed(d, token_hash)
        return Verdict(d, answer, token_hash)

    def error_answer(self, d):
        """The full HTTP answer for a deny Decision (NMOS error JSON; IS-10 RS-27)."""
        key = (d.status, d.reason, d.www_authenticate, d.retry_after)
        cached = self._bodies.get(key)
        if cached is not None:
            return cached
        body = dumps({"code": d.status, "error": _TEXT.get(d.status, "Error") + ": " + d.reason, "debug": None}).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Access-Control-Allow-Origin", self.cors_origin),
            ("Access-Control-Expose-Headers", EXPOSE_HEADERS),
            ("Cache-Control", "no-store"),
        ]
        if d.www_authenticate is not None:
            headers.append(("WWW-Authenticate", d.www_authenticate))
        if d.retry_after is not None:
            headers.append(("Retry-After", str(int(d.retry_after))))
        a = Answer(d.status, headers, body)
        if len(self._bodies) < 256:
            self._bodies[key] = a
        return a


def _observed(d, token_hash):
    v = Verdict(d, None, token_hash)
    v.would_deny = True
    return v
