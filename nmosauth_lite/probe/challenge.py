"""`WWW-Authenticate` as the probe reads it: one challenge parsed by RFC 7235 §4.1 (auth-scheme,
then comma-separated auth-params of token or quoted-string values, RFC 6750 §3: each at most once),
and the layout check for how the AMWA tool splits the value without trimming (IS-10 RS-26).
"""

from ..challenge import MAX_CHALLENGE, read_quoted

_TCHAR = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_challenge(value):
    """One challenge (RFC 7235 §4.1): (scheme, {param: value}) or ValueError. Names lower-cased."""
    if not isinstance(value, str) or len(value) > MAX_CHALLENGE:
        raise ValueError("too long")
    i, n = 0, len(value)
    while i < n and value[i] in _TCHAR:
        i += 1
    scheme = value[:i]
    if not scheme:
        raise ValueError("no auth-scheme")
    params = {}
    if i == n:
        return scheme, params
    if value[i] != " ":
        raise ValueError("auth-scheme not followed by a space")
    while True:
        while i < n and value[i] in " \t":
            i += 1
        start = i
        while i < n and value[i] in _TCHAR:
            i += 1
        name = value[start:i].lower()
        while i < n and value[i] in " \t":
            i += 1
        if not name or i >= n or value[i] != "=":
            raise ValueError("auth-param is not name=value")
        i += 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            v, i = read_quoted(value, i)
            if i < 0:
                raise ValueError("unterminated quoted-string")
        else:
            start = i
            while i < n and value[i] in _TCHAR:
                i += 1
            v = value[start:i]
            if not v:
                raise ValueError("empty auth-param value")
        if name in params:
            raise ValueError("auth-param %s repeated" % name)  # RFC 6750 §3: at most once
        params[name] = v
        while i < n and value[i] in " \t":
            i += 1
        if i == n:
            return scheme, params
        if value[i] != ",":
            raise ValueError("auth-params not separated by commas")
        i += 1


def tool_reads_error(value, error):
    """RS-26: the AMWA tool splits after 'Bearer ' on ',' then '=' without trimming or unquoting."""
    if not value.startswith("Bearer "):
        return False
    pairs = [p.split("=", 1) for p in value[7:].split(",")]
    return any(len(p) == 2 and p[0] == "error" and p[1] == error for p in pairs)
