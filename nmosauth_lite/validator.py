"""The resource server's decision: may this bearer token make this request?

Owns the validation pipeline of ARCHITECTURE.md: OPTIONS and public paths first
(IS-10 GEN-04, RS-30), then the token (cache hit: re-check the time window; miss:
parse, issuer trust, key lookup, signature, claims, compiled permissions), then
audience and path rules. Every outcome is a Decision carrying the HTTP status
and the RFC 6750 `WWW-Authenticate` value; `check` never raises for anything a
client sent. Keys come from a key store (`StaticKeys` for a fixed JWKS; the
persisted, refreshing store plugs in through the same two methods).
"""

from . import claims as _claims
from . import jws as _jws
from .errors import (
    ConfigError,
    InvalidRequestError,
    KeyFetchPendingError,
    KeyFormatError,
    ScopeError,
    SignatureError,
    TokenError,
    UntrustedIssuerError,
    cause_of,
)
from .jwk import parse_jwks
from .permissions import PUBLIC, Permissions, classify, normalize_path, parse_aliases
from .profile import AUD_INDEX, get_profile

DEFAULT_CACHE_SIZE = 1024  # tokens; a Node sees a handful of clients
MAX_DECISIONS_PER_TOKEN = 64  # (method, path) results remembered per cached token
MAX_REASON_LEN = 80
MAX_PATHS = 512  # classified request paths remembered (a Node serves a handful)
MAX_AUDIENCES = 64  # aud values remembered (tokens of one issuer share theirs)


class Decision:
    """Outcome of one check. Treat as read-only: cached decisions are shared."""

    def __init__(self, status, error=None, reason="", www_authenticate=None, claims=None, retry_after=None, kid=None,
                 cause=None):
        self.status = status
        self.error = error
        self.reason = reason  # text for people; may quote what the token said
        self.cause = cause or ("ok" if status == 200 else "other")  # errors.CAUSES: what metrics count
        self.www_authenticate = www_authenticate
        self.claims = claims
        self.retry_after = retry_after
        self.kid = kid

    @property
    def allowed(self):
        return self.status == 200

    def to_dict(self):
        return {
            "status": self.status,
            "error": self.error,
            "www_authenticate": self.www_authenticate,
            "reason": self.reason,
            "claims": self.claims,
        }

    def __repr__(self):
        return "Decision(%d, %r, %r)" % (self.status, self.error, self.reason)


ALLOW_PUBLIC = Decision(200, reason="no token needed", cause="public")


def _quote_safe(text):
    # RFC 6750 §3 / IS-10 RS-26: keep commas, quotes and backslashes out of auth-param values.
    out = []
    for ch in text[:MAX_REASON_LEN]:
        if ch == "," or ch == '"' or ch == "\\" or ch < " " or ch > "~":
            ch = " " if ch == "," else "'" if ch == '"' else "_"
        out.append(ch)
    return "".join(out)


class StaticKeys:
    """A fixed JWK Set: the key store for `--jwks FILE` and tests.

    With `issuers` None every `iss` is accepted and checked against the same keys
    (the keys themselves are the trust anchor); otherwise `iss` must equal one of
    `issuers` exactly (IS-10 RS-10).
    """

    def __init__(self, jwks, issuers=None, algorithms=_jws.DEFAULT_ALGORITHMS):
        keys, skipped = parse_jwks(jwks, algorithms)
        if not keys:
            raise KeyFormatError("JWKS holds no usable signing key (%d skipped)" % skipped)
        self.keys = keys
        self.skipped = skipped
        self.issuers = None if issuers is None else tuple(issuers)

    def keys_for(self, iss):
        """Keys trusted for `iss`, or None when the issuer is not trusted."""
        if self.issuers is not None and iss not in self.issuers:
            return None
        return self.keys

    def missing_key(self, iss, kid, now):
        """Called when no held key verifies: may raise KeyFetchPendingError (503). Static: nothing to fetch."""
        return None


class _Entry(Permissions):
    """A validated token: its window, key and audience result, and (as Permissions) its
    compiled x-nmos-* claims. One object per admitted token."""

    def __init__(self, key, not_before, not_after, aud_ok, claims, perms, aliases):
        self.claims = claims
        self.perms = perms
        self.aliases = aliases
        self.apis = {}
        self.key = key
        self.not_before = not_before
        self.not_after = not_after
        self.aud_ok = aud_ok
        self.decisions = {}


def _system_clock():
    import time  # lazily: the core takes `now` from its caller (ARCHITECTURE.md)

    return time.time


class TokenValidator:
    """Decide requests against IS-10 access tokens.

    jwks: a JWK Set dict (or pass `keys`, a key store with keys_for/missing_key).
    audience: this resource server's host names (IS-10 RS-15).
    issuers: None, or the exact `iss` values to accept.
    leeway: seconds of clock skew allowed on exp/iat/nbf (RS-19).
    backend: "auto", "cryptography" or "pure" (resolved at first use).
    algorithms: allow-list; jws.IS10_STRICT_ALGORITHMS for the RS512-only profile.
    profile: "is-10" (default) or "ipmx" (profile.py, validator_ipmx.py, docs/ipmx.md): under
    "ipmx" `audience` is not used; oaim (0, 1, 2), instance_id, cert_names, grant_policy,
    guest_paths (read-only WebSocket endpoints) and ncp_scopes (IS-12 scope names) decide.
    claims_location: where the x-nmos-* claims are: "top" (IS-10), "ext" (Ory Hydra's
    default), or "either" (a name in both places: 401; under "ipmx", the default, such a
    name must hold identical values). See claims.nmos_claims and ipmx.private_claims.
    api_aliases: {alias: api}, e.g. {"nc": "ncp"}: claim and scope names an authorization
    server uses for a known API (permissions.parse_aliases); "ipmx" uses ncp_scopes instead.
    """

    def __init__(
        self,
        jwks=None,
        audience=(),
        issuers=None,
        leeway=None,
        backend="auto",
        algorithms=None,
        realm=None,
        keys=None,
        clock=None,
        cache_size=DEFAULT_CACHE_SIZE,
        claims_location=None,
        api_aliases=None,
        profile="is-10",
        oaim=0,
        instance_id=None,
        cert_names=(),
        grant_policy="both",
        guest_paths=(),
        ncp_scopes=("nc", "control"),
    ):
        try:
            self.profile = p = get_profile(profile)
            if algorithms is None:
                algorithms = _jws.DEFAULT_ALGORITHMS if p.permission_model != AUD_INDEX else p.algorithms
            self.algorithms = _jws.check_algorithms(algorithms)
            for a in self.algorithms:
                if a not in p.algorithms:
                    raise ValueError("algorithm %s is not allowed by the %s profile" % (a, p.name))
            if claims_location is None:
                claims_location = p.claims_location
            self.claims_location = _claims.check_claims_location(claims_location)
            self.aliases = parse_aliases(api_aliases)
            if p.permission_model == AUD_INDEX:
                if self.aliases:
                    raise ValueError("api_aliases is an IS-10 setting; the ipmx profile names IS-12 by ncp_scopes")
                self.hosts = [("nmos", False)]
            else:
                self.hosts = _claims.normalize_audience([audience] if isinstance(audience, str) else audience)
        except ValueError as e:
            raise ConfigError(str(e))
        if leeway is None:
            leeway = p.default_tolerance
        if not (isinstance(leeway, (int, float)) and 0 <= leeway <= p.max_tolerance):
            raise ConfigError("leeway must be between 0 and %d seconds" % p.max_tolerance)
        if keys is None:
            if jwks is None:
                raise ConfigError("a JWKS or a key store is required")
            keys = StaticKeys(jwks, issuers, self.algorithms)
        self.keys = keys
        self.issuers = None if issuers is None else tuple(issuers)
        self.leeway = leeway
        self.backend_name = backend
        self._backend = None
        self.realm = _quote_safe(realm if realm is not None else self.hosts[0][0])
        self._clock = clock
        self._half = max(1, cache_size // 2)
        self._new = {}
        self._old = {}
        self._paths = {}  # raw path -> (kind, api, rest), or the InvalidRequestError message
        self._auds = {}  # aud value (str or tuple) -> bool
        self._no_token = Decision(401, None, "no token", 'Bearer realm="%s"' % self.realm, cause="no_token")
        if backend not in ("auto", "cryptography", "pure"):
            raise ConfigError("unknown backend '%s' (choose auto, cryptography or pure)" % str(backend)[:32])
        self.ipmx = None
        if p.permission_model == AUD_INDEX:
            from .validator_ipmx import attach  # the permission model, chosen once per validator

            try:
                attach(self, oaim, instance_id, cert_names, grant_policy, self.claims_location, guest_paths,
                       ncp_scopes, realm)
            except ValueError as e:
                raise ConfigError(str(e))

    # --- public API -------------------------------------------------------------

    @property
    def backend(self):
        if self._backend is None:
            from .crypto import get_backend

            self._backend = get_backend(self.backend_name)
        return self._backend

    def check(self, token, method="GET", path="/", now=None, client_cert=None):
        """Decide one request. `token` is the bare JWT, or None when none was sent.

        `path` None judges the token alone (signature, claims, audience): for
        tools that ask "is this token good for this server" without a request.
        `client_cert`: the verified TLS client certificate's names; IS-10 binds nothing to
        them (the ipmx profile's check does, SEC-44: validator_ipmx.py).
        """
        if method == "OPTIONS":
            return ALLOW_PUBLIC  # GEN-04: pre-flight never needs a token
        if now is None:
            if self._clock is None:
                self._clock = _system_clock()
            now = self._clock()
        if not token:
            return self._decide_without_token(path)
        e = self._new.get(token)
        if e is None:
            e = self._old.get(token)
            if e is not None:
                self._put(token, e)
        if e is None or e.key.withdrawn:
            e = self._admit(token, now)
            if type(e) is Decision:
                return self._public_or(e, path)
        d = e.decisions.get((method, path))
        if d is None:
            d = self._decide(e, method, path)
        if d is ALLOW_PUBLIC or e.not_before <= now < e.not_after:
            return d
        return self._deny_token(
            _claims.ExpiredTokenError("token expired") if now >= e.not_after else _claims.NotYetValidError("token not yet valid")
        )

    def check_header(self, authorization, method="GET", path="/", now=None):
        """Decide from a raw `Authorization` header value (RFC 6750 §2.1; IS-10 RS-20)."""
        if authorization is None:
            return self.check(None, method, path, now)
        if authorization[:7].lower() == "bearer ":
            token = authorization[7:]
            if token and token[0] != " ":
                return self.check(token, method, path, now)
        if not authorization.strip() or authorization.strip().lower() == "bearer":
            return self.refuse_request("empty Authorization header", method, path)
        if method == "OPTIONS":
            return ALLOW_PUBLIC
        # Another scheme, or a malformed Bearer value: a token defect (IS-10 §8 table).
        return self._public_or(self._deny_token(TokenError("not a Bearer token")), path)

    def refuse_request(self, message, method="GET", path=None):
        """400 invalid_request for credentials sent in a malformed way (RFC 6750 §3.1), unless
        the request needs none (OPTIONS, public paths; `path` None: always refused)."""
        if method == "OPTIONS":
            return ALLOW_PUBLIC
        return self._public_or(self._invalid_request(message), path)

    def forget(self):
        """Drop every cached token (e.g. after keys changed wholesale)."""
        self._new = {}
        self._old = {}

    # --- internals --------------------------------------------------------------

    def _put(self, token, e):
        if len(self._new) >= self._half:
            # Two generations: an approximate LRU that needs no ordered dict (MicroPython).
            self._old = self._new
            self._new = {}
        self._new[token] = e

    def _admit(self, token, now):
        """Full validation of a token not in the cache. Returns an _Entry or a deny Decision."""
        try:
            header, alg, kid, claims, signing_input, signature = _jws.split(token, self.algorithms)
            iss = claims.get("iss")
            if not isinstance(iss, str) or not iss:
                raise _claims.ClaimError("iss missing")
            if self.issuers is not None and iss not in self.issuers:
                raise UntrustedIssuerError("issuer not trusted")
            keys = self.keys.keys_for(iss)
            if keys is None:
                raise UntrustedIssuerError("issuer not trusted")
            try:
                key = _jws.verify_parts(alg, kid, signing_input, signature, keys, self._backend or self.backend)
            except SignatureError:
                if kid is None or all(k.kid != kid for k in keys):
                    self.keys.missing_key(iss, kid, now)  # may raise KeyFetchPendingError
                raise
            not_before, not_after = _claims.check_access(claims, self.leeway)
            perms = claims if self.claims_location == "top" else _claims.nmos_claims(claims, self.claims_location)
        except TokenError as err:
            return self._deny_token(err)
        except KeyFetchPendingError as err:
            return Decision(
                503,
                "invalid_token",
                "key being fetched",
                'Bearer realm="%s",error=invalid_token,error_description="key being fetched"' % self.realm,
                retry_after=err.retry_after,
                cause="key_pending",
            )
        e = _Entry(key, not_before, not_after, self._audience_ok(claims["aud"]), claims, perms, self.aliases)
        self._put(token, e)
        return e

    def _decide(self, e, method, path):
        try:
            kind = None
            if path is not None:
                c = self._paths.get(path)  # inline _classify hit: this runs for every new token
                kind, api, rest = c if type(c) is tuple else self._classify(path)
            if kind == PUBLIC:
                d = ALLOW_PUBLIC
            elif not e.aud_ok:
                d = self._deny_scope(_claims.AudienceError("audience does not name this server"), e)
            else:
                if kind is not None:
                    e.check_classified(method, kind, api, rest)
                d = Decision(200, None, "ok", None, e.claims, None, e.key.kid)
        except ScopeError as err:
            d = self._deny_scope(err, e)
        except TokenError as err:  # a malformed x-nmos-* claim, found when first consulted
            d = self._deny_token(err)
        except InvalidRequestError as err:
            return self._invalid_request(err.message)
        if len(e.decisions) >= MAX_DECISIONS_PER_TOKEN:
            e.decisions = {}
        e.decisions[(method, path)] = d
        return d

    def _classify(self, path):
        """classify(normalize_path(path)), remembered per raw path: pure, and paths repeat."""
        c = self._paths.get(path)
        if c is None:
            try:
                c = classify(normalize_path(path))
            except InvalidRequestError as err:
                c = err.message
            if len(self._paths) >= MAX_PATHS:
                self._paths = {}
            self._paths[path] = c
        if type(c) is str:
            raise InvalidRequestError(c)
        return c

    def _audience_ok(self, aud):
        k = aud if isinstance(aud, str) else tuple(aud)
        ok = self._auds.get(k)
        if ok is None:
            ok = _claims.audience_matches(aud, self.hosts)
            if len(self._auds) >= MAX_AUDIENCES:
                self._auds = {}
            self._auds[k] = ok
        return ok

    def _decide_without_token(self, path):
        return self._public_or(self._no_token, path)

    def _public_or(self, deny, path):
        if path is None:
            return deny
        try:
            if self._classify(path)[0] == PUBLIC:
                return ALLOW_PUBLIC
        except InvalidRequestError as err:
            return self._invalid_request(err.message)
        return deny

    def _header(self, error, reason):
        return 'Bearer realm="%s",error=%s,error_description="%s"' % (self.realm, error, _quote_safe(reason))

    def _deny_token(self, err):
        reason = _quote_safe(err.message)
        return Decision(401, "invalid_token", reason, self._header("invalid_token", reason), cause=cause_of(err))

    def _deny_scope(self, err, e):
        reason = _quote_safe(err.message)
        return Decision(403, "insufficient_scope", reason, self._header("insufficient_scope", reason), e.claims,
                        kid=e.key.kid, cause=cause_of(err))

    def _invalid_request(self, message):
        reason = _quote_safe(message)
        return Decision(400, "invalid_request", reason, self._header("invalid_request", reason),
                        cause="invalid_request")
