"""The newer NMOS APIs, a site's alias map and where a token keeps its x-nmos-* claims (issue 20
§2, §3), through the public TokenValidator and Guard: IS-06..IS-14 names in the IS-10 path table
(RS-31, RS-35; BCP-O-01, BCP-O-02), the IS-09 System API outside authorization, aliases that
let an authorization server's `nc` or `x-nmos-control` stand for `ncp`, claims_location
top / ext / either (ambiguity is a 401, never a merge), and the Guard's WebSocket deadline.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minting import Minter
from nmosauth_lite import TokenValidator
from nmosauth_lite.claims import nmos_claims
from nmosauth_lite.errors import ClaimError, ConfigError
from nmosauth_lite.guard import Guard
from nmosauth_lite.permissions import KNOWN_APIS, MAX_ALIASES, parse_aliases

HOST = "node1.example.com"
NOW = Minter.NOW
ALL = {"read": ["*"], "write": ["*"]}


@pytest.fixture(scope="module")
def m():
    return Minter()


def v_for(m, **kw):
    return TokenValidator(jwks=m.jwks, audience=[HOST], **kw)


BARE = {"x-nmos-registration": None, "x-nmos-query": None, "x-nmos-node": None, "x-nmos-connection": None}


def tok(m, key=None, **over):
    return m.token("RS512", claims=m.claims(**over), key=key)


def bare(m, **over):
    """A token with none of the Minter's default x-nmos-* claims."""
    return tok(m, **dict(BARE, **over))


@pytest.mark.parametrize("api", KNOWN_APIS)
def test_every_known_api_follows_the_is10_table(m, api):  # RS-31, RS-35, TOK-20
    v = v_for(m)
    granted = bare(m, scope=api, **{"x-nmos-" + api: {"read": ["*"]}})
    assert v.check(granted, "GET", "/x-nmos/%s/v1.0/anything/deeper" % api, NOW).status == 200
    assert v.check(granted, "PUT", "/x-nmos/%s/v1.0/anything" % api, NOW).status == 403  # no write grant
    scope_only = bare(m, scope=api)
    assert v.check(scope_only, "GET", "/x-nmos/%s/v1.0" % api, NOW).status == 200  # base path by scope
    assert v.check(scope_only, "GET", "/x-nmos/%s/v1.0/x" % api, NOW).status == 403  # a scope alone: base only
    assert v.check(None, "GET", "/x-nmos/%s/v1.0/x" % api, NOW).status == 401


def test_the_system_api_is_outside_authorization(m):  # BCP-O-02: the testing tool sends no token
    v = v_for(m)
    for path in ("/x-nmos/system", "/x-nmos/system/v1.0/global", "/x-nmos/system/v1.0/health/nodes"):
        assert v.check(None, "GET", path, NOW).status == 200
        assert v.check(tok(m, key=m.attacker), "GET", path, NOW).status == 200  # no token is consulted
    assert v.check(None, "GET", "/x-nmos/systems/v1.0/global", NOW).status == 401  # only that exact name


def test_alias_map_lets_another_name_grant_ncp(m):  # issue 20 §3
    v = v_for(m, api_aliases={"nc": "ncp", "x-nmos-control": "ncp"})
    assert v.check(tok(m, scope="nc"), "GET", "/x-nmos/ncp/v1.0/", NOW).status == 200
    assert v.check(tok(m, scope="control"), "GET", "/x-nmos/ncp/v1.0", NOW).status == 200
    assert v.check(tok(m, **{"x-nmos-nc": ALL}), "PATCH", "/x-nmos/ncp/v1.0/ws", NOW).status == 200
    assert v.check(tok(m, **{"x-nmos-control": {"read": ["ws"]}}), "GET", "/x-nmos/ncp/v1.0/ws", NOW).status == 200
    assert v.check(tok(m, **{"x-nmos-ncp": ALL}), "GET", "/x-nmos/ncp/v1.0/ws", NOW).status == 200
    # an alias grants only what its own claim says
    assert v.check(tok(m, **{"x-nmos-nc": {"read": ["*"]}}), "PATCH", "/x-nmos/ncp/v1.0/ws", NOW).status == 403
    # and nothing for another API
    assert v.check(tok(m, **{"x-nmos-nc": ALL}), "GET", "/x-nmos/events/v1.0/x", NOW).status == 403


def test_one_api_under_two_names_is_ambiguous_401(m):
    v = v_for(m, api_aliases={"nc": "ncp", "control": "ncp"})
    for both in ({"x-nmos-nc": ALL, "x-nmos-ncp": ALL}, {"x-nmos-nc": ALL, "x-nmos-control": ALL}):
        d = v.check(tok(m, **both), "GET", "/x-nmos/ncp/v1.0/ws", NOW)
        assert (d.status, d.error) == (401, "invalid_token") and "two names" in d.reason


def test_without_an_alias_another_name_grants_nothing(m):
    d = v_for(m).check(tok(m, scope="nc", **{"x-nmos-nc": ALL}), "GET", "/x-nmos/ncp/v1.0/ws", NOW)
    assert (d.status, d.error) == (403, "insufficient_scope")


@pytest.mark.parametrize("aliases", [
    {"query": "node"}, {"nc": "nonsense"}, {"": "ncp"}, {"nc ncp": "ncp"}, {"nc": 5}, {"system": "ncp"},
    ["nc", "ncp"], dict(("a%d" % i, "ncp") for i in range(MAX_ALIASES + 1)),
])
def test_unusable_alias_maps_are_configuration_errors(m, aliases):
    with pytest.raises(ConfigError):
        v_for(m, api_aliases=aliases)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.one_of(st.text(max_size=20), st.integers()), max_size=40))
def test_any_alias_map_parses_or_is_a_value_error(mapping):
    try:
        out = parse_aliases(mapping)
    except ValueError:
        return
    for api, names in out.items():
        assert api in KNOWN_APIS and all(n not in KNOWN_APIS for n in names)


# --- claims_location ---------------------------------------------------------------------------

PATH = "/x-nmos/node/v1.3/self"


def ext_token(m, ext, top=True):
    over = {"ext": ext}
    if not top:
        over["x-nmos-node"] = None
    return tok(m, **over)


@pytest.mark.parametrize("location,token_kind,status", [
    ("top", "top", 200), ("top", "ext", 403),
    ("ext", "ext", 200), ("ext", "top", 403),
    ("either", "top", 200), ("either", "ext", 200), ("either", "both", 401),
])
def test_claims_location(m, location, token_kind, status):  # issue 20 §2
    node = {"x-nmos-node": {"read": ["*"]}}
    t = {"top": tok(m), "ext": ext_token(m, node, top=False), "both": ext_token(m, node)}[token_kind]
    d = v_for(m, claims_location=location).check(t, "GET", PATH, NOW)
    assert d.status == status, d
    if status == 401:
        assert d.error == "invalid_token" and "both" in d.reason  # ambiguous: never merged


@pytest.mark.parametrize("ext", [[], "x", 5, {"x-nmos-node": []}, dict(("k%d" % i, 1) for i in range(300))])
def test_a_malformed_ext_is_401_where_it_is_read(m, ext):
    t = ext_token(m, ext, top=False)
    for location in ("ext", "either"):
        d = v_for(m, claims_location=location).check(t, "GET", PATH, NOW)
        assert (d.status, d.error) == (401, "invalid_token"), (location, d)
    assert v_for(m).check(t, "GET", PATH, NOW).status == 403  # "top" never reads ext


def test_unknown_claims_location_is_a_configuration_error(m):
    with pytest.raises(ConfigError):
        v_for(m, claims_location="nested")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=3),
                           max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["ext", "x-nmos-node", "x-nmos-ncp", "sub", "scope"]), json_values),
       st.sampled_from(["top", "ext", "either"]))
def test_nmos_claims_returns_an_object_or_a_claim_error(claims, location):
    try:
        out = nmos_claims(claims, location)
    except ClaimError:
        return
    assert isinstance(out, dict)
    if location == "ext":
        assert all(k.startswith("x-nmos-") for k in out)


# --- the Guard's WebSocket deadline -------------------------------------------------------------

def test_ws_deadline_is_exp_plus_leeway_plus_grace(m):
    t = tok(m)
    g = Guard(v_for(m, leeway=3), ws_grace=2)
    upgrade = {"authorization": "Bearer " + t, "upgrade": "websocket", "connection": "Upgrade"}
    verdict = g.check("GET", "/x-nmos/query/v1.3/ws", upgrade, NOW)
    assert verdict.answer is None and g.ws_deadline(verdict) == Minter.NOW + 500 + 3 + 2
    keep = Guard(v_for(m), ws_expiry="keep")
    assert keep.ws_deadline(keep.check("GET", "/x-nmos/query/v1.3/ws", upgrade, NOW)) is None
    assert g.ws_deadline(g.check("GET", "/x-nmos/", {}, NOW)) is None  # no token: nothing expires
    for bad in ({"ws_expiry": "drop"}, {"ws_grace": -1}, {"ws_grace": 301}, {"ws_grace": "5"}):
        with pytest.raises(ConfigError):
            Guard(v_for(m), **bad)
