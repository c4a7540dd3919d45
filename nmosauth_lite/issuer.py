"""Issuer identifiers and their RFC 8414 metadata.

Owns: checking an issuer URL (https, no query or fragment: RFC 8414 §2), the
metadata URL with the well-known segment inserted before the issuer's path
(RFC 8414 §3.1; IS-10 RS-06) and the two other places servers put it (the
segment appended to the issuer, and OpenID Connect Discovery's
`openid-configuration`), tried in that order by aio/metadata.py; validating a fetched metadata document (its
`issuer` must equal the issuer we asked, RFC 8414 §3.3; `jwks_uri` must be
https), and the looser issuer comparison IS-10 DS-14 asks for when the issuer
was built from a DNS-SD answer. No I/O; the key store and OAuth client fetch.
"""

from .errors import ConfigError, RemoteError

WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"  # OpenID Connect Discovery 1.0 §4
# The metadata locations tried for a configured issuer, in this order (names are logged and shown):
#   rfc8414               https://host/.well-known/oauth-authorization-server/<path>  (RFC 8414 §3.1)
#   issuer-appended       <issuer>/.well-known/oauth-authorization-server  (Keycloak and others)
#   openid-configuration  <issuer>/.well-known/openid-configuration  (OIDC-only servers)
METADATA_FORMS = ("rfc8414", "issuer-appended", "openid-configuration")
MAX_URL_LEN = 2048
MAX_METADATA_BYTES = 65536  # a real metadata document is 1-3 KiB


def split_url(url):
    """(scheme, host, port or None, path) of an absolute http(s) URL; raises ValueError."""
    if not isinstance(url, str) or len(url) > MAX_URL_LEN:
        raise ValueError("URL too long or not text")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("https", "http"):
        raise ValueError("URL must start with https://")
    for ch in url:
        if ch <= " " or ch >= "\x7f":
            raise ValueError("URL holds spaces or non-ASCII characters")
    slash = rest.find("/")
    authority = rest if slash < 0 else rest[:slash]
    path = "" if slash < 0 else rest[slash:]
    if "?" in authority or "#" in authority or "@" in authority or not authority:
        raise ValueError("URL authority is not host[:port]")
    port = None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError("bad IPv6 literal")
        host = authority[1:end]
        tail = authority[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise ValueError("bad IPv6 literal")
            port = tail[1:]
    else:
        host, colon, p = authority.partition(":")
        if colon:
            port = p
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("bad port")
        port = int(port)
    if not host:
        raise ValueError("empty host")
    return scheme, host, port, path


def check_issuer(issuer, allow_http=False):
    """Validate an issuer identifier (RFC 8414 §2); returns it unchanged. Raises ConfigError."""
    try:
        scheme, host, port, path = split_url(issuer)
    except ValueError as e:
        raise ConfigError("issuer %s: %s" % (str(issuer)[:80], e))
    if scheme != "https" and not allow_http:
        raise ConfigError("issuer %s is not https (IS-10 GEN-01; the lab-only insecure mode allows http)" % issuer[:80])
    if "?" in path or "#" in path:
        raise ConfigError("issuer %s has a query or fragment" % issuer[:80])
    return issuer


def metadata_url(issuer):
    """RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path."""
    scheme, host, port, path = split_url(issuer)
    if path.endswith("/"):
        path = path[:-1]
    authority = ("[%s]" % host) if ":" in host else host
    if port is not None:
        authority += ":%d" % port
    return "%s://%s%s%s" % (scheme, authority, WELL_KNOWN, path)


def metadata_urls(issuer):
    """[(form, url)] where a configured issuer's metadata may be, in the order to try them.

    For an issuer without a path the first two are one URL, given once. Every
    document found must still name `issuer` exactly (check_metadata).
    """
    first = metadata_url(issuer)
    base = issuer[:-1] if issuer.endswith("/") else issuer
    out = [("rfc8414", first)]
    appended = base + WELL_KNOWN
    if appended != first:
        out.append(("issuer-appended", appended))
    out.append(("openid-configuration", base + OIDC_WELL_KNOWN))
    return out


def _norm(url):
    scheme, host, port, path = split_url(url)
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if port is None:
        port = 443 if scheme == "https" else 80
    if path.endswith("/"):
        path = path[:-1]
    return scheme, host, port, path


def same_issuer(a, b):
    """IS-10 DS-14: same scheme, host (case, trailing dot ignored), port (443 default) and path."""
    try:
        return _norm(a) == _norm(b)
    except ValueError:
        return False


def check_metadata(doc, issuer, allow_http=False, loose=False):
    """Validate an RFC 8414 metadata document for `issuer`; returns it. Raises RemoteError.

    `loose` applies the DS-14 comparison (issuer built from DNS-SD); otherwise
    the document's issuer must equal ours exactly (RFC 8414 §3.3).
    """
    if not isinstance(doc, dict):
        raise RemoteError("metadata is not a JSON object")
    got = doc.get("issuer")
    if not isinstance(got, str):
        raise RemoteError("metadata has no issuer")
    if got != issuer and not (loose and same_issuer(got, issuer)):
        raise RemoteError("metadata issuer does not match the issuer asked for")
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise RemoteError("metadata has no jwks_uri")
    try:
        scheme = split_url(jwks_uri)[0]
    except ValueError:
        raise RemoteError("metadata jwks_uri is not a URL")
    if scheme != "https" and not allow_http:
        raise RemoteError("metadata jwks_uri is not https")
    for name in ("token_endpoint", "registration_endpoint", "authorization_endpoint", "revocation_endpoint"):
        v = doc.get(name)
        if v is not None and not isinstance(v, str):
            raise RemoteError("metadata %s is not a string" % name)
    return doc
