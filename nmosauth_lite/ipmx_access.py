"""IPMX (TR-10-SEC) permissions of one token: the digest's §9 EvalAttr and the decision order.

Owns the `x-nmos-<api>` read/write values (`["*"]`, `[""]`, signed `aud`-index arrays;
SEC-38..SEC-40, SEC-68), which `aud` entries name this Node (ipmx.Audience), and the outcome of
a request (SEC-24..SEC-42): audience, then scope, then read, then write; 403 for a denial, a
ClaimError (401) for a malformed value. Claim rules, audience matching and the API of a path
live in ipmx.py. Where the pseudocode and the prose disagree we follow the prose (docs/ipmx.md).
"""

from .errors import AudienceError, ClaimError, PermissionDeniedError
from .ipmx import _ABSENT, _denied, _same, private_claims

MAX_INDEXES = 64  # entries of one read/write index array

ALLOW = 1
DENY = 0
INVALID = -1


# --- x-nmos-<api> read/write attributes (§9 EvalAttr) -------------------------------------------

def eval_attr(perm, name, aud_ok):
    """ALLOW, DENY or INVALID for `perm[name]` given aud_ok[i] = EntryAllows(aud[i]) (SEC-38..SEC-40).

    Prose over pseudocode: every index is bounds-checked, not only those visited (digest A8);
    only JSON integers count (A9: no 1.0, no true)."""
    if name not in perm:
        return DENY  # "The absence of a read attribute prevents Read access"
    attr = perm[name]
    if type(attr) is not list or not attr or len(attr) > MAX_INDEXES:
        return INVALID
    if len(attr) == 1 and type(attr[0]) is str:
        if attr[0] == "*":
            return ALLOW
        if attr[0] == "":
            return DENY
        return INVALID  # an IS-10 path specifier such as "single/*" (SEC-68)
    n = len(aud_ok)
    allow = []
    deny = []
    for i in attr:
        if type(i) is not int:
            return INVALID
        if i >= 0:
            if deny:
                return INVALID  # SEC-39: positives first, then negatives
            if i >= n:
                return INVALID
            allow.append(i)
        else:
            if -i >= n:
                return INVALID
            deny.append(-i)
    if allow:
        ok = False
        for i in allow:
            if aud_ok[i]:
                ok = True
                break
        if not ok:
            return DENY
    for i in deny:
        if aud_ok[i]:
            return DENY
    return ALLOW


class Access:
    """One admitted token's IPMX permissions: its scope list, which `aud` entries allow this
    Node, and the (read, write) results per API, computed on first use."""

    def __init__(self, claims, audience, location):
        self.claims = claims
        self.location = location
        self.scopes = claims["scope"].split()  # SEC-33: a space-separated list of API names
        aud_ok = []
        for a in claims["aud"]:
            aud_ok.append(audience.entry_allows(a))
        self.aud_ok = aud_ok
        self.aud_any = True in aud_ok
        self.apis = {}

    def permissions(self, names):
        """(read, write) of the x-nmos-* claim for the API named `names`, or None when the token
        has none (scope then decides alone). Raises ClaimError (401) for a malformed claim."""
        key = names[0]
        hit = self.apis.get(key, _ABSENT)
        if hit is not _ABSENT:
            return hit
        priv = private_claims(self.claims, self.location)
        found = _ABSENT
        for n in names:
            v = priv.get("x-nmos-" + n, _ABSENT)
            if v is not _ABSENT:
                if found is not _ABSENT and not _same(found, v):
                    raise ClaimError("x-nmos-%s given twice with different values" % key[:32])
                found = v
        if found is _ABSENT:
            hit = None
        else:
            if type(found) is not dict:
                raise ClaimError("x-nmos-%s is not an object" % key[:32])
            r = eval_attr(found, "read", self.aud_ok)
            w = eval_attr(found, "write", self.aud_ok)
            if r == INVALID or w == INVALID:
                # SEC-38, SEC-39, SEC-68: a value outside the three forms, or an index outside
                # `aud`, makes the token invalid, for reads and writes alike.
                raise ClaimError("x-nmos-%s read or write is not [\"*\"], [\"\"] or aud indexes" % key[:32])
            hit = (r, w)
        if len(self.apis) >= 16:
            self.apis = {}
        self.apis[key] = hit
        return hit

    def check(self, names, rw):
        """Raise ScopeError (403) or ClaimError (401) unless access is allowed (SEC-24..SEC-42).

        Prose order (SEC-24, digest A2): audience, then scope, then read, then write."""
        if not self.aud_any:
            raise _denied(AudienceError, "audience does not name this Node", "aud")  # SEC-26..SEC-30
        ok = False
        for n in names:
            if n in self.scopes:
                ok = True
                break
        if not ok:
            raise _denied(PermissionDeniedError, "API not in scope", "scope")  # SEC-33, SEC-35
        p = self.permissions(names)
        if p is None:
            if rw:
                raise _denied(PermissionDeniedError, "scope grants read only", "scope")  # SEC-33
            return
        if p[0] != ALLOW:
            raise _denied(PermissionDeniedError, "read not permitted", "x_nmos")  # SEC-34: scope's read is gone
        if rw and p[1] != ALLOW:
            raise _denied(PermissionDeniedError, "write not permitted", "x_nmos")  # SEC-41: read and write needed
