"""JWT claim checks for IS-10 access tokens (RFC 7519 §4.1, IS-10 §3 TOK, RS-13..RS-19).

Owns: required claims (iss, sub, aud, exp; client_id or azp), their JSON types,
time checks against a caller-supplied `now` with a leeway (fractional NumericDate
allowed, non-finite numbers and booleans refused), and audience matching against
this resource server's configured host names, and where the x-nmos-* claims are
(`claims_location`: top level, IS-10's place; or under `ext`, where Ory Hydra puts
custom claims). Path permissions live in permissions.py. Nothing here reads a clock.
"""

from .compare import glob_match
from .errors import AudienceError, ClaimError, ExpiredTokenError, NotYetValidError

MAX_NUMERIC_DATE = 1e13  # year ~318000: anything larger (or NaN, inf) is not a date
MAX_AUD_VALUES = 64
MAX_AUD_LEN = 255
MAX_EXT_MEMBERS = 256  # members of an `ext` object looked at (IS-10 tokens carry a handful)

CLAIMS_LOCATIONS = ("top", "ext", "either")
DEFAULT_CLAIMS_LOCATION = "top"


def _is_num(v):
    # bool is an int subclass in Python; a JSON true is not a NumericDate.
    return (type(v) is int or type(v) is float) and -MAX_NUMERIC_DATE < v < MAX_NUMERIC_DATE


def _string(claims, name, required):
    if name not in claims:
        if required:
            raise ClaimError(name + " missing")
        return None
    v = claims[name]
    if not isinstance(v, str) or not v:
        raise ClaimError(name + " is not a non-empty string")
    return v


def validity_window(claims, leeway):
    """Return (not_before, not_after): the token is current while not_before <= now < not_after.

    exp is required; iat and nbf are optional (IS-10 §3.2). now == exp is expired
    (RFC 7519 §4.1.4; IS-10 §12 A8). iat later than now is refused (RS-13).
    """
    exp = claims.get("exp")
    if not _is_num(exp):
        raise ClaimError("exp missing" if exp is None and "exp" not in claims else "exp is not a NumericDate")
    start = -MAX_NUMERIC_DATE
    for name in ("iat", "nbf"):
        if name in claims:
            v = claims[name]
            if not _is_num(v):
                raise ClaimError(name + " is not a NumericDate")
            if v > start:
                start = v
    return start - leeway, exp + leeway


def check_window(not_before, not_after, now):
    if now >= not_after:
        raise ExpiredTokenError("token expired")
    if now < not_before:
        raise NotYetValidError("token not yet valid")


def check_required(claims):
    """Check presence and types of iss, sub, aud, client_id/azp, scope (IS-10 RS-17, TOK-10).

    Returns the client identifier (client_id, else azp).
    """
    _string(claims, "iss", True)
    _string(claims, "sub", True)
    aud = claims.get("aud")
    if aud is None:
        raise ClaimError("aud missing")
    if isinstance(aud, list):
        if len(aud) > MAX_AUD_VALUES:
            raise ClaimError("aud has too many values")
        for a in aud:
            if not isinstance(a, str):
                raise ClaimError("aud holds a non-string")
    elif not isinstance(aud, str):
        raise ClaimError("aud is not a string or array")
    client_id = _string(claims, "client_id", False)
    azp = _string(claims, "azp", False)
    if client_id is None and azp is None:
        raise ClaimError("neither client_id nor azp")
    if client_id is not None and azp is not None and client_id != azp:
        raise ClaimError("client_id and azp differ")  # IS-10 §12 C7
    scope = claims.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise ClaimError("scope is not a string")
    return client_id if client_id is not None else azp


_ABSENT = object()  # claims.get default: tells an absent member from a JSON null


def check_access(claims, leeway):
    """check_required and validity_window in one pass over `claims`; returns the window.

    The success path reads each member once with exact-type tests; anything it does not
    accept at once goes through the two functions above, which then raise the exact error
    (or accept, with the same window). Never looser than they are.
    """
    g = claims.get
    iss = g("iss")
    sub = g("sub")
    scope = g("scope")
    exp = g("exp")
    ok = (type(iss) is str and iss != "" and type(sub) is str and sub != ""
          and (scope is None or type(scope) is str)
          and (type(exp) is int or type(exp) is float) and -MAX_NUMERIC_DATE < exp < MAX_NUMERIC_DATE)
    if ok:
        cid = g("client_id", _ABSENT)
        azp = g("azp", _ABSENT)
        if type(cid) is str:
            ok = cid != "" and (azp is _ABSENT or azp == cid)
        else:
            ok = cid is _ABSENT and type(azp) is str and azp != ""
    if ok:
        aud = g("aud")
        if type(aud) is not str:
            if type(aud) is list and len(aud) <= MAX_AUD_VALUES:
                for a in aud:
                    if type(a) is not str:
                        ok = False
                        break
            else:
                ok = False
    start = -MAX_NUMERIC_DATE
    if ok:
        v = g("iat", _ABSENT)
        if v is not _ABSENT:
            if _is_num(v):
                if v > start:
                    start = v
            else:
                ok = False
        v = g("nbf", _ABSENT)
        if v is not _ABSENT:
            if _is_num(v):
                if v > start:
                    start = v
            else:
                ok = False
    if not ok:
        check_required(claims)
        return validity_window(claims, leeway)
    return start - leeway, exp + leeway


# --- audience -----------------------------------------------------------------

def _strip_host(value):
    """Host part of an aud value, lower-cased, one trailing dot removed; None if unusable."""
    v = value.lower()
    if v.startswith("https://"):
        v = v[8:]
    elif v.startswith("http://"):
        v = v[7:]
    if v.endswith("."):
        v = v[:-1]
    if not v or len(v) > MAX_AUD_LEN:
        return None
    # IS-10 §3.2: a URI-form aud must not hold a port, path or query. Such an entry
    # never matches (aud-cases AU-12, AU-13: our documented choice).
    for ch in "/:?#@ ":
        if ch in v:
            return None
    return v


def _is_ip_literal(host):
    if ":" in host:
        return True
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit():
            return False
    return True


def normalize_audience(hosts):
    """Configured host names of this resource server, ready for `audience_matches`."""
    out = []
    for h in hosts:
        if not isinstance(h, str):
            raise ValueError("audience host names must be strings")
        n = _strip_host(h)
        if n is None or "*" in n:
            raise ValueError("audience '%s' is not a plain host name" % h[:64])
        out.append((n, _is_ip_literal(n)))
    if not out:
        raise ValueError("at least one audience host name is required")
    return out


def audience_matches(aud, hosts):
    """True when some aud value names one of `hosts` (from normalize_audience). IS-10 RS-15, RS-16.

    Every value is tried (aud-cases AU-09). Bare and https:// forms both match;
    case-insensitive; `*` is a glob over the name, so `*.example.com` covers
    a.b.example.com (AU-08) and `node-*.example.com` covers node-7.example.com
    (AU-14, IS-10's own example); a wildcard never matches an IP literal (AU-18).
    """
    values = [aud] if isinstance(aud, str) else aud
    for value in values:
        v = _strip_host(value)
        if v is None:
            continue
        wild = "*" in v
        for host, is_ip in hosts:
            if wild:
                if not is_ip and glob_match(v.split("*"), host):
                    return True
            elif v == host:
                return True
    return False


def check_audience(aud, hosts):
    if not audience_matches(aud, hosts):
        raise AudienceError("audience does not name this resource server")


# --- where the x-nmos-* claims are ------------------------------------------------------------

def check_claims_location(location):
    if location not in CLAIMS_LOCATIONS:
        raise ValueError("claims_location must be one of: top, ext, either")
    return location


def nmos_claims(claims, location):
    """The object holding this token's x-nmos-* claims for `location` (see CLAIMS_LOCATIONS).

    "top": the claims themselves (IS-10 TOK-20). "ext": the `ext` object (absent: none;
    top-level x-nmos-* claims are then not consulted). "either": both, and an x-nmos-* name
    present in both places is a ClaimError (401): ambiguous, never merged. An `ext` that is
    not a JSON object is a ClaimError wherever it is read.
    """
    if location == "top":
        return claims
    ext = claims.get("ext")
    if ext is None:
        if "ext" in claims:
            raise ClaimError("ext is null")
        return {} if location == "ext" else claims
    if not isinstance(ext, dict):
        raise ClaimError("ext is not an object")
    if len(ext) > MAX_EXT_MEMBERS:
        raise ClaimError("ext has too many members")
    out = {}
    for name in ext:
        if name[:7] == "x-nmos-":
            out[name] = ext[name]
    if location == "ext":
        return out
    for name in claims:
        if name[:7] == "x-nmos-":
            if name in out:
                raise ClaimError("%s both at top level and in ext" % name[:40])
            out[name] = claims[name]
    return out
