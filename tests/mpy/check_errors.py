"""errors.py: one root, the 401/403/400/503 subtrees, one-argument constructors, with_attrs."""

import harness
from nmosauth_lite import errors as E

TOKEN_ERRORS = (
    E.MalformedTokenError, E.UnsupportedAlgorithmError, E.SignatureError, E.UntrustedIssuerError,
    E.ClaimError, E.ExpiredTokenError, E.NotYetValidError,
)
SCOPE_ERRORS = (E.AudienceError, E.PermissionDeniedError)
CONFIG_ERRORS = (E.KeyFormatError, E.BackendUnavailableError)


def check_every_error_derives_from_the_root():
    for cls in TOKEN_ERRORS + SCOPE_ERRORS + CONFIG_ERRORS + (
        E.TokenError, E.ScopeError, E.ConfigError, E.InvalidRequestError, E.KeyFetchPendingError, E.ProtocolError,
    ):
        harness.true(issubclass(cls, E.NmosAuthError), cls.__name__ + " under NmosAuthError")
        harness.true(issubclass(cls, Exception), cls.__name__ + " is an Exception")


def check_token_defects_are_token_errors_and_scope_errors_are_not():
    for cls in TOKEN_ERRORS:
        harness.true(issubclass(cls, E.TokenError), cls.__name__ + " under TokenError")
        harness.true(not issubclass(cls, E.ScopeError), cls.__name__ + " not under ScopeError")
    for cls in SCOPE_ERRORS:
        harness.true(issubclass(cls, E.ScopeError), cls.__name__ + " under ScopeError")
        harness.true(not issubclass(cls, E.TokenError), cls.__name__ + " not under TokenError")
    harness.true(issubclass(E.ExpiredTokenError, E.ClaimError), "expired is a claim error")
    harness.true(issubclass(E.NotYetValidError, E.ClaimError), "not-yet-valid is a claim error")
    for cls in CONFIG_ERRORS:
        harness.true(issubclass(cls, E.ConfigError), cls.__name__ + " under ConfigError")


def check_one_except_catches_every_token_defect():
    for cls in TOKEN_ERRORS:
        try:
            raise cls("x")
        except E.TokenError as e:
            harness.eq(type(e), cls, "caught type")


def check_message_is_the_single_argument():
    e = E.SignatureError("bad signature")
    harness.eq(e.message, "bad signature", "message")
    harness.eq(str(e), "bad signature", "str")
    harness.eq(e.args, ("bad signature",), "args")
    harness.eq(E.ClaimError().message, "", "default message")


def check_status_hints_and_retry_after():
    harness.eq(E.ProtocolError("x").status_hint, 400, "ProtocolError.status_hint")
    harness.eq(E.KeyFetchPendingError("x").retry_after, 1, "default retry_after")


def check_with_attrs_sets_attributes_and_returns_the_exception():
    e = E.with_attrs(E.KeyFetchPendingError("fetching"), retry_after=7, kid="k1")
    harness.eq(type(e), E.KeyFetchPendingError, "type")
    harness.eq(e.retry_after, 7, "retry_after")
    harness.eq(e.kid, "k1", "kid")
    harness.eq(e.message, "fetching", "message")
    harness.eq(E.KeyFetchPendingError("y").retry_after, 1, "class default untouched")


def check_causes_are_a_closed_set_decided_by_class():
    # issue 23: metrics count by these names; a message (which may quote a token) never decides one
    harness.true("other" in E.CAUSES and len(E.CAUSES) == len(set(E.CAUSES)), "CAUSES closed, unique")
    harness.eq(E.cause_of(E.ExpiredTokenError("alg X\nY")), "expired")
    harness.eq(E.cause_of(E.UnsupportedAlgorithmError("anything")), "unsupported_alg")
    harness.eq(E.cause_of(E.ClaimError("x")), "claim")
    harness.eq(E.cause_of(E.AudienceError("x")), "audience")
    harness.eq(E.cause_of(ValueError("x")), "other")
    for cls in TOKEN_ERRORS + SCOPE_ERRORS + (E.InvalidRequestError, E.KeyFetchPendingError):
        harness.true(E.cause_of(cls("m")) in E.CAUSES, cls.__name__ + " has a cause")
