"""The one exception tree of nmosauth-lite.

Every error the package raises for bad input derives from NmosAuthError, so an
adapter can catch the whole family in one `except`. Token defects (anything that
makes a bearer token unacceptable in itself) are TokenError -> HTTP 401
invalid_token (IS-10 RS-23); a valid token that does not cover the request is
ScopeError -> 403 insufficient_scope (RS-24, RS-25). Wire parsers (HTTP, DNS)
raise ProtocolError subclasses carrying a status hint, in the style of h11.
Core rule: each exception takes one message argument; extra data is set as
attributes after construction (MicroPython compatible).
"""


class NmosAuthError(Exception):
    """Root of every error this package raises on purpose."""

    def __init__(self, message=""):
        super().__init__(message)

    @property
    def message(self):
        return self.args[0] if self.args else ""


# --- configuration (CLI exit 2) --------------------------------------------

class ConfigError(NmosAuthError):
    """Bad local configuration: unreadable JWKS file, unknown backend, bad option."""


class KeyFormatError(ConfigError):
    """A JWK or JWK Set that cannot be used (wrong members, bad encoding, weak key)."""


class BackendUnavailableError(ConfigError):
    """The requested crypto backend (or the library it needs) is not importable."""


# --- bearer tokens: 401 invalid_token ---------------------------------------

class TokenError(NmosAuthError):
    """Any defect of a token itself (RFC 6750 §3.1 invalid_token)."""


class MalformedTokenError(TokenError):
    """Not a well-formed compact JWS / JWT (segments, base64url, JSON, sizes)."""


class UnsupportedAlgorithmError(TokenError):
    """`alg` outside the configured allow-list, `none`, HS*, or unknown `crit`."""


class SignatureError(TokenError):
    """No trusted key of the right type verifies the signature (IS-10 RS-08)."""


class UntrustedIssuerError(TokenError):
    """`iss` is not a configured or discovered issuer (IS-10 RS-10)."""


class ClaimError(TokenError):
    """A required claim is missing, has the wrong JSON type or a bad value."""


class ExpiredTokenError(ClaimError):
    """now >= exp (+ leeway): RFC 7519 §4.1.4, IS-10 §12 A8."""


class NotYetValidError(ClaimError):
    """iat in the future or now < nbf (IS-10 RS-13, RS-14)."""


class NoKeysError(TokenError):
    """No usable key is held: none fetched yet, or all older than the profile's maximum key
    age (IPMX SEC-48, SEC-53, SEC-54: fail closed with 401, never 503)."""


# --- bearer tokens: 403 insufficient_scope ----------------------------------

class ScopeError(NmosAuthError):
    """A valid token that does not cover this request (RFC 6750 §3.1 insufficient_scope)."""


class AudienceError(ScopeError):
    """No `aud` value names this resource server (IS-10 RS-15; 403 per RS-25)."""


class PermissionDeniedError(ScopeError):
    """API, path or method not permitted by the x-nmos-* claims or scope (RS-31..RS-35)."""


# --- request shape: 400 invalid_request -------------------------------------

class InvalidRequestError(NmosAuthError):
    """The request carries credentials in a malformed way (RFC 6750 §3.1 invalid_request)."""


# --- keys being fetched: 503 + Retry-After ----------------------------------

class KeyFetchPendingError(NmosAuthError):
    """A trusted issuer's keys are being fetched right now (IS-10 RS-07).

    `retry_after` (whole seconds) is set as an attribute by whoever raises it.
    """

    retry_after = 1


# --- wire protocols ---------------------------------------------------------

class ProtocolError(NmosAuthError):
    """Bad peer input on a wire protocol. `status_hint` says how to answer it."""

    status_hint = 400


def with_attrs(exc, **attrs):
    """Set attributes on an exception and return it: `raise with_attrs(E("m"), x=1)`."""
    for name in attrs:
        setattr(exc, name, attrs[name])
    return exc


class RemoteError(NmosAuthError):
    """A remote party (authorization server, DNS server) answered something unusable.

    Raised for metadata and JWKS documents that break RFC 8414 / RFC 7517 or our
    limits, and for failed fetches; the key store keeps its last good keys.
    """


# --- decision causes: the closed set metrics count by (issue 23) -------------------
# A label a client can choose (an `alg`, an issuer, a claim value) would let anyone fill the
# metrics' series cap; only these names, chosen here, are ever used. Extend by appending.
CAUSES = ("ok", "public", "no_token", "malformed", "unsupported_alg", "bad_signature", "untrusted_issuer",
          "expired", "not_yet_valid", "claim", "audience", "permission", "invalid_request", "key_pending",
          "other")
_CAUSE_BY_CLASS = (  # subclasses before their parents
    (MalformedTokenError, "malformed"), (UnsupportedAlgorithmError, "unsupported_alg"),
    (SignatureError, "bad_signature"), (UntrustedIssuerError, "untrusted_issuer"),
    (ExpiredTokenError, "expired"), (NotYetValidError, "not_yet_valid"), (ClaimError, "claim"),
    (AudienceError, "audience"), (PermissionDeniedError, "permission"), (ScopeError, "permission"),
    (InvalidRequestError, "invalid_request"), (KeyFetchPendingError, "key_pending"),
)


def cause_of(exc):
    """The CAUSES name for an exception (its class decides, never its message)."""
    for cls, name in _CAUSE_BY_CLASS:
        if isinstance(exc, cls):
            return name
    return "other"
