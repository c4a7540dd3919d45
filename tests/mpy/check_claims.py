"""claims: required claims and their JSON types, the validity window against a given
`now` (RFC 7519 §4.1.4, IS-10 RS-13/RS-14/RS-19), and audience matching
(tests/vectors/nmos/aud-cases.json)."""

import harness
from nmosauth_lite import claims as C
from nmosauth_lite.errors import AudienceError, ClaimError, ExpiredTokenError, NotYetValidError, TokenError

NOW = 1700000100
BASE = {"iss": "https://auth.example.com", "sub": "s", "aud": ["node1.example.com"], "exp": NOW + 60,
        "iat": NOW - 60, "client_id": "c"}

# Our choices for the implementation_defined audience cases (claims.py docstrings):
# a port or path never matches; `*` is a glob over the whole name, also across labels.
AUD_CHOICES = {"AU-12": False, "AU-13": False, "AU-14": True, "AU-15": True}


def _with(**changes):
    c = dict(BASE)
    for k in changes:
        if changes[k] is None:
            c.pop(k, None)
        else:
            c[k] = changes[k]
    return c


def _window(claims, now, leeway=0):
    nb, na = C.validity_window(claims, leeway)
    C.check_window(nb, na, now)


def check_current_token_passes():
    _window(BASE, NOW)
    harness.eq(C.check_required(BASE), "c", "client id")


def check_exp_is_exclusive():
    _window(BASE, NOW + 59)
    harness.raises(ExpiredTokenError, _window, BASE, NOW + 60)
    harness.raises(ExpiredTokenError, _window, BASE, NOW + 61)


def check_leeway_extends_both_ends():
    _window(BASE, NOW + 65, leeway=10)
    harness.raises(ExpiredTokenError, _window, BASE, NOW + 70, 10)
    future = _with(iat=NOW + 5)
    harness.raises(NotYetValidError, _window, future, NOW)
    _window(future, NOW, leeway=5)


def check_nbf_and_iat_in_the_future_are_refused():
    harness.raises(NotYetValidError, _window, _with(nbf=NOW + 1), NOW)
    harness.raises(NotYetValidError, _window, _with(iat=NOW + 1), NOW)
    _window(_with(nbf=NOW), NOW)
    _window(_with(iat=None, nbf=None), NOW)


def check_fractional_numeric_dates():
    _window(_with(exp=NOW + 0.5), NOW)
    harness.raises(ExpiredTokenError, _window, _with(exp=NOW + 0.5), NOW + 0.5)
    _window(_with(iat=NOW - 0.25), NOW)


def check_wrong_json_types_for_dates():
    for bad in (True, False, "1700000200", None, [NOW], {"t": NOW}, float("inf"), float("nan"), 1e14, -1e14):
        c = dict(BASE)
        c["exp"] = bad
        harness.raises(ClaimError, C.validity_window, c, 0)
    harness.raises(ClaimError, C.validity_window, _with(exp=None), 0)
    harness.raises(ClaimError, C.validity_window, _with(nbf="soon"), 0)


def check_required_claims():
    for name in ("iss", "sub", "aud"):
        harness.raises(ClaimError, C.check_required, _with(**{name: None}))
    harness.raises(ClaimError, C.check_required, _with(client_id=None))
    harness.eq(C.check_required(_with(client_id=None, azp="a")), "a", "azp alone")
    harness.raises(ClaimError, C.check_required, _with(azp="other"))
    harness.eq(C.check_required(_with(azp="c")), "c", "equal azp")


def check_required_claim_types():
    for name, bad in (("iss", 1), ("iss", ""), ("sub", ["s"]), ("aud", 5), ("aud", ["a", 1]), ("client_id", True),
                      ("scope", ["connection"])):
        c = dict(BASE)
        c[name] = bad
        harness.raises(ClaimError, C.check_required, c)
    harness.raises(ClaimError, C.check_required, _with(aud=["h"] * (C.MAX_AUD_VALUES + 1)))


def check_claim_errors_are_token_errors():
    harness.true(issubclass(ClaimError, TokenError), "ClaimError is a TokenError")
    harness.true(not issubclass(AudienceError, TokenError), "AudienceError is not")


def check_audience_configuration():
    harness.eq(C.normalize_audience(["Node1.Example.COM."]), [("node1.example.com", False)], "normalized")
    harness.eq(C.normalize_audience(["192.0.2.10"]), [("192.0.2.10", True)], "ip literal")
    for bad in ([], ["*.example.com"], ["node1.example.com:80"], [5]):
        harness.raises(ValueError, C.normalize_audience, bad)


def _aud_case_check(case):
    def check():
        hosts = C.normalize_audience([case["rs_host"]])
        got = C.audience_matches(case["aud"], hosts)
        want = case["expect"] == "match" if case["expect"] != "implementation_defined" else AUD_CHOICES[case["id"]]
        harness.eq(got, want, case["id"] + " " + case["note"][:60])
        if not want:
            harness.raises(AudienceError, C.check_audience, case["aud"], hosts)

    return check


def check_every_aud_case_is_covered():
    cases = harness.load_json("tests/vectors/nmos/aud-cases.json")["cases"]
    for case in cases:
        if case["expect"] == "implementation_defined":
            harness.true(case["id"] in AUD_CHOICES, case["id"] + " needs a documented choice")
        else:
            harness.true(case["expect"] in ("match", "no_match"), case["id"] + " expect")


CHECKS = [("aud " + c["id"], _aud_case_check(c)) for c in harness.load_json("tests/vectors/nmos/aud-cases.json")["cases"]]


def check_claims_location():
    # issue 20 §2: x-nmos-* claims at top level, under ext (Ory Hydra), or either (in both: refused)
    from nmosauth_lite.claims import nmos_claims

    node = {"read": ["*"]}
    top = {"sub": "a", "x-nmos-node": node}
    harness.true(nmos_claims(top, "top") is top, "top: the claims themselves")
    harness.eq(nmos_claims(top, "ext"), {}, "ext: nothing under ext")
    harness.eq(nmos_claims({"ext": {"x-nmos-node": node, "other": 1}}, "ext"), {"x-nmos-node": node}, "ext")
    harness.eq(nmos_claims({"ext": {"x-nmos-query": node}, "x-nmos-node": node}, "either"),
               {"x-nmos-query": node, "x-nmos-node": node}, "either: disjoint names")
    harness.raises(ClaimError, nmos_claims, {"ext": {"x-nmos-node": node}, "x-nmos-node": node}, "either")
    for ext in ([], "x", None):
        harness.raises(ClaimError, nmos_claims, {"ext": ext}, "ext")
