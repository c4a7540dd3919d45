"""TokenValidator under the IPMX profile (TR-10-SEC digest §2, §9), chosen once per validator.

`attach` replaces the validator's request entry points (check, the no-token and
bad-path answers) with this profile's: nothing is public (SEC-37), `typ` is
required (SEC-13), keys older than the profile's maximum age are not used and no
key is ever fetched because of a token (SEC-54, SEC-57: 401, fail closed), the
claim rules, the mTLS `client_id` binding (SEC-44: `client_cert`, the verified client
certificate's names as strings) and the permission evaluator come from ipmx.py. The token cache, the
Decision shapes and the WWW-Authenticate values are the validator's own.
"""

from . import ipmx as _ipmx
from . import ipmx_access as _access
from . import jws as _jws
from .errors import (
    ClaimError,
    ExpiredTokenError,
    InvalidRequestError,
    MalformedTokenError,
    NoKeysError,
    NotYetValidError,
    PermissionDeniedError,
    ScopeError,
    TokenError,
    UntrustedIssuerError,
)
from .permissions import normalize_path
from .validator import ALLOW_PUBLIC, Decision, _quote_safe, _system_clock

MAX_PATHS = 512
MAX_DECISIONS_PER_TOKEN = 64


class _Entry:
    """An admitted token: its window, key and compiled IPMX access."""

    def __init__(self, key, not_before, not_after, access):
        self.key = key
        self.not_before = not_before
        self.not_after = not_after
        self.access = access
        self.claims = access.claims
        self.decisions = {}


def key_expiry(key):
    """When a held key stops being usable (set by the key store under a maximum key age)."""
    return getattr(key, "expires_at", None)


class IpmxRules:
    def __init__(self, v, audience, grant_policy, location, guest_paths, ncp_scopes):
        self.v = v
        self.audience = audience
        self.grant_policy = grant_policy
        self.location = location
        self.guest_paths = guest_paths
        self.ncp_scopes = ncp_scopes
        self.accepted_typ = v.profile.accepted_typ
        self._paths = {}

    # --- the validator's entry points ---------------------------------------------------------

    def check(self, token, method="GET", path="/", now=None, client_cert=None):
        """`client_cert`: None when the request came without a verified TLS client certificate;
        else the certificate's CN and DNS SANs (a list of strings, maybe empty): the token's
        client_id must be one of them (SEC-44, SEC-45)."""
        v = self.v
        if method == "OPTIONS":
            return ALLOW_PUBLIC  # GEN-04 kept: TR-10-SEC says nothing of pre-flight
        if now is None:
            if v._clock is None:
                v._clock = _system_clock()
            now = v._clock()
        if not token:
            return self.public_or(v._no_token, path)  # SEC-43: 401 with WWW-Authenticate; counter b
        e = v._new.get(token)
        if e is None:
            e = v._old.get(token)
            if e is not None:
                v._put(token, e)
        if e is not None:
            exp = key_expiry(e.key)
            if e.key.withdrawn or (exp is not None and now >= exp):
                e = None
        if e is None:
            e = self.admit(token, now)
            if type(e) is not _Entry:
                if e.status_counter == "denied_sub":
                    e.status_counter = ("rw" if self._rw(method, path) else "ro") + "_denied_sub"
                return self.public_or(e, path)
        if client_cert is not None and not _ipmx.client_id_bound(e.claims["client_id"], client_cert):
            # SEC-44: checked before any permission (a 401, never hidden behind a 403); SEC-43 401
            d = v._deny_token(_ipmx.ClientBindingError("client_id does not match the TLS client certificate"))
            d.status_counter = "invalid_token"  # SEC-49 d: the token is not this client's
            return d
        d = e.decisions.get((method, path))
        if d is None:
            d = self.decide(e, method, path)
        if e.not_before <= now < e.not_after:
            return d
        d = v._deny_token(ExpiredTokenError("token expired") if now >= e.not_after
                          else NotYetValidError("token not yet valid"))
        d.status_counter = "expired_token"
        return d

    def public_or(self, deny, path):
        """Nothing is public under this profile (SEC-37); a malformed path is still a 400."""
        if path is not None:
            try:
                self._classify(path)
            except InvalidRequestError as err:
                return self.v._invalid_request(err.message)
        return deny

    # --- internals -------------------------------------------------------------------------------

    def admit(self, token, now):
        v = self.v
        try:
            header, alg, kid, claims, signing_input, signature = _jws.split(token, v.algorithms)
            typ = header.get("typ")
            if type(typ) is not str or typ.lower() not in self.accepted_typ:
                raise MalformedTokenError("typ must be JWT, at+jwt or application/at+jwt")  # SEC-13
            iss = claims.get("iss")
            if type(iss) is not str or not iss:
                raise ClaimError("iss missing")
            if v.issuers is not None and iss not in v.issuers:
                raise UntrustedIssuerError("issuer not trusted")
            keys = v.keys.keys_for(iss)
            if keys is None:
                raise UntrustedIssuerError("issuer not trusted")
            live = []
            for k in keys:
                exp = key_expiry(k)
                if exp is None or now < exp:
                    live.append(k)
            if not live:
                raise NoKeysError("no valid keys held")  # SEC-48, SEC-53, SEC-54
            # SEC-12: the signature before any claim; SEC-57: an unknown kid never causes a fetch.
            key = _jws.verify_parts(alg, kid, signing_input, signature, live, v._backend or v.backend)
            not_before, not_after = _ipmx.check_claims(claims, v.leeway, self.grant_policy, self.location)
        except TokenError as err:
            d = v._deny_token(err)
            d.status_counter = ("no_keys" if isinstance(err, NoKeysError) else
                                "denied_sub" if isinstance(err, _ipmx.GrantPolicyError) else
                                "expired_token" if isinstance(err, (ExpiredTokenError, NotYetValidError)) else
                                "invalid_token")
            return d
        e = _Entry(key, not_before, not_after, _access.Access(claims, self.audience, self.location))
        v._put(token, e)
        return e

    def _rw(self, method, path):
        try:
            canon = self._classify(path)[1] if path is not None else "/"
            return _ipmx.read_write(method, method == _ipmx.UPGRADE and _ipmx.is_guest(canon, self.guest_paths))
        except (ScopeError, InvalidRequestError):
            return True

    def decide(self, e, method, path):
        v = self.v
        rw = True
        try:
            if path is None:
                rw = False
                if not e.access.aud_any:
                    raise _ipmx._denied(PermissionDeniedError, "audience does not name this Node", "aud")
            else:
                names, canon = self._classify(path)
                rw = _ipmx.read_write(method, method == _ipmx.UPGRADE and _ipmx.is_guest(canon, self.guest_paths))
                if names is None:
                    raise _ipmx._denied(PermissionDeniedError, "path outside the NMOS APIs", "scope")
                e.access.check(names, rw)
            d = Decision(200, None, "ok", None, e.claims, None, e.key.kid)
        except ScopeError as err:
            d = v._deny_scope(err, e)
            d.status_counter = ("rw_denied_" if rw else "ro_denied_") + getattr(err, "by", "scope")
        except TokenError as err:
            d = v._deny_token(err)
            d.status_counter = "invalid_token"
        except InvalidRequestError as err:
            return v._invalid_request(err.message)
        if len(e.decisions) >= MAX_DECISIONS_PER_TOKEN:
            e.decisions = {}
        e.decisions[(method, path)] = d
        return d

    def _classify(self, path):
        c = self._paths.get(path)
        if c is None:
            try:
                segs = normalize_path(path)
                c = (_ipmx.api_scopes(segs, self.ncp_scopes), "/" + "/".join(segs))
            except InvalidRequestError as err:
                c = err.message
            if len(self._paths) >= MAX_PATHS:
                self._paths = {}
            self._paths[path] = c
        if type(c) is str:
            raise InvalidRequestError(c)
        return c


def attach(v, oaim, instance_id, cert_names, grant_policy, location, guest_paths, ncp_scopes, realm=None):
    """Make validator `v` decide by the IPMX rules. Raises ValueError for bad settings. Without a
    configured `realm`, the realm is the instance id (or the first certificate name)."""
    if grant_policy not in _ipmx.GRANT_POLICIES:
        raise ValueError("grant_policy must be one of: " + ", ".join(_ipmx.GRANT_POLICIES))
    if location not in _ipmx.CLAIMS_LOCATIONS:
        raise ValueError("claims_location must be one of: top, ext, either")
    names = []
    for n in ncp_scopes:
        if not isinstance(n, str) or not n or " " in n:
            raise ValueError("IS-12 scope names must be non-empty words")
        names.append(n)
    if not names:
        raise ValueError("at least one IS-12 scope name is needed")
    r = IpmxRules(v, _ipmx.Audience(oaim, instance_id, cert_names), grant_policy, location,
                  _ipmx.parse_guest_paths(guest_paths), tuple(names))
    v.check = r.check
    v._public_or = r.public_or
    v.ipmx = r
    if realm is None:
        v.realm = _quote_safe(r.audience.instance_id or r.audience.cert_names[0])
        v._no_token = Decision(401, None, "no token", 'Bearer realm="%s"' % v.realm)
    v._no_token.status_counter = "no_token"  # SEC-49 b
    return r
