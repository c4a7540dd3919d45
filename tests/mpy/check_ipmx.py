"""profile, ipmx, validator_ipmx: the IPMX device profile (TR-10-SEC) on the device. Profiles are
read-only data; RFC 4592 wildcards; OAIM audience modes; the §9 index-array evaluator with the
prose's choices (every index bounds-checked, integers only); claim rules (iat ignored, the 30-minute
tolerance, ext duplicates identical); API of a path (SEC-36, SEC-37); and TokenValidator(profile=
"ipmx") end to end with backend="pure" on the lane's RS256 token."""

import harness
from nmosauth_lite import TokenValidator, ipmx, ipmx_access
from nmosauth_lite import profile as P
from nmosauth_lite.errors import AudienceError, ClaimError, ConfigError, PermissionDeniedError

NODE = "node-cc91629.example.com"
OTHER = "node-cc91699.example.com"


def check_profiles_are_read_only_data():
    harness.true(P.get_profile("ipmx") is P.IPMX, "by name")
    harness.eq(P.IPMX.algorithms, ("RS256", "RS512", "ES256", "ES512"), "SEC-14")
    harness.eq((P.IPMX.key_refresh, P.IPMX.key_jitter, P.IPMX.key_max_age), (82800, 3600, 129600), "SEC-52, SEC-54")
    harness.eq(P.IS10.public_paths, ("/", "/x-nmos"), "RS-31")
    harness.raises(AttributeError, setattr, P.IPMX, "algorithms", ("RS384",))
    harness.raises(ValueError, P.get_profile, "ipmx2")


def check_wildcards():
    for pattern, name, ok in (("*.example.com", "a.example.com", True), ("*.example.com", "a.b.example.com", True),
                              ("*.example.com", "example.com", False), ("*.Example.COM", "a.example.com.", True),
                              ("a*.example.com", "ab.example.com", False), ("*.example.com", "a..example.com", False)):
        harness.eq(ipmx.wildcard_matches(pattern, name), ok, pattern + " " + name)


def check_audience_modes():
    a0 = ipmx.Audience(0, "CC91629", [NODE, "n1.studio.example.com"])
    harness.true(a0.entry_allows("*") and a0.entry_allows(NODE.upper()), "serial + cert name")
    harness.true(not a0.entry_allows("x-cc91629.example.com"), "SEC-27: also a certificate name")
    harness.true(not a0.entry_allows("*.studio.example.com"), "no wildcards in mode 0")
    a1 = ipmx.Audience(1, None, [NODE, "n1.studio.example.com"])
    harness.true(a1.entry_allows("*.studio.example.com") and not a1.entry_allows(OTHER), "mode 1")
    a2 = ipmx.Audience(2, "CC91629", [NODE, "n1.studio.example.com"])
    harness.true(a2.entry_allows(NODE) and a2.entry_allows("*.studio.example.com"), "mode 2")
    harness.raises(ValueError, ipmx.Audience, 0, None, [NODE])
    harness.raises(ValueError, ipmx.Audience, 1, None, [])


def check_index_arrays():
    E = ipmx_access.eval_attr
    harness.eq(E({"read": ["*"]}, "read", [False]), ipmx_access.ALLOW, "star")
    harness.eq(E({"read": [""]}, "read", [True]), ipmx_access.DENY, "empty string")
    harness.eq(E({}, "read", [True]), ipmx_access.DENY, "absent")
    harness.eq(E({"read": ["single/*"]}, "read", [True]), ipmx_access.INVALID, "SEC-68")
    harness.eq(E({"read": [1, 0]}, "read", [False, True]), ipmx_access.ALLOW, "allow-list")
    harness.eq(E({"read": [0, -1]}, "read", [True, True]), ipmx_access.DENY, "deny-list")
    harness.eq(E({"read": [-1]}, "read", [True, False]), ipmx_access.ALLOW, "deny-only")
    harness.eq(E({"read": [-1, 0]}, "read", [True, True]), ipmx_access.INVALID, "SEC-39 order")
    harness.eq(E({"read": [0, 7]}, "read", [True]), ipmx_access.INVALID, "A8: every index bounds-checked")
    harness.eq(E({"read": [True]}, "read", [True, True]), ipmx_access.INVALID, "A9: no booleans")
    harness.eq(E({"read": [0.0]}, "read", [True]), ipmx_access.INVALID, "A9: no floats")


def _claims(**over):
    c = {"iss": "https://auth.example.com", "sub": "op", "client_id": "ctl", "aud": [NODE], "exp": 1000,
         "scope": "node connection", "x-nmos-connection": {"read": ["*"], "write": ["*"]}}
    for k in over:
        if over[k] is None:
            c.pop(k)
        else:
            c[k] = over[k]
    return c


def check_claim_rules():
    harness.eq(ipmx.check_claims(_claims(iat="x"), 1800), (-1e13 - 1800, 2800), "iat ignored, tolerance")
    for name in ("iss", "aud", "sub", "exp", "scope", "client_id"):
        harness.raises(ClaimError, ipmx.check_claims, _claims(**{name: None}), 0)
    harness.raises(ClaimError, ipmx.check_claims, _claims(aud=NODE), 0)
    harness.raises(ClaimError, ipmx.check_claims, _claims(), 0, "client_credentials")
    harness.raises(ClaimError, ipmx.check_claims, _claims(ext=[1]), 0)
    harness.raises(ClaimError, ipmx.check_claims, _claims(ext={"x-nmos-connection": {"read": [""]}}), 0)
    ipmx.check_claims(_claims(ext={"x-nmos-connection": {"read": ["*"], "write": ["*"]}}), 0)


def check_access_order_and_outcomes():
    aud = ipmx.Audience(0, "CC91629", [NODE])
    a = ipmx_access.Access(_claims(), aud, "either")
    a.check(("connection",), True)
    harness.raises(PermissionDeniedError, a.check, ("query",), False)
    a = ipmx_access.Access(_claims(aud=[OTHER], scope="node"), aud, "either")
    harness.raises(AudienceError, a.check, ("connection",), False)  # audience before scope (SEC-24)
    a = ipmx_access.Access(_claims(**{"x-nmos-connection": None}), aud, "either")
    a.check(("connection",), False)
    harness.raises(PermissionDeniedError, a.check, ("connection",), True)
    a = ipmx_access.Access(_claims(**{"x-nmos-connection": {"read": ["*"], "write": ["a/*"]}}), aud, "either")
    harness.raises(ClaimError, a.check, ("connection",), False)
    harness.eq(ipmx.api_scopes([]), ("node",), "/")
    harness.eq(ipmx.api_scopes(["x-nmos"]), ("node",), "/x-nmos")
    harness.eq(ipmx.api_scopes(["x-manufacturer", "a"]), ("manufacturer",), "manufacturer")
    harness.eq(ipmx.api_scopes(["x-nmos", "ncp", "v1.0"]), ("nc", "control"), "IS-12")
    harness.eq(ipmx.api_scopes(["other"]), None, "outside")
    harness.true(ipmx.read_write(ipmx.UPGRADE, False) and not ipmx.read_write(ipmx.UPGRADE, True), "SEC-46")


def check_validator_end_to_end():
    d = harness.load_json("tests/mpy/data/lane-vectors.json")
    v = TokenValidator(jwks=d["jwks"], backend="pure", profile="ipmx", oaim=1, cert_names=["node1.example.com"])
    r = v.check(d["tokens"]["RS256"], "GET", "/x-nmos/query/v1.3/nodes", d["now"])
    # signature, typ and claims pass on the device; its IS-10 aud "https://*.example.com" names no Node here
    harness.eq((r.status, r.error, r.status_counter), (403, "insufficient_scope", "ro_denied_aud"), "aud")
    r = v.check(d["tokens"]["RS256"], "GET", "/", d["claims"]["exp"] + 1800)
    harness.eq((r.status, r.status_counter), (401, "expired_token"), "30-minute tolerance ends")
    harness.eq(v.check(None, "GET", "/", d["now"]).status, 401, "SEC-37: nothing public")
    harness.raises(ConfigError, TokenValidator, jwks=d["jwks"], profile="ipmx", oaim=0, cert_names=["a"])


def check_client_binding():
    # SEC-44: case-insensitive (ASCII), a wildcard never matches, empty names never match
    for client_id, names, ok in (("ctl-1", ["ctl-1"], True), ("CTL-1", ["x", "ctl-1"], True),
                                 ("ctl-1", ["*.ctl-1", "ctl-*"], False), ("*", ["*"], False),
                                 ("ctl-1", ["", "ctl-1."], False), ("ctl-1", [], False),
                                 ("\u00c9t\u00e9", ["\u00e9t\u00e9"], False), ("\u00e9t\u00e9", ["\u00c9T\u00c9"], False),
                                 ("\u00e9t\u00e9", ["\u00e9T\u00e9"], True), ("ctl-1", "ctl-1", False),
                                 (None, ["ctl-1"], False), ("", [""], False)):
        harness.eq(ipmx.client_id_bound(client_id, names), ok, repr((client_id, names)))
    d = harness.load_json("tests/mpy/data/lane-vectors.json")
    v = TokenValidator(jwks=d["jwks"], backend="pure", profile="ipmx", oaim=1, cert_names=["node1.example.com"])
    tok = d["tokens"]["RS256"]
    r = v.check(tok, "GET", "/x-nmos/query/v1.3/nodes", d["now"], ["mpy-lane@example.com"])  # sub: SEC-45
    harness.eq((r.status, r.error, r.status_counter), (401, "invalid_token", "invalid_token"), "binding fails")
    r = v.check(tok, "GET", "/x-nmos/query/v1.3/nodes", d["now"], ["other", "MPY-LANE-CLIENT"])
    harness.eq((r.status, r.status_counter), (403, "ro_denied_aud"), "binding passes, then the decision")
    r = v.check(tok, "GET", "/x-nmos/query/v1.3/nodes", d["now"])
    harness.eq(r.status, 403, "no client certificate: no binding")
