"""IS-10 path permissions: x-nmos-* claims and scope against (method, path).

Owns: request-path normalization (IS-10 RS-32: query and fragment dropped,
unreserved %XX decoded, dot segments removed per RFC 3986 §5.2.4, repeated
slashes collapsed, one trailing slash dropped), the IS-10 path table (RS-31),
x-nmos-<api> path specifiers where `*` matches any characters including `/`
and everything else is literal (TOK-27, RS-34), and method -> read/write
(RS-33). Claims are compiled once per token; matching is then a few string ops.
The API names in use (IS-04..IS-14, BCP-O-02) and a site's alias map for claim and scope
names its authorization server spells differently (`nc` for `ncp`) live here too.
"""

from .compare import glob_match
from .errors import ClaimError, InvalidRequestError, PermissionDeniedError

MAX_PATH_LEN = 8192  # request targets beyond this are refused by the HTTP layer anyway
MAX_SPECIFIERS = 512  # per x-nmos-* claim
MAX_SPECIFIER_LEN = 1024
MAX_COMPILED = 128  # distinct specifier lists remembered (a client's tokens all carry the same ones)

READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# The NMOS API namespace identifiers (`/x-nmos/<api>/`, claim `x-nmos-<api>`, scope `<api>`;
# IS-10 TOK-20, RS-35; BCP-O-01, BCP-O-02): IS-04 node/query/registration, IS-05 connection,
# IS-06 netctrl, IS-07 events, IS-08 channelmapping, IS-11 streamcompatibility, IS-12 ncp,
# IS-14 configuration. Any other name still follows the same table (RS-35); these are the
# names an alias may point to.
KNOWN_APIS = ("node", "query", "registration", "connection", "netctrl", "events", "channelmapping",
              "streamcompatibility", "ncp", "configuration")
# IS-09 System API: outside IS-10 authorization (the AMWA testing tool runs it without tokens,
# BCP-O-02): its paths are public like `/x-nmos`, and no claim or scope is consulted for them.
UNAUTHORISED_APIS = ("system",)
MAX_ALIASES = 32  # alias names in a site's map (a handful in practice)
MAX_API_NAME = 64

PUBLIC = 0  # `/` and `/x-nmos`: no token needed (RS-31)
BASE = 1  # `/x-nmos/<api>[/<version>]`: scope or claim gives read
RESOURCE = 2  # deeper: a specifier must match
OUTSIDE = 3  # not an /x-nmos path: the IS-10 table does not cover it (RS-36)

_HEX = "0123456789ABCDEFabcdef"
_HAS_STR_CLASSES = hasattr("", "isascii") and hasattr("", "isprintable")  # not on MicroPython
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _decode_unreserved(path):
    """Decode %XX only where XX is an unreserved character (RFC 3986 §6.2.2.2)."""
    out = []
    i = 0
    n = len(path)
    while True:
        j = path.find("%", i)
        if j < 0:
            out.append(path[i:])
            break
        out.append(path[i:j])
        h = path[j + 1 : j + 3]
        if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
            raise InvalidRequestError("bad percent-encoding in path")
        c = chr(int(h, 16))
        if c in _UNRESERVED:
            out.append(c)
        elif c == "/" or c == "\\" or c == "\x00":
            # An encoded slash would split differently in a router that decodes it
            # (single/..%2F..%2Fbulk): refuse rather than guess (RS-32 advice).
            raise InvalidRequestError("encoded slash in path")
        else:
            out.append("%" + h.upper())
        i = j + 3
        if i >= n:
            break
    return "".join(out)


def normalize_path(target):
    """Canonical path for authorization and routing (IS-10 RS-32). Raises InvalidRequestError."""
    if not isinstance(target, str) or len(target) > MAX_PATH_LEN:
        raise InvalidRequestError("bad request path")
    if target.startswith("http://") or target.startswith("https://"):  # absolute-form (RFC 9112 §3.2.2)
        slash = target.find("/", target.find("//") + 2)
        target = "/" if slash < 0 else target[slash:]
    q = target.find("?")
    if q >= 0:
        target = target[:q]
    f = target.find("#")
    if f >= 0:
        target = target[:f]
    if not target.startswith("/"):
        raise InvalidRequestError("request path must start with /")
    if _HAS_STR_CLASSES:
        # CPython: the same rule as the loop below, in C.
        if not (target.isascii() and target.isprintable()) or " " in target or "\\" in target:
            raise InvalidRequestError("bad character in path")
    else:
        for ch in target:
            if ch <= " " or ch >= "\x7f" or ch == "\\":
                raise InvalidRequestError("bad character in path")
    if "%" in target:
        target = _decode_unreserved(target)
    segs = target.split("/")
    if ".." in segs and "" in segs[1:-1]:
        # `a//../b` is b under RFC 3986 §5.2.4 but a/b for a router that merges
        # slashes first (nginx): refuse rather than authorize one and serve the other.
        raise InvalidRequestError("ambiguous path: '..' with repeated slashes")
    out = []
    for seg in segs:
        if seg == "" or seg == ".":
            continue  # repeated slashes collapse; "." segments vanish
        if seg == "..":
            if out:
                out.pop()  # RFC 3986 §5.2.4: never climbs above the root
            continue
        out.append(seg)
    return out


def classify(segments):
    """(kind, api, rest) for normalized path segments."""
    n = len(segments)
    if n == 0:
        return PUBLIC, None, None
    if segments[0] != "x-nmos":
        return OUTSIDE, None, None
    if n == 1 or segments[1] in UNAUTHORISED_APIS:
        return PUBLIC, None, None
    if n <= 3:
        return BASE, segments[1], ""
    return RESOURCE, segments[1], "/".join(segments[3:])


def _api_name(name):
    """An alias map entry's name: lower-case letters and digits (the `^x-nmos-[a-z]+$` claim
    names of IS-10 TOK-10, digits allowed), a leading `x-nmos-` dropped."""
    if not isinstance(name, str):
        raise ValueError("API alias names must be strings")
    n = name.strip().lower()
    if n.startswith("x-nmos-"):
        n = n[7:]
    if not n or len(n) > MAX_API_NAME:
        raise ValueError("API alias name %r is empty or too long" % name[:MAX_API_NAME])
    for ch in n:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9"):
            raise ValueError("API alias name %r: only letters and digits" % name[:MAX_API_NAME])
    return n


def parse_aliases(mapping):
    """A site's alias map {alias: api} ("nc": "ncp", "x-nmos-control": "ncp") as the
    {api: (claim name, ...)} that Permissions reads. Raises ValueError for anything unusable:
    an alias that is itself a known API name (`query` -> `node` would move grants between
    APIs), a target outside KNOWN_APIS, too many entries. None or {} -> {}."""
    if not mapping:
        return {}
    if not isinstance(mapping, dict):
        raise ValueError("API aliases must be a table of alias = api")
    if len(mapping) > MAX_ALIASES:
        raise ValueError("more than %d API aliases" % MAX_ALIASES)
    out = {}
    for alias in mapping:
        a = _api_name(alias)
        api = _api_name(mapping[alias])
        if api not in KNOWN_APIS:
            raise ValueError("API alias %r points to %r, not one of: %s" % (a, api, " ".join(KNOWN_APIS)))
        if a in KNOWN_APIS or a in UNAUTHORISED_APIS:
            raise ValueError("%r is an NMOS API name itself and cannot be an alias" % a)
        names = out.get(api) or []
        if a not in names:
            names.append(a)
        out[api] = names
    for api in out:
        names = out[api]
        names.sort()  # deterministic (MicroPython dicts keep no order); full key, so stability is moot
        out[api] = tuple(names)
    return out


# --- specifiers ---------------------------------------------------------------

_ANY = True  # the specifier "*": matches every path


def _compile_specifier(spec):
    if "*" not in spec:
        return spec  # literal: equality
    if spec == "*":
        return _ANY
    return spec.split("*")  # glob parts


# tuple of specifier strings -> compiled tuple. Pure and keyed by value, so tokens of one
# client (new iat/exp/jti, same x-nmos-* claims) reuse the work. Only lists that passed
# every check are stored; a key can only equal a stored one if it holds the same strings.
_compiled = {}


def _compile_list(value, counter):
    if value is None:
        return ()
    if type(value) is list:
        try:
            key = tuple(value)
            hit = _compiled.get(key)
        except TypeError:  # an unhashable member (a list or object): refused below
            key = hit = None
        if hit is not None:
            return hit
    elif not isinstance(value, list):
        raise ClaimError("x-nmos permission is not an array")
    else:
        key = None
    out = []
    for spec in value:
        if not isinstance(spec, str) or len(spec) > MAX_SPECIFIER_LEN:
            raise ClaimError("x-nmos path specifier is not a string")
        counter[0] += 1
        if counter[0] > MAX_SPECIFIERS:
            raise ClaimError("too many x-nmos path specifiers")
        out.append(_compile_specifier(spec))
    out = tuple(out)
    if key is not None:
        if len(_compiled) >= MAX_COMPILED:
            _compiled.clear()
        _compiled[key] = out
    return out


_NO_ALIASES = {}


class Permissions:
    """x-nmos-* claims and scope of one token, compiled per API on first use.

    Only the claim a request consults is type-checked and compiled (a Node sees
    one or two APIs); a malformed consulted claim raises ClaimError (401).
    `perms`: where the x-nmos-* claims are (the claims themselves, or what
    claims.nmos_claims found under `ext`); `aliases`: parse_aliases() output.
    """

    def __init__(self, claims, perms=None, aliases=None):
        self.claims = claims
        self.perms = claims if perms is None else perms
        self.aliases = aliases or _NO_ALIASES
        self.apis = {}  # (api, write) -> tuple of compiled specifiers

    @property
    def scopes(self):
        # Split on first use only: base-path reads are the one rule that consults scope.
        scope = self.claims.get("scope")
        return scope.split() if isinstance(scope, str) else ()

    def has_claim(self, api):
        if ("x-nmos-" + api) in self.perms:
            return True
        for alias in self.aliases.get(api, ()):
            if ("x-nmos-" + alias) in self.perms:
                return True
        return False

    def in_scope(self, api):
        scopes = self.scopes
        if api in scopes:
            return True
        for alias in self.aliases.get(api, ()):
            if alias in scopes:
                return True
        return False

    def claim_name(self, api):
        """The x-nmos-* name this token uses for `api`: its own, or the one alias present.
        Two spellings of one API in one token are refused, never merged (ClaimError, 401)."""
        name = "x-nmos-" + api
        alt = self.aliases.get(api)
        if alt is None:
            return name
        found = name if name in self.perms else None
        for alias in alt:
            other = "x-nmos-" + alias
            if other in self.perms:
                if found is not None:
                    raise ClaimError("x-nmos-%s given under two names" % api[:32])
                found = other
        return name if found is None else found

    def matchers(self, api, write):
        """Compiled specifiers of x-nmos-<api> for read or write; () when absent."""
        key = (api, write)
        m = self.apis.get(key)
        if m is None:
            name = self.claim_name(api)
            obj = self.perms.get(name)
            if obj is None:
                if name in self.perms:
                    raise ClaimError("%s is null" % name[:40])
                m = ()
            elif not isinstance(obj, dict):
                raise ClaimError("%s is not an object" % name[:40])
            else:
                # Unknown permission keys are ignored (IS-10 TOK-25).
                m = _compile_list(obj.get("write" if write else "read"), [0])
            self.apis[key] = m
        return m

    def check(self, method, segments):
        """Raise PermissionDeniedError unless (method, normalized path) is permitted."""
        kind, api, rest = classify(segments)
        return self.check_classified(method, kind, api, rest)

    def check_classified(self, method, kind, api, rest):
        """`check` for a path already classified by classify()."""
        if method in READ_METHODS:
            write = False
        elif method in WRITE_METHODS:
            write = True
        else:
            raise PermissionDeniedError("method not permitted")  # RS-33: never reaches a grant
        if kind == PUBLIC:
            return
        if kind == OUTSIDE:
            raise PermissionDeniedError("path outside /x-nmos")
        if kind == BASE and not write:
            # RS-31: base paths are readable with a matching scope or a claim (TOK-21).
            if not self.in_scope(api) and not self.has_claim(api):
                raise PermissionDeniedError("no scope or claim for this API")
            self.matchers(api, False)  # a malformed claim is still a token defect
            return
        ms = self.apis.get((api, write))  # compiled before: the claim was there then
        if ms is None:
            if not self.has_claim(api):
                raise PermissionDeniedError("no claim for this API")
            ms = self.matchers(api, write)
        for m in ms:
            if m is _ANY or (m == rest if type(m) is str else glob_match(m, rest)):
                return
        raise PermissionDeniedError("path not permitted for this method")


def is_public(segments):
    return classify(segments)[0] == PUBLIC
