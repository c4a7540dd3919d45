"""IPMX ("NMOS With Control Plane Security", cited as TR-10-SEC) access rules, without I/O.

Owns the profile's token-level claim rules (SEC-16..SEC-23: required claims, `exp`
with the clock tolerance, `iat` ignored, grant policy from `sub` vs `client_id`,
`aud` an array of strings, `ext`), audience by OAIM mode (SEC-26..SEC-30: serial
number / BCP-002-02 instance id plus an exact certificate name, certificate CN/SAN
with RFC 4592 wildcards, or either), the mTLS `client_id` binding (SEC-44, SEC-45: the
client certificate's names come in as plain strings), the API a path belongs to (SEC-36,
SEC-37), and the permission evaluator of the digest's §9: `["*"]`, `[""]` and signed
`aud`-index arrays (SEC-33..SEC-41). Where the pseudocode and the prose disagree we
follow the prose (docs/ipmx.md lists each choice). Time comes in as numbers.
"""

from .errors import ClaimError, PermissionDeniedError

MAX_AUD_VALUES = 64
MAX_CERT_NAMES = 64
MAX_NAME_LEN = 255
MAX_SCOPE_LEN = 4096
MAX_EXT_MEMBERS = 256
MAX_NUMERIC_DATE = 1e13
MAX_GUEST_PATHS = 64
MAX_CLIENT_CERT_NAMES = 256  # CN + DNS SANs of one client certificate; more: refused (fail closed)

OAIM_SERIAL = 0  # SEC-26, SEC-27 (the default, SEC-92)
OAIM_CERT = 1  # SEC-28
OAIM_EITHER = 2  # SEC-29

GRANT_POLICIES = ("both", "client_credentials", "authorization_code")  # SEC-22 (c), (a), (b)
CLAIMS_LOCATIONS = ("top", "ext", "either")
DEFAULT_NCP_SCOPES = ("nc", "control")  # SEC-36, SEC-37: either name (digest A19)

# The method the guard passes for a WebSocket upgrade (a GET with Upgrade: websocket). It holds
# a space, so no HTTP method (an RFC 9110 token) can ever equal it.
UPGRADE = "GET websocket"
READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

_ABSENT = object()

# SEC-49 status counters a-i: a closed set of names (metrics labels), one per cause.
STATUS_COUNTERS = (
    "ro_denied_sub", "ro_denied_aud", "ro_denied_scope", "ro_denied_x_nmos",  # a: ReadOnly denials
    "rw_denied_sub", "rw_denied_aud", "rw_denied_scope", "rw_denied_x_nmos",  # a: ReadWrite denials
    "no_token",  # b
    "invalid_token",  # c
    "expired_token",  # d: expired or not yet valid
    "client_cert_failed",  # f: a client certificate chain that fails validation (the TLS layer's)
    "server_cert_failed",  # f: a key fetch whose TLS server certificate failed
    "key_fetch_failed",  # g
    "no_keys",  # h: denied because no valid keys are held
)


def _denied(cls, message, by):
    e = cls(message)
    e.by = by  # which SEC-49 denial counter: sub, aud, scope or x_nmos
    return e


class GrantPolicyError(ClaimError):
    """sub vs client_id says a grant this Node does not accept (SEC-21, SEC-22): 401, counted by sub."""


class ClientBindingError(ClaimError):
    """Under mTLS, `client_id` names none of the client certificate's names (SEC-44): 401
    invalid_token with WWW-Authenticate (SEC-43), counted as an invalid token (SEC-49 d)."""


def _ascii_lower(s):
    """Lower-case A-Z only. The same on CPython and MicroPython (whose str.lower knows ASCII only);
    like DNS names (RFC 4343), other characters must match exactly."""
    for c in s:
        if "A" <= c <= "Z":
            break
    else:
        return s
    out = []
    for c in s:
        out.append(chr(ord(c) + 32) if "A" <= c <= "Z" else c)
    return "".join(out)


def client_id_bound(client_id, cert_names):
    """SEC-44, SEC-45: True when `client_id` equals, case-insensitively (ASCII), the CN or a DNS
    SAN of the verified TLS client certificate. `cert_names`: those names as strings (CN first,
    any order). A name holding `*` anywhere never matches, nor does an empty one; `sub` is never
    looked at (the caller passes `client_id` alone). More than MAX_CLIENT_CERT_NAMES names, or
    anything not a string: no match (fail closed)."""
    if type(client_id) is not str or not client_id or "*" in client_id:
        return False
    if type(cert_names) is str or len(cert_names) > MAX_CLIENT_CERT_NAMES:
        return False
    want = _ascii_lower(client_id)
    for n in cert_names:
        if type(n) is str and n and "*" not in n and len(n) == len(want) and _ascii_lower(n) == want:
            return True
    return False



def _is_num(v):
    return (type(v) is int or type(v) is float) and -MAX_NUMERIC_DATE < v < MAX_NUMERIC_DATE


def _dns(name):
    """A DNS name for comparison: lower-case, one trailing dot dropped (names are case-insensitive)."""
    n = name.lower()
    if n.endswith("."):
        n = n[:-1]
    return n


def wildcard_matches(pattern, name):
    """RFC 4592 §2.1.1: an `aud` entry whose leftmost label is exactly `*` stands for one or
    more labels (so `*.example.com` covers a.example.com and a.b.example.com, never
    example.com); a `*` anywhere else is an ordinary character. Otherwise an exact,
    case-insensitive match. The pseudocode's one-label simplification is not followed
    (digest A7: the prose requires RFC 4592)."""
    p = _dns(pattern)
    n = _dns(name)
    if p[:2] != "*.":
        return p == n
    rest = p[1:]  # ".example.com"
    if len(n) <= len(rest) or not n.endswith(rest):
        return False
    prefix = n[: len(n) - len(rest)]
    return prefix != "" and prefix[0] != "." and prefix[-1] != "." and ".." not in prefix


class Audience:
    """This Node's audience configuration (SEC-26..SEC-29, SEC-92).

    oaim: 0 serial number, 1 certificate names, 2 either. instance_id: the BCP-002-02
    instance identifier (serial number), needed for 0 and 2. cert_names: CN and DNS SANs
    of the TLS server certificate of the listener (SEC-32; protect reads its own).
    """

    def __init__(self, oaim=OAIM_SERIAL, instance_id=None, cert_names=()):
        if oaim not in (OAIM_SERIAL, OAIM_CERT, OAIM_EITHER):
            raise ValueError("oaim must be 0 (serial number), 1 (certificate names) or 2 (either)")
        if oaim != OAIM_CERT:
            if not isinstance(instance_id, str) or not instance_id.strip() or len(instance_id) > MAX_NAME_LEN:
                raise ValueError("oaim %d needs the Node's instance id (serial number)" % oaim)
            instance_id = instance_id.strip().lower()
        if isinstance(cert_names, str) or len(cert_names) > MAX_CERT_NAMES:
            raise ValueError("certificate names must be a list of at most %d names" % MAX_CERT_NAMES)
        names = []
        for n in cert_names:
            if not isinstance(n, str) or not n or len(n) > MAX_NAME_LEN:
                raise ValueError("certificate names must be non-empty strings")
            names.append(_dns(n))
        if oaim == OAIM_CERT and not names:
            raise ValueError("oaim 1 needs the certificate's names")
        self.oaim = oaim
        self.instance_id = instance_id
        self.cert_names = tuple(names)
        self._memo = {}

    def entry_allows(self, entry):
        """Does one `aud` string "considered alone" allow access to this Node (§9 EntryAllows)?"""
        if entry == "*":
            return True
        hit = self._memo.get(entry)
        if hit is not None:
            return hit
        ok = False
        if self.oaim != OAIM_CERT:
            # SEC-26, SEC-27: the instance id inside the entry, and the entry is itself one of the
            # certificate's names (compared as DNS names: case-insensitive, our choice).
            e = _dns(entry)
            ok = self.instance_id in e and e in self.cert_names
        if not ok and self.oaim != OAIM_SERIAL:
            for n in self.cert_names:
                if wildcard_matches(entry, n):
                    ok = True
                    break
        if len(self._memo) >= 256:
            self._memo = {}
        self._memo[entry] = ok
        return ok


# --- token-level claims (checked once per token) -----------------------------------------------

def check_claims(claims, tolerance, grant_policy="both", location="either"):
    """Required claims and their types, the grant policy and `ext` (SEC-16..SEC-23, SEC-30).
    Returns (not_before, not_after): valid while not_before <= now < not_after. Raises
    ClaimError (401) for anything that makes the token invalid."""
    for name in ("iss", "aud", "sub", "exp", "scope", "client_id"):  # SEC-16: azp is no substitute
        if name not in claims:
            raise ClaimError(name + " missing")
    for name in ("iss", "sub", "client_id"):
        v = claims[name]
        if type(v) is not str or not v:
            raise ClaimError(name + " is not a non-empty string")
    exp = claims["exp"]
    if not _is_num(exp):
        raise ClaimError("exp is not a NumericDate")  # SEC-19: any JSON number, 1.72e+09 too
    scope = claims["scope"]
    if type(scope) is not str or len(scope) > MAX_SCOPE_LEN:
        raise ClaimError("scope is not a string")
    aud = claims["aud"]
    if type(aud) is not list or len(aud) > MAX_AUD_VALUES:
        raise ClaimError("aud is not an array")  # SEC-30 (derived): a single string is invalid
    for a in aud:
        if type(a) is not str or len(a) > MAX_NAME_LEN:
            raise ClaimError("aud holds a non-string")
    same = claims["sub"] == claims["client_id"]  # SEC-21: the grant, inferred
    if grant_policy == "client_credentials" and not same:
        raise GrantPolicyError("only client_credentials tokens are accepted")  # SEC-22 (a)
    if grant_policy == "authorization_code" and same:
        raise GrantPolicyError("only authorization_code tokens are accepted")  # SEC-22 (b)
    start = -MAX_NUMERIC_DATE
    nbf = claims.get("nbf", _ABSENT)
    if nbf is not _ABSENT:
        # SEC-17: SHOULD NOT be sent, MAY be ignored; we honour it (fail closed), with the tolerance.
        if not _is_num(nbf):
            raise ClaimError("nbf is not a NumericDate")
        start = nbf
    # SEC-18: iat is ignored, whatever its value.
    if location != "top":
        private_claims(claims, location)  # `ext` shape and duplicates: a token-level defect
    return start - tolerance, exp + tolerance


def _same(a, b):
    """JSON equality with exact types (true is not 1, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for k in a:
            if k not in b or not _same(a[k], b[k]):
                return False
        return True
    if type(a) is list:
        if len(a) != len(b):
            return False
        for i in range(len(a)):
            if not _same(a[i], b[i]):
                return False
        return True
    return a == b


def private_claims(claims, location):
    """The object holding the x-nmos-* claims (SEC-23). "top": the claims; "ext": `ext` only
    (absent: none); "either" (the profile's default): both places, a name present in both
    must hold identical values (SEC-23 prose), else ClaimError. An `ext` present must be an
    object. The pseudocode's "ext shadows top level" is not followed (digest A5)."""
    if location == "top":
        return claims
    ext = claims.get("ext", _ABSENT)
    if ext is _ABSENT:
        return {} if location == "ext" else claims
    if type(ext) is not dict:
        raise ClaimError("ext is not an object")
    if len(ext) > MAX_EXT_MEMBERS:
        raise ClaimError("ext has too many members")
    if location == "ext":
        return ext
    out = {}
    for name in claims:
        if name[:7] == "x-nmos-":
            out[name] = claims[name]
    for name in ext:
        if name[:7] == "x-nmos-":
            if name in out and not _same(out[name], ext[name]):
                raise ClaimError("%s differs between ext and top level" % name[:40])
            out[name] = ext[name]
    return out


# --- which API a request reaches -----------------------------------------------------------------

def api_scopes(segments, ncp_scopes=DEFAULT_NCP_SCOPES):
    """The scope names that admit a request to these normalized path segments (SEC-36,
    SEC-37), or None when the path belongs to no NMOS API (then 403)."""
    n = len(segments)
    if n == 0 or (n == 1 and segments[0] == "x-nmos"):
        return ("node",)  # SEC-37: `/` and `/x-nmos` use the node scope
    if segments[0] == "x-manufacturer":
        return ("manufacturer",)  # SEC-37
    if segments[0] == "x-nmos":
        api = segments[1]
        if api == "ncp":
            return ncp_scopes  # SEC-37: an IS-12 control endpoint
        return (api,)
    return None


def parse_guest_paths(paths):
    """Read-only WebSocket endpoints (SEC-46): normalized paths, or prefixes ending in `*`."""
    if isinstance(paths, str) or len(paths) > MAX_GUEST_PATHS:
        raise ValueError("guest paths must be a list of at most %d paths" % MAX_GUEST_PATHS)
    out = []
    for p in paths:
        if not isinstance(p, str) or not p.startswith("/") or len(p) > 1024:
            raise ValueError("a guest path must start with /")
        out.append(p)
    return tuple(out)


def is_guest(path, guest_paths):
    """`path`: "/" + the normalized segments joined."""
    for g in guest_paths:
        if g.endswith("*"):
            if path.startswith(g[:-1]):
                return True
        elif path == g or path == g.rstrip("/"):
            return True
    return False


def read_write(method, guest):
    """True when the request has side effects on the Node (SEC-25, SEC-42, SEC-46)."""
    if method in READ_METHODS:
        return False
    if method == UPGRADE:
        return not guest  # SEC-46: an upgrade is ReadWrite unless explicitly a Guest endpoint
    if method in WRITE_METHODS:
        return True
    raise _denied(PermissionDeniedError, "method not permitted", "scope")
