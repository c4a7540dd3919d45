"""OAuth 2.0 wire helpers shared by the endpoints: errors, form bodies, cache headers.

OAuthError carries an RFC 6749 §5.2 / RFC 7591 §3.2.2 / RFC 7009 §2.2.1 error code,
the HTTP status and extra headers; `parse_form` reads application/x-www-form-urlencoded
strictly (RFC 6749 §3.1: parameters without a value are omitted, repeated parameters
are an error). NO_STORE is what every response carrying tokens or secrets needs
(RFC 6749 §5.1, IS-10 AS-09).
"""

import urllib.parse
import secrets

MAX_FORM = 64 * 1024  # a token request with a client assertion is ~2 KiB
MAX_FIELDS = 32
MAX_DESCRIPTION = 200

NO_STORE = [("cache-control", "no-store"), ("pragma", "no-cache")]

# Registration errors (RFC 7591 §3.2.2) and token errors (RFC 6749 §5.2, RFC 7009 §2.2.1).
TOKEN_ERRORS = ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "unsupported_token_type")
REGISTRATION_ERRORS = ("invalid_redirect_uri", "invalid_client_metadata", "invalid_software_statement",
                       "unapproved_software_statement")


def _ascii_description(text):
    # RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote or backslash).
    out = "".join(c if " " <= c <= "~" and c not in '"\\' else "'" if c == '"' else "_" for c in text)
    return out[:MAX_DESCRIPTION]


class OAuthError(Exception):
    """An OAuth error answer: `error` code, `description`, HTTP `status`, extra `headers`."""

    def __init__(self, error, description="", status=400, headers=()):
        super().__init__(description or error)
        self.error = error
        self.description = _ascii_description(description)
        self.status = status
        self.headers = list(headers)

    def body(self):
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


def parse_form(body):
    """Decode a form body to {name: value}; raise OAuthError(invalid_request) when malformed."""
    if len(body) > MAX_FORM:
        raise OAuthError("invalid_request", "request body too large")
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body")
    out = {}
    for name, value in pairs:
        if value == "":
            continue  # RFC 6749 §3.1: a parameter without a value is as if omitted
        if name in out:
            raise OAuthError("invalid_request", "parameter %s repeated" % name[:32])
        out[name] = value
    return out


def media_type(content_type):
    """'application/x-www-form-urlencoded; charset=UTF-8' -> 'application/x-www-form-urlencoded'."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def add_query(uri, params):
    """Append query parameters to a redirect URI that may already have a query (RFC 6749 §3.1.2)."""
    sep = "&" if "?" in uri else "?"
    return uri + sep + urllib.parse.urlencode([(k, v) for k, v in params if v is not None])


def credential(nbytes):
    """A random base64url credential (client id, secret, refresh token) that never starts
    with '-': people paste these into command lines, where `--client-secret -3aN...`
    would be read as an option (1 draw in 64 otherwise)."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if value[0] != "-":
            return value
