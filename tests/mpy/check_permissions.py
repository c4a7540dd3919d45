"""permissions: request-path normalization (IS-10 RS-32, RFC 3986 §5.2.4) and the IS-10
path table with x-nmos-* specifiers (tests/vectors/nmos/path-permission-cases.json)."""

import harness
from nmosauth_lite import permissions as P
from nmosauth_lite.errors import ClaimError, InvalidRequestError, PermissionDeniedError

CASES_FILE = "tests/vectors/nmos/path-permission-cases.json"


def check_normalize_path_segments():
    for target, want in (
        ("/", []),
        ("/x-nmos", ["x-nmos"]),
        ("/x-nmos/", ["x-nmos"]),
        ("//x-nmos///query//v1.3", ["x-nmos", "query", "v1.3"]),
        ("/x-nmos/connection/v1.1/single/../bulk", ["x-nmos", "connection", "v1.1", "bulk"]),
        ("/x-nmos/connection/v1.1/single/%2e%2E/bulk", ["x-nmos", "connection", "v1.1", "bulk"]),
        ("/../../../x-nmos", ["x-nmos"]),
        ("/x-nmos/./query/.", ["x-nmos", "query"]),
        ("/x-nmos/%71uery", ["x-nmos", "query"]),
        ("/x-nmos/a%3ab", ["x-nmos", "a%3Ab"]),
        ("/x-nmos/query/v1.3/nodes?paging.limit=10&x=/../..", ["x-nmos", "query", "v1.3", "nodes"]),
        ("/x-nmos/query#frag/..", ["x-nmos", "query"]),
        ("http://node1.example.com/x-nmos/query", ["x-nmos", "query"]),
        ("https://node1.example.com", []),
    ):
        harness.eq(P.normalize_path(target), want, target)


def check_normalize_path_refusals():
    for bad in ("x-nmos", "", "/x-nmos/a%2Fb", "/x-nmos/a%2fb", "/x-nmos/a%5Cb", "/x-nmos/a%00", "/x-nmos/%zz",
                "/x-nmos/%2", "/x-nmos/a b", "/x-nmos/\x01", "/x-nmos/a\\b", "/x-nmos/\u00e9", None, b"/x-nmos",
                "/" + "a" * P.MAX_PATH_LEN):
        harness.raises(InvalidRequestError, P.normalize_path, bad)


def check_classify():
    harness.eq(P.classify([]), (P.PUBLIC, None, None), "root")
    harness.eq(P.classify(["x-nmos"]), (P.PUBLIC, None, None), "/x-nmos")
    harness.eq(P.classify(["x-nmos", "query"]), (P.BASE, "query", ""), "api")
    harness.eq(P.classify(["x-nmos", "query", "v1.3"]), (P.BASE, "query", ""), "version")
    harness.eq(P.classify(["x-nmos", "query", "v1.3", "a", "b"]), (P.RESOURCE, "query", "a/b"), "resource")
    harness.eq(P.classify(["other"])[0], P.OUTSIDE, "outside")


def check_methods_outside_the_table_are_denied():
    perms = P.Permissions({"x-nmos-query": {"read": ["*"], "write": ["*"]}})
    for method in ("TRACE", "CONNECT", "get", "OPTIONS"):
        harness.raises(PermissionDeniedError, perms.check, method, ["x-nmos", "query", "v1.3", "nodes"])


def check_bad_permission_claims_are_claim_errors_when_consulted():
    path = ["x-nmos", "query", "v1.3", "nodes"]
    for claims in ({"x-nmos-query": ["*"]}, {"x-nmos-query": {"read": "*"}}, {"x-nmos-query": {"read": [1]}},
                   {"x-nmos-query": {"read": ["*"] * (P.MAX_SPECIFIERS + 1)}}, {"x-nmos-query": None}):
        harness.raises(ClaimError, P.Permissions(claims).check, "GET", path)
    # Unknown permission keys are ignored (IS-10 TOK-25).
    P.Permissions({"x-nmos-query": {"read": ["*"], "admin": True}}).check("GET", path)


def _decide(claim_sets, case):
    """'allow', 'deny_401' or 'deny_403' at the permission layer for one case."""
    segments = P.normalize_path(case["target"])
    if case["claims"] is None:
        if case["method"] == "OPTIONS" or P.is_public(segments):
            return "allow"
        return "deny_401"
    try:
        P.Permissions(claim_sets[case["claims"]]).check(case["method"], segments)
    except PermissionDeniedError:
        return "deny_403"
    return "allow"


def _case_check(claim_sets, case):
    def check():
        want = "allow" if case["expect"] == "allow_then_router_rejects" else case["expect"]
        harness.eq(_decide(claim_sets, case), want, case["id"] + " " + case["method"] + " " + case["target"])

    return check


def _path_checks():
    doc = harness.load_json(CASES_FILE)
    return [("path " + c["id"], _case_check(doc["claim_sets"], c)) for c in doc["cases"]]


CHECKS = _path_checks()


def check_known_apis_aliases_and_system():
    # issue 20 §3: IS-06..IS-14 names; aliases an authorization server uses; IS-09 outside IS-10
    for api in ("netctrl", "streamcompatibility", "ncp", "configuration", "channelmapping"):
        harness.true(api in P.KNOWN_APIS, api)
    harness.eq(P.classify(["x-nmos", "system", "v1.0", "global"])[0], P.PUBLIC, "system is public")
    aliases = P.parse_aliases({"nc": "ncp", "x-nmos-control": "ncp", "Control2": "ncp"})
    harness.eq(aliases, {"ncp": ("control", "control2", "nc")}, "parsed and sorted")
    for bad in ({"query": "node"}, {"nc": "nope"}, {"n c": "ncp"}, ["nc"]):
        harness.raises(ValueError, P.parse_aliases, bad)
    path = ["x-nmos", "ncp", "v1.0", "ws"]
    claims = {"x-nmos-nc": {"read": ["ws"]}}
    P.Permissions(claims, None, aliases).check("GET", path)
    harness.raises(PermissionDeniedError, P.Permissions(claims).check, "GET", path)  # no alias: no grant
    P.Permissions({"scope": "nc"}, None, aliases).check("GET", ["x-nmos", "ncp", "v1.0"])
    both = {"x-nmos-nc": {"read": ["ws"]}, "x-nmos-ncp": {"read": ["ws"]}}
    harness.raises(ClaimError, P.Permissions(both, None, aliases).check, "GET", path)
