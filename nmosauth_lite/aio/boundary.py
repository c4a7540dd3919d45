"""What may cross protect's proxy, and how it is rewritten on the way (issue 11 §1).

Pure functions, no I/O: the fields the guard reads (IS-10 RS-22..RS-41), which targets and
which token-free requests are refused (RFC 9112 §3.2; only GET, HEAD and OPTIONS without a body
or upgrade pass without a token; a WebSocket upgrade only for a GET whose token was checked,
BCP-003-02), the canonical path sent upstream (RS-32), hop-by-hop fields dropped both ways
(RFC 9110 §7.6.1) and Host and X-Forwarded-*/Forwarded set from what we saw (RFC 7239).
"""

import ipaddress

from ..errors import ConfigError, InvalidRequestError
from ..guard import FIELDS as GUARD_FIELDS
from ..guard import fold_header, strip_access_token
from ..permissions import normalize_path
from .web import Response

# RFC 9110 §7.6.1 hop-by-hop fields, plus what we frame or set ourselves.
_HOP_REQUEST = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
                b"host", b"content-length", b"expect", b"x-forwarded-for", b"x-forwarded-proto",
                b"x-forwarded-host", b"forwarded", b"x-real-ip"}
# What a client may claim about earlier hops: believed (appended to) only from a trusted proxy.
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-real-ip")
# Issue 11 §1: what may reach the upstream without a token. Nothing else does.
TOKEN_FREE_METHODS = ("GET", "HEAD", "OPTIONS")  # on / and /x-nmos; OPTIONS anywhere (GEN-04)
PUBLIC_ALLOW = "GET, HEAD, OPTIONS"  # the Allow of a 405 on / and /x-nmos
REFUSED_METHODS = ("CONNECT", "TRACE")  # never forwarded: tunnels and reflection
MAX_TRUST_CACHE = 256  # client addresses remembered as trusted proxy or not
_HOP_RESPONSE = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
                 b"content-length", b"date"}  # our server writes its own Date


# The fields Guard.check reads (token, WebSocket upgrade, CORS pre-flight): only these are
# decoded for it, on every request (the hot path). Keep in step with guard.py.
_GUARD_FIELDS = dict((n.encode(), n) for n in GUARD_FIELDS)


def guard_headers(raw):
    """The request's [(lowercase bytes, bytes)] as the guard wants them: str dict of the fields
    it reads, repeated fields joined with ', ', a repeated Authorization kept as a list."""
    out = {}
    fields = _GUARD_FIELDS
    for n, v in raw:
        name = fields.get(n)
        if name is not None:
            fold_header(out, name, v.decode("latin-1"))
    return out


def answer_response(answer):
    """A guard Answer as a server Response (the server frames the body itself)."""
    return Response(answer.status, answer.body, [h for h in answer.headers if h[0].lower() != "content-length"])


def canonical_path(path):
    """The path the validator judged, as a string: unreserved escapes decoded, dot segments
    removed, repeated slashes merged; a trailing slash kept (NMOS listings use it)."""
    if "%" not in path and "//" not in path and "/." not in path:
        return path
    segs = normalize_path(path)
    tail = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    return "/" + "/".join(segs) + ("/" if segs and tail else "")


def connection_tokens(headers):
    """The field names a Connection header lists (lowercase bytes): hop-by-hop too."""
    out = set()
    for n, v in headers:
        if n == b"connection":
            out.update(t.strip().lower() for t in v.split(b",") if t.strip())
    return out


# --- admission ------------------------------------------------------------------------
def target_refusal(method, target, host):
    """RFC 9112 §3.2: authority-form is for CONNECT only, asterisk-form for OPTIONS only,
    absolute-form must name this server (`host`: the Host the client sent), never another
    one. For a target not in origin-form: None when it may pass, else the 400's message."""
    if target == "*":
        return None if method == "OPTIONS" else "Bad Request: '*' is for OPTIONS"
    scheme, sep, rest = target.partition("://")
    if not sep:
        return "Bad Request: authority-form target is not forwarded"
    authority = rest.split("/", 1)[0].split("?", 1)[0].lower()
    if scheme.lower() not in ("http", "https") or not authority or host is None or \
            authority != host.strip().lower():
        return "Bad Request: absolute-form target names another host"
    return None


def token_free_refusal(method, has_body):
    """A request the guard let pass without a token (/ and /x-nmos, or OPTIONS): None when it
    may be forwarded, else (status, message, headers) of its refusal (issue 11 §1)."""
    if method not in TOKEN_FREE_METHODS:
        return 405, "Method Not Allowed: only GET, HEAD and OPTIONS here", [("Allow", PUBLIC_ALLOW)]
    if has_body:
        return 400, "Bad Request: a request without a token carries no body", [("Connection", "close")]
    return None


def is_websocket_upgrade(method, upgrade):
    """BCP-003-02: only a GET whose token was checked becomes a WebSocket upgrade."""
    return method == "GET" and upgrade == "websocket"


# --- trusted proxies ---------------------------------------------------------------------
def parse_networks(specs):
    """Trusted proxy addresses or networks ("127.0.0.1", "10.0.0.0/8") as ip_network objects."""
    out = []
    for spec in specs or ():
        try:
            out.append(ipaddress.ip_network(str(spec).strip(), strict=False))
        except ValueError:
            raise ConfigError("trusted proxy %r is not an IP address or network" % str(spec)[:80])
    return tuple(out)


def is_in_networks(address, networks):
    """True when the IP `address` (zone id ignored, v4-mapped v6 as v4) is in one of `networks`."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in networks)
    except ValueError:
        return False


# --- the rewrite -----------------------------------------------------------------------
def upstream_target(base, target):
    """The target sent upstream: `base` + the canonical path (RS-32), access_token removed."""
    path, q, query = target.partition("?")
    try:
        path = canonical_path(path)
    except InvalidRequestError:
        pass  # judged without a path (OPTIONS): forwarded as sent
    return base + path + (strip_access_token("?" + query) if q else "")


def forward_headers(request, websocket, trusted, host_header, keep_host=False, strip_authorization=False):
    """The request fields sent upstream, Host first: hop-by-hop ones dropped, X-Forwarded-* and
    Forwarded from what we saw (appended to a `trusted` proxy's), our own framing."""
    hop = _HOP_REQUEST
    listed = connection_tokens(request.headers)
    out = [None]
    client = request.client[0] if request.client else None
    seen = {}  # a trusted proxy's X-Forwarded-* / Forwarded values
    client_host = None
    for n, v in request.headers:
        if n in hop or n in listed or n[:6] == b"proxy-":
            if n == b"host":
                client_host = v
            elif trusted and n in _FORWARDED:
                seen[n] = v if n not in seen else seen[n] + b", " + v
            continue
        if n == b"authorization" and strip_authorization:
            continue
        out.append((n, v))
    out[0] = (b"host", client_host if keep_host and client_host else host_header)
    proto = b"https" if request.tls else b"http"
    mine = {b"x-forwarded-for": (client or "unknown").encode(), b"x-forwarded-proto": proto,
            b"x-forwarded-host": client_host}
    for name, value in mine.items():  # what we saw, appended to what a trusted proxy said
        if value is not None:
            out.append((name, value if name not in seen else seen[name] + b", " + value))
    if trusted:
        if b"x-real-ip" in seen:
            out.append((b"x-real-ip", seen[b"x-real-ip"]))
        if b"forwarded" in seen:  # RFC 7239 §4: our element appended to the list
            node = client or "unknown"
            node = '"[%s]"' % node if ":" in node else node
            mine = b"for=%s;proto=%s" % (node.encode(), proto)
            out.append((b"forwarded", seen[b"forwarded"] + b", " + mine))
    if websocket:
        out.append((b"connection", b"upgrade"))
        out.append((b"upgrade", b"websocket"))
    head = request.head
    if head.chunked:
        out.append((b"transfer-encoding", b"chunked"))
    elif head.content_length is not None:
        out.append((b"content-length", b"%d" % head.content_length))
    return out


def response_headers(fields, cors):
    """The upstream's response fields without hop-by-hop ones, plus the guard's CORS fields
    `cors` where the upstream set none (IS-10 RS-27: on every response)."""
    hop = _HOP_RESPONSE
    listed = connection_tokens(fields)
    out = [(n, v) for n, v in fields if not (n in hop or n in listed or n[:6] == b"proxy-")]
    names = set(n for n, _ in out)
    return out + [(n, v) for n, v in cors if n.lower().encode() not in names]
