"""One client's own audience list and IPMX permissions (issue 21; TR-10-SEC SEC-39, SEC-67..SEC-69).

An operator may give a client its own `aud` list: its tokens then carry that list instead of
tokens.audience (both profiles). Under the ipmx profile the client may also have its own
x-nmos-<api> permissions, whose index arrays point into that list (SEC-39, SEC-68). Owns: the
command-line syntax `API=READ[:WRITE]`, the checks made when an operator sets these values,
and the (audience, permissions) a token for the client carries. A client with neither keeps
the server's values untouched. Storage is store.py's; oauth.py asks `token_access`.
"""

from ..errors import ConfigError
from .tokens import check_ipmx_value

MAX_CLIENT_AUDIENCE = 16  # as `as token --audience`: an aud list names Nodes, it is no directory
MAX_AUDIENCE_ENTRY = 253  # a DNS name (RFC 1035 §2.3.4)
MAX_INDEX_TEXT = 6  # "-65535": an index into a list of MAX_CLIENT_AUDIENCE entries needs far fewer
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-*")


def check_audience_entry(value, what="--audience"):
    """An aud entry as IS-10 allows it: a host name (wildcards allowed), https://host or an address;
    no port, path or query (IS-10 TOK aud). Returns it unchanged, or raises ConfigError."""
    if not isinstance(value, str):
        raise ConfigError("%s: audience entries are strings" % what)
    host = value[8:] if value.lower().startswith("https://") else value
    ok = 0 < len(host) <= MAX_AUDIENCE_ENTRY and all(c in _HOST_CHARS for c in host.lower())
    if not ok or host.startswith(".") or ".." in host:
        try:
            import ipaddress

            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ConfigError("%s %r: a host name (wildcards allowed) or https://host, no port or path "
                              "(IS-10 aud)" % (what, value[:80]))
    return value


def check_audience(values, who):
    """A client's own aud list: 1..MAX_CLIENT_AUDIENCE entries, no duplicates, order kept (SEC-31:
    the order is what the permission indexes mean). None means the server's tokens.audience."""
    if values is None:
        return None
    if not isinstance(values, list) or not 0 < len(values) <= MAX_CLIENT_AUDIENCE:
        raise ConfigError("client %s: its audience is a list of 1..%d names" % (who, MAX_CLIENT_AUDIENCE))
    for v in values:
        check_audience_entry(v, "client %s: audience" % who)
    if len(set(values)) != len(values):
        raise ConfigError("client %s: an audience name appears twice (the permissions index the list, SEC-31)"
                          % who)
    return list(values)


def _parse_side(text, api, key, who):
    if text == "*":
        return ["*"]
    if text == "":
        return [""]
    out = []
    for item in text.split(","):
        digits = item[1:] if item.startswith("-") else item
        # JSON integers only (SEC-38): no "+1", "1.0", "0x1", " 1" or "1e0"
        if not digits or len(item) > MAX_INDEX_TEXT or not all("0" <= c <= "9" for c in digits):
            raise ConfigError('client %s: --permission %s: %s value %r: give *, nothing, or aud indexes such as '
                              '0,1,-2 (integers)' % (who, api, key, item[:20]))
        out.append(int(item))
    return out


def parse_permission(text, who):
    """`API=READ[:WRITE]` -> (api, {"read": [...], "write": [...]}). READ and WRITE are `*` (["*"],
    allow), nothing ([""], deny) or comma-separated signed aud indexes; without `:WRITE` the write
    attribute is absent, which denies writes (SEC-38). Checked further by check_client_access."""
    api, sep, rest = text.partition("=")
    if not sep or not api:
        raise ConfigError("client %s: --permission %r: use API=READ:WRITE, e.g. connection=*:0,-1" % (who, text[:80]))
    read, colon, write = rest.partition(":")
    out = {"read": _parse_side(read, api, "read", who)}
    if colon:
        out["write"] = _parse_side(write, api, "write", who)
    return api, out


def _has_index(perm):
    return any(v not in (["*"], [""]) for v in perm.values())


def _check_fits(perm, n_aud, where):
    """ConfigError unless every value of `perm` is a valid IPMX value for an aud of n_aud entries."""
    for key in ("read", "write"):
        if key in perm:
            check_ipmx_value(perm[key], n_aud, "%s.%s" % (where, key))


def check_client_access(audience, permissions, *, config, scopes, who):
    """Check a client's own values before they are stored; returns (audience, permissions).

    `audience`: None (the server's) or a list; `permissions`: None or {api: {"read": [...],
    "write": [...]}}, ipmx profile only. Every index must lie inside the client's own list
    (SEC-39, SEC-68: a token pointing outside its aud is invalid), so an index array needs one;
    and under ipmx a client with its own list must fit the server's tokens.permissions for every
    scope it has no permissions of its own for. ConfigError names the client and the API.
    """
    audience = check_audience(audience, who)
    if permissions is not None:
        if config.profile != "ipmx":
            raise ConfigError("client %s: permissions per client are the ipmx profile's aud-index arrays (SEC-68); "
                              "use --profile ipmx (or profile = \"ipmx\" in the configuration)" % who)
        if not isinstance(permissions, dict) or not permissions:
            raise ConfigError("client %s: permissions must be a table of APIs" % who)
        clean = {}
        for api, perm in permissions.items():
            if api not in scopes:
                raise ConfigError("client %s: --permission %s: the client has no %s scope (it has: %s)"
                                  % (who, api, api, " ".join(scopes) or "none"))
            if not isinstance(perm, dict) or not perm or any(k not in ("read", "write") for k in perm):
                raise ConfigError("client %s: --permission %s: read and write only" % (who, api))
            if _has_index(perm) and audience is None:
                raise ConfigError("client %s: --permission %s: aud indexes need the client's own audience list "
                                  "(--audience), which they point into (SEC-39)" % (who, api))
            try:
                _check_fits(perm, len(audience or ()), api)
            except ConfigError as e:
                raise ConfigError("client %s: --permission %s" % (who, str(e).replace("config: ", "", 1)))
            clean[api] = {k: list(v) for k, v in perm.items()}
        permissions = clean
    if config.profile == "ipmx" and audience is not None:
        own = permissions or {}
        for api in scopes:
            if api in own or api not in config.permissions:
                continue
            try:
                _check_fits(config.permissions[api], len(audience), api)
            except ConfigError:
                raise ConfigError("client %s: tokens.permissions for %s (%s) point outside the client's %d "
                                  "audience entries (SEC-39): give --permission %s=..."
                                  % (who, api, _text(config.permissions[api]), len(audience), api))
    return audience, permissions


def _text(perm):
    return " ".join("%s %s" % (k, perm[k]) for k in ("read", "write") if k in perm)


def token_access(client, config, default_audience):
    """(audience, permissions) for a token issued to `client` (a store row).

    A client without its own values gets exactly the server's (the IS-10 profile is unchanged for
    it). Its own list replaces tokens.audience in both profiles; its own permissions count under
    ipmx only, over tokens.permissions. Raises ValueError when the values no longer fit (the
    configuration changed since the operator set them): no token is better than an invalid one
    (SEC-68).
    """
    own_aud = client.get("audience")
    own_perms = client.get("permissions")
    if config.profile != "ipmx":
        return (own_aud or default_audience), config.permissions
    if own_aud is None and own_perms is None:
        return default_audience, config.permissions
    audience = own_aud or default_audience
    permissions = dict(config.permissions)
    permissions.update(own_perms or {})
    for api in client.get("scopes", ()):
        if api in permissions:
            try:
                _check_fits(permissions[api], len(audience), api)
            except ConfigError:
                raise ValueError("the %s permissions of this client do not fit its audience list (SEC-39); "
                                 "the operator must correct them (as client update)" % api)
    return audience, permissions
