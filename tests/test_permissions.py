"""permissions.py: path normalization and the IS-10 path table (RS-31..RS-35)."""

import pytest

from vectorfiles import load_vector
from nmosauth_lite.errors import InvalidRequestError, PermissionDeniedError
from nmosauth_lite.permissions import Permissions, classify, normalize_path, PUBLIC

PP = load_vector("nmos", "path-permission-cases.json")


def decide(claims, method, target):
    """allow / deny_401 / deny_403 using only permissions.py (token assumed valid)."""
    if method == "OPTIONS":
        return "allow"  # GEN-04
    segs = normalize_path(target)
    if classify(segs)[0] == PUBLIC:
        return "allow"
    if claims is None:
        return "deny_401"
    try:
        Permissions(claims).check(method, segs)
        return "allow"
    except PermissionDeniedError:
        return "deny_403"


@pytest.mark.parametrize("case", PP["cases"], ids=lambda c: c["id"])
def test_path_permission_cases_from_shared_vectors(case):  # IS-10 RS-31..RS-35
    claims = None if case["claims"] is None else PP["claim_sets"][case["claims"]]
    got = decide(claims, case["method"], case["target"])
    if case["expect"] == "allow_then_router_rejects":
        assert got == "allow"
        # and the router sees the same canonical path the authorizer judged
        assert normalize_path(case["target"])[-1] != ".."
    else:
        assert got == case["expect"]


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/", []),
        ("/x-nmos/", ["x-nmos"]),
        ("/x-nmos//connection///v1.1/single/", ["x-nmos", "connection", "v1.1", "single"]),
        ("/x-nmos/connection/v1.1/single/../bulk?x=/../", ["x-nmos", "connection", "v1.1", "bulk"]),
        ("/x-nmos/connection/v1.1/%2e%2E/%2E/x", ["x-nmos", "connection", "x"]),
        ("/../../..", []),
        ("/a/%7euser/%41", ["a", "~user", "A"]),
        ("/a/%3a#frag", ["a", "%3A"]),
        ("https://node1.example.com:8443/x-nmos/node?q", ["x-nmos", "node"]),
    ],
)
def test_normalize_path_rs32(target, expected):
    assert normalize_path(target) == expected


@pytest.mark.parametrize("target", ["/a/%2Fb", "/a/%2f..%2f", "/a\\b", "/a/%5c", "/a/%00", "/a/%zz", "/a/%4", "relative", "/a b", "/\x7f", "/é"])
def test_ambiguous_or_bad_paths_are_refused(target):
    with pytest.raises(InvalidRequestError):
        normalize_path(target)


def test_write_does_not_imply_read_tok24():
    p = Permissions({"x-nmos-connection": {"write": ["*"]}})
    p.check("PATCH", normalize_path("/x-nmos/connection/v1.1/single/receivers/x/staged"))
    with pytest.raises(PermissionDeniedError):
        p.check("GET", normalize_path("/x-nmos/connection/v1.1/single/receivers/x/staged"))


def test_unknown_methods_never_granted_rs33():
    p = Permissions({"x-nmos-node": {"read": ["*"], "write": ["*"]}})
    for m in ("TRACE", "CONNECT", "get", "PROPFIND"):
        with pytest.raises(PermissionDeniedError):
            p.check(m, normalize_path("/x-nmos/node/v1.3/self"))


def test_paths_outside_x_nmos_need_more_than_a_token_rs36():
    p = Permissions({"x-nmos-node": {"read": ["*"]}})
    with pytest.raises(PermissionDeniedError):
        p.check("GET", normalize_path("/ws/?uid=1"))


def test_only_star_is_special_rs34():
    p = Permissions({"x-nmos-node": {"read": ["a?c", "[ab]", "x.y", "q+"]}})
    for ok in ("a?c", "[ab]", "x.y", "q+"):
        p.check("GET", ["x-nmos", "node", "v1", ok])
    for bad in ("abc", "a", "xzy", "qq"):
        with pytest.raises(PermissionDeniedError):
            p.check("GET", ["x-nmos", "node", "v1", bad])


def test_multiple_stars_and_anchoring():
    p = Permissions({"x-nmos-c": {"read": ["*/receivers/*", "s*t*u"]}})
    p.check("GET", ["x-nmos", "c", "v1", "single", "receivers", "1", "staged"])
    p.check("GET", ["x-nmos", "c", "v1", "stu"])
    p.check("GET", ["x-nmos", "c", "v1", "sxxtyyu"])
    for bad in (["single", "receivers"], ["stux"], ["xstu"], ["st"]):
        with pytest.raises(PermissionDeniedError):
            p.check("GET", ["x-nmos", "c", "v1"] + bad)


def test_scope_gives_base_read_only_rs31():
    p = Permissions({"scope": "node  query"})
    p.check("GET", ["x-nmos", "node"])
    p.check("HEAD", ["x-nmos", "query", "v1.3"])
    with pytest.raises(PermissionDeniedError):
        p.check("GET", ["x-nmos", "node", "v1.3", "self"])
    with pytest.raises(PermissionDeniedError):
        p.check("POST", ["x-nmos", "node", "v1.3"])
    with pytest.raises(PermissionDeniedError):
        p.check("GET", ["x-nmos", "nod"])  # scope values compared exactly (RS-35)


@pytest.mark.parametrize("target", ["/x-nmos/c/v1/bulk//../single/x", "/x-nmos/c/v1/bulk/a//../../single/x",
                                    "/x-nmos/c/v1/bulk//%2e%2e/single/x"])
def test_dot_dot_next_to_repeated_slashes_is_refused_as_ambiguous(target):  # RS-32
    # RFC 3986 §5.2.4 gives bulk/single/x, a slash-merging router gives single/x: refuse both readings.
    with pytest.raises(InvalidRequestError):
        normalize_path(target)
