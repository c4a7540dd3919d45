"""What `attach` forwards from the Node to its Registry, and how (issue 19 §1): pure functions.

The mirror of aio/boundary.py for outbound calls. A request passes when its target names no
host or the Registry's (or ours): any other host is 403, so this is never an open proxy. Its
path, made canonical as protect does (IS-10 RS-32), must be a path of the IS-04 Registration
API (or of another API named in the config), its method one that path has (IS-04 RAML:
POST resource, GET/DELETE resource/{type}/{id}, GET/POST health/nodes/{id}, reads of the base
paths); otherwise 403 or 405, in NMOS error JSON. Outbound fields lose hop-by-hop ones (RFC
9110 §7.6.1) and the Node's own Authorization, access_token and cookies (a token is ours to attach).
"""

from ..errors import InvalidRequestError
from ..guard import strip_access_token
from ..permissions import normalize_path

MAX_TARGET = 2048  # request-target characters judged at all (IS-04 paths are < 150)
MAX_API_NAME = 32
MAX_VERSION = 12  # "v1.3"; the digits bounded as in the advert check
MAX_RETRY_AFTER = 300  # seconds a Registry's Retry-After holds it at most (BCP-003-02 BCP-N-05)
SHORT_RETRY_AFTER = 10  # at most this: wait for the same Registry (BCP-N-05); longer: fail over
REGISTRATION = "registration"
READ = ("GET", "HEAD", "OPTIONS")
REFUSED_METHODS = ("CONNECT", "TRACE")  # tunnels and reflection: never
# IS-04 Registration API resource types (RegistrationAPI.raml, resource/{resourceType}/{resourceId})
RESOURCE_TYPES = ("nodes", "devices", "sources", "flows", "senders", "receivers")
# Methods of every other named API (issue 19 §1: "any other API named in its config")
OTHER_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
# RFC 9110 §7.6.1 hop-by-hop fields, what we frame or set, and what is never the Node's to send on
_DROP = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"host",
         b"content-length", b"expect", b"authorization", b"cookie", b"forwarded", b"x-forwarded-for",
         b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"}
_ID_SHAPE = (8, 4, 4, 4, 12)
_HEX = "0123456789abcdefABCDEF"


class Admission:
    """The verdict on one request. `status` 0: forward `target` (canonical path + query) for
    `api`/`version` (None at a base path); otherwise answer `status` with `message` and, for a
    405, `allow`."""

    __slots__ = ("status", "message", "allow", "target", "api", "version", "heartbeat")

    def __init__(self, status=0, message="", allow=None, target=None, api=None, version=None, heartbeat=False):
        self.status = status
        self.message = message
        self.allow = allow
        self.target = target
        self.api = api
        self.version = version
        self.heartbeat = heartbeat

    def __repr__(self):
        return "Admission(%d, %r, %r)" % (self.status, self.message or self.target, self.allow)


def refuse(status, message, allow=None):
    return Admission(status, message, allow)


def is_api_name(name):
    """An NMOS API name as in /x-nmos/<api>: lowercase letters, digits and '-' (IS-04 APIs)."""
    return 0 < len(name) <= MAX_API_NAME and all("a" <= c <= "z" or "0" <= c <= "9" or c == "-" for c in name) \
        and name[0] != "-"


def is_version(text):
    """An NMOS API version as in the path: v<major>.<minor>, decimal digits."""
    major, dot, minor = text[1:].partition(".")
    return len(text) <= MAX_VERSION and text[:1] == "v" and dot == "." and major.isdigit() and minor.isdigit() \
        and major.isascii() and minor.isascii()


def is_resource_id(text):
    """An IS-04 resource id: a UUID's 8-4-4-4-12 hex groups (IS-04 schemas)."""
    groups = text.split("-")
    return len(groups) == 5 and all(len(g) == n and all(c in _HEX for c in g) for g, n in zip(groups, _ID_SHAPE))


def host_of(authority):
    """The host of an authority ("[v6]:port", "name:port", "name"), lowercased without a
    trailing dot; None when it carries userinfo or is empty."""
    if "@" in authority or not authority:
        return None
    if authority.startswith("["):
        host, sep, _rest = authority[1:].partition("]")
        return host.lower() if sep and host else None
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    host = host.lower().rstrip(".")
    return host or None


def split_target(target, hosts):
    """(path-and-query, None) for a target we may forward, or (None, Admission refusal).
    `hosts`: names an absolute-form target may name (the Registry's and ours, lowercase)."""
    if len(target) > MAX_TARGET:
        return None, refuse(414, "URI Too Long")
    if target[:1] == "/":
        return target, None
    if target == "*":
        return None, refuse(400, "Bad Request: '*' is not forwarded")
    scheme, sep, rest = target.partition("://")
    if not sep:  # authority-form is CONNECT's: a tunnel would carry no token of ours
        return None, refuse(403, "Forbidden: attach forwards only to its Registry")
    if scheme.lower() not in ("http", "https"):
        return None, refuse(400, "Bad Request: unsupported scheme")
    cut = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if 0 <= i < cut:
            cut = i
    host = host_of(rest[:cut])
    if host is None or host not in hosts:
        return None, refuse(403, "Forbidden: attach forwards only to its Registry")
    tail = rest[cut:]
    if tail[:1] == "?":
        tail = "/" + tail
    return (tail or "/"), None


def registration_methods(rest):
    """The methods IS-04's Registration API has at `rest` (the path segments after
    /x-nmos/registration/<ver>), or None when it has no such path."""
    n = len(rest)
    if n == 0:
        return READ
    if rest[0] == "resource":
        if n == 1:
            return ("POST", "OPTIONS")
        if n == 3 and rest[1] in RESOURCE_TYPES and is_resource_id(rest[2]):
            return ("GET", "HEAD", "DELETE", "OPTIONS")
        return None
    if rest[0] == "health" and n == 3 and rest[1] == "nodes" and is_resource_id(rest[2]):
        return ("GET", "HEAD", "POST", "OPTIONS")
    return None


def api_methods(api, rest):
    """Methods of a named API at `rest`: the Registration API's table, the Query API's
    (reads; POST subscriptions, DELETE subscriptions/{id}), any other API's whole verb set."""
    if api == REGISTRATION:
        return registration_methods(rest)
    if api == "query":
        if rest[:1] == ["subscriptions"] and len(rest) == 1:
            return READ + ("POST",)
        if rest[:1] == ["subscriptions"] and len(rest) == 2:
            return READ + ("DELETE",)
        return READ
    return OTHER_METHODS


def admit(method, target, hosts, apis=(REGISTRATION,)):
    """The whole admission of one request (see the module docstring). `apis`: the API names
    forwarded (the Registration API always among them in a real config)."""
    if method in REFUSED_METHODS:
        return refuse(405, "Method Not Allowed: %s is not forwarded" % method, "GET, HEAD, OPTIONS, POST, DELETE")
    raw, refused = split_target(target, hosts)
    if refused is not None:
        return refused
    path, q, query = raw.partition("?")
    path = path.partition("#")[0]
    query = query.partition("#")[0]
    try:
        segs = normalize_path(path)
    except InvalidRequestError:
        return refuse(400, "Bad Request: malformed path")
    # RS-32's canonical path; an access_token in the query is the Node's credential, never sent on
    canonical = strip_access_token("/" + "/".join(segs) + ("?" + query if q else ""))
    if segs[:1] != ["x-nmos"]:
        return refuse(403, "Forbidden: only NMOS API paths are forwarded")
    if len(segs) == 1:  # /x-nmos: the list of APIs
        return _read_only(method, canonical, None, None)
    api = segs[1]
    if api not in apis:
        return refuse(403, "Forbidden: the %s API is not forwarded" % (api[:MAX_API_NAME] if is_api_name(api)
                                                                         else "requested"))
    if len(segs) == 2:  # /x-nmos/<api>: its versions
        return _read_only(method, canonical, api, None)
    version = segs[2]
    if not is_version(version):
        return refuse(403, "Forbidden: not an API version")
    allowed = api_methods(api, segs[3:])
    if allowed is None:
        return refuse(403, "Forbidden: not a path of the %s API" % api)
    if method not in allowed:
        return refuse(405, "Method Not Allowed", ", ".join(allowed))
    heartbeat = api == REGISTRATION and segs[3:4] == ["health"] and method == "POST"
    return Admission(0, target=canonical, api=api, version=version, heartbeat=heartbeat)


def _read_only(method, canonical, api, version):
    if method not in READ:
        return refuse(405, "Method Not Allowed", ", ".join(READ))
    return Admission(0, target=canonical, api=api, version=version)


def outbound_headers(fields):
    """The Node's request fields [(lowercase bytes, bytes)] as sent to the Registry: hop-by-hop
    ones (and those its Connection lists), Proxy-*, Host, framing, forwarding fields, cookies
    and the Node's own Authorization dropped; the caller adds Host, framing and our token."""
    listed = set()
    for n, v in fields:
        if n == b"connection":
            listed.update(t.strip().lower() for t in v.split(b",") if t.strip())
    return [(n, v) for n, v in fields if n not in _DROP and n not in listed and n[:6] != b"proxy-"]


def hold_seconds(retry_after):
    """A Registry's 503 Retry-After (already parsed to seconds, or None) as the time it is left
    alone: at least 1 s, at most MAX_RETRY_AFTER (a Registry cannot park us for a day)."""
    if retry_after is None:
        return None
    return max(1, min(int(retry_after), MAX_RETRY_AFTER))
