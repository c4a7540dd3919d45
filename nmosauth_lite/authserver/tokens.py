"""IS-10 access token claims, built from the granted scopes (IS-10 §3 TOK-*, BCP-003-02 §2-§3).

Owns: scope strings (RFC 6749 §3.3), the default read/write path lists per NMOS API
(each scope gives one `x-nmos-<api>` claim; keys that grant nothing are left out,
TOK-23), lifetime bounds (TOK-07), the default audience (a wildcard of the host's
domain, else its own name; IS-10 §3.2 `aud`), and the full claim set (iss, sub, aud, exp, iat,
client_id, scope, jti, x-nmos-*). Signing lives in keys.py.
"""

import ipaddress
import secrets

from ..errors import ConfigError

MIN_LIFETIME = 30  # IS-10 TOK-07
MAX_LIFETIME = 3600  # IS-10 TOK-07; also how long a superseded key stays published
DEFAULT_LIFETIME = 600
MAX_SCOPE_LEN = 1024
MAX_SCOPE_VALUES = 32
CLIENT_CREDENTIALS_SCOPES = ("registration", "events")  # BCP-003-02 BCP-G-02
# OpenID Connect scopes (OIDC Core §3.1.2.1, §5.4, §11) this AS does not serve: clients such as the
# reference web controller ask for `openid` with their NMOS scopes. They are left out of what is
# granted, never an error (RFC 6749 §3.3: the AS may issue fewer scopes and says which in `scope`).
IDENTITY_SCOPES = ("openid", "profile", "email", "offline_access")

# Path specifiers after /x-nmos/<api>/<version>/ (TOK-29). List resources need their
# bare name as well as name/* (IS-10 §12 A6, BCP-003-02 §3 notes).
DEFAULT_PERMISSIONS = {
    # BCP-003-02 §2: the simple choice for Node registration (resource, resource/*, health/nodes/*).
    "registration": {"read": ["*"], "write": ["*"]},
    # BCP-Q-01: POST subscriptions and DELETE subscriptions/{id}.
    "query": {"read": ["*"], "write": ["subscriptions", "subscriptions/*"]},
    # IS-04 Node API: PUT receivers/{id}/target (deprecated but still served).
    "node": {"read": ["*"], "write": ["receivers/*/target"]},
    # IS-05: PATCH staged endpoints, POST bulk.
    "connection": {"read": ["*"], "write": ["single/senders/*/staged", "single/receivers/*/staged",
                                            "bulk/senders", "bulk/receivers"]},
    # IS-07: read only (BCP-E-01: the WebSocket needs read on sources/*).
    "events": {"read": ["*"]},
    # IS-08: POST map/activations, DELETE map/activations/{id} (BCP-O-01, generic IS-10 rules).
    "channelmapping": {"read": ["*"], "write": ["map/activations", "map/activations/*"]},
}


IPMX_MIN_LIFETIME = 3600  # TR-10-SEC SEC-65: at least 1 hour...
IPMX_MAX_LIFETIME = 86400  # ...and at most 24 hours
IPMX_DEFAULT_LIFETIME = 3600
MAX_IPMX_INDEXES = 64


def check_lifetime(seconds, profile="is-10"):
    if profile == "ipmx":
        if type(seconds) is not int or not IPMX_MIN_LIFETIME <= seconds <= IPMX_MAX_LIFETIME:
            raise ConfigError("token lifetime must be %d..%d seconds under the ipmx profile (SEC-65)"
                              % (IPMX_MIN_LIFETIME, IPMX_MAX_LIFETIME))
        return seconds
    if type(seconds) is not int or not MIN_LIFETIME <= seconds <= MAX_LIFETIME:
        raise ConfigError("token lifetime must be %d..%d seconds (IS-10 TOK-07)" % (MIN_LIFETIME, MAX_LIFETIME))
    return seconds


def check_ipmx_value(value, n_aud, where):
    """An IPMX read/write value (SEC-38, SEC-39, SEC-68): ["*"], [""], or a non-empty array of
    integers, non-negative first, every |i| < n_aud (indexes into the token's `aud`)."""
    if value == ["*"] or value == [""]:
        return list(value)
    if not isinstance(value, list) or not value or len(value) > MAX_IPMX_INDEXES:
        raise ConfigError('config: %s must be ["*"], [""] or a list of aud indexes' % where)
    seen_negative = False
    for i in value:
        if type(i) is not int:
            raise ConfigError('config: %s must be ["*"], [""] or a list of aud indexes (integers)' % where)
        if i < 0:
            seen_negative = True
        elif seen_negative:
            raise ConfigError("config: %s: non-negative indexes first, then negative ones (SEC-39)" % where)
        if abs(i) >= n_aud:
            raise ConfigError("config: %s: index %d is outside the %d audience entries (SEC-39)" % (where, i, n_aud))
    return list(value)


def check_ipmx_permissions(table, n_aud):
    """Per-scope IPMX permissions: {"read": ["*"], "write": ["*"]} for every scope unless configured;
    a configured scope holds what it says (an absent key denies, SEC-38)."""
    perms = {k: {"read": ["*"], "write": ["*"]} for k in DEFAULT_PERMISSIONS}
    for scope, entry in (table or {}).items():
        if not _is_api_name(scope) or scope in IDENTITY_SCOPES:
            raise ConfigError("config: permissions scope %r is not an NMOS API name ([a-z]+)" % scope)
        if not isinstance(entry, dict):
            raise ConfigError("config: permissions.%s must be a table" % scope)
        out = {}
        for key, value in entry.items():
            if key not in ("read", "write"):
                raise ConfigError("config: permissions.%s.%s: only read and write exist" % (scope, key))
            out[key] = check_ipmx_value(value, n_aud, "permissions.%s.%s" % (scope, key))
        perms[scope] = out
    return perms


def _is_api_name(name):
    # claim names must match ^x-nmos-[a-z]+$ (token_schema.json)
    return bool(name) and all("a" <= c <= "z" for c in name)


def check_permissions(table):
    """Defaults merged with configured per-scope {"read": [...], "write": [...]} lists."""
    perms = {k: {p: list(v) for p, v in d.items()} for k, d in DEFAULT_PERMISSIONS.items()}
    for scope, entry in (table or {}).items():
        if not _is_api_name(scope):
            raise ConfigError("config: permissions scope %r is not an NMOS API name ([a-z]+)" % scope)
        if scope in IDENTITY_SCOPES:
            raise ConfigError("config: %r is an OpenID Connect scope, never granted here (see IDENTITY_SCOPES)" % scope)
        if not isinstance(entry, dict):
            raise ConfigError("config: permissions.%s must be a table" % scope)
        out = {}
        for key, specs in entry.items():
            if key not in ("read", "write"):
                raise ConfigError("config: permissions.%s.%s: only read and write exist (IS-10 TOK-22)" % (scope, key))
            if not isinstance(specs, list) or not all(isinstance(s, str) and s for s in specs):
                raise ConfigError("config: permissions.%s.%s must be a list of paths" % (scope, key))
            for s in specs:
                if s.startswith("/") or s.startswith("x-nmos"):
                    raise ConfigError("config: permissions.%s.%s: %r must start after the API version "
                                      "(IS-10 TOK-29)" % (scope, key, s))
            out[key] = list(specs)
        perms[scope] = out
    return perms


def parse_scope(text):
    """Space-separated scope tokens (RFC 6749 §3.3) -> list without duplicates, order kept.

    Raises ValueError for characters outside scope-token or an oversized value.
    """
    if text is None:
        return []
    if len(text) > MAX_SCOPE_LEN:
        raise ValueError("scope too long")
    out = []
    for tok in text.split(" "):
        if not tok:
            continue
        for c in tok:
            if c < "!" or c > "~" or c in '"\\':
                raise ValueError("bad character in scope")
        if tok not in out:
            out.append(tok)
    if len(out) > MAX_SCOPE_VALUES:
        raise ValueError("too many scope values")
    return out


def grant_scopes(text, may_have, supported):
    """RFC 6749 §3.3: the scopes to grant for a request's `scope` value, in the request's order.

    Identity scopes (IDENTITY_SCOPES) are left out; a name that is neither one of them nor in
    `supported` (the NMOS API names this AS issues) is refused (ValueError), as is malformed text;
    of the rest, those in `may_have` (what this client or grant may have) are granted. A request
    naming no scope at all gets all of `may_have`; one naming identity scopes only gets nothing.
    The caller answers invalid_scope when the result is empty.
    """
    requested = parse_scope(text)
    for s in requested:
        if s not in supported and s not in IDENTITY_SCOPES:
            raise ValueError("scope %s is not supported by this server" % s[:40])
    if not requested:
        return list(may_have)
    return [s for s in requested if s in may_have and s not in IDENTITY_SCOPES]


def without_identity_scopes(text):
    """`text`'s scopes less IDENTITY_SCOPES (ValueError when malformed): for registration and refresh."""
    return [s for s in parse_scope(text) if s not in IDENTITY_SCOPES]


def default_audience(host):
    """A wildcard of the host's domain: auth.studio.example.com -> *.studio.example.com.

    A single-label name or an address has no domain to share with the Nodes: the
    audience is then that name itself (issue 22), never "*", which would let every
    resource server anywhere accept the token (IS-10 TOK aud: fully resolved names or
    wildcard domain names). Nodes elsewhere then refuse it (403) until tokens.audience
    names them; the server logs that at start-up.
    """
    h = host.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(h.strip("[]"))
        return [h.strip("[]")]
    except ValueError:
        pass
    label, dot, domain = h.partition(".")
    return ["*." + domain] if dot and domain else [h]


def build_claims(*, issuer, audience, client_id, sub, scopes, permissions, now, lifetime, claims_location="top"):
    """The IS-10 claim set for one access token (TOK table, AS-41). claims_location "ext" puts the
    x-nmos-* claims in an `ext` object (IPMX SEC-23 SHOULD); the rest is the same for both profiles
    (IPMX SEC-67: iss aud sub exp scope client_id; iat sent, nbf never)."""
    iat = int(now)
    claims = {
        "iss": issuer,
        "sub": sub,
        "aud": list(audience),  # IS-10 §12 A3: the AS sends an array
        "exp": iat + lifetime,
        "iat": iat,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "jti": secrets.token_urlsafe(16),
    }
    where = claims
    if claims_location == "ext":
        where = claims["ext"] = {}
    for s in scopes:
        p = permissions.get(s) or {}
        obj = {k: list(p[k]) for k in ("read", "write") if p.get(k)}
        if obj:  # TOK-23: no empty permission keys, no claim that grants nothing
            where["x-nmos-" + s] = obj
    if claims_location == "ext" and not where:
        del claims["ext"]
    return claims
