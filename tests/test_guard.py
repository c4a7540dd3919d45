"""guard.py: the resource server's HTTP answers, exactly as documented (issue 3 item 4; IS-10 RS-22..RS-41)."""

import json
import re

import pytest

from minting import Minter
from nmosauth_lite import TokenValidator
from nmosauth_lite.guard import Guard, query_tokens, strip_access_token

PATH = "/x-nmos/node/v1.3/self"
WWW = re.compile(r'^Bearer realm="[^"]*"(,error=(invalid_token|insufficient_scope|invalid_request),error_description="[^",]*")?$')


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture
def guard(m):
    records = []
    v = TokenValidator(jwks=m.jwks, audience=["node1.example.com"])
    g = Guard(v, audit=records.append)
    g.records = records
    return g


def hdrs(answer):
    return dict(answer.headers)


def check_error_shape(a, status, error):
    h = hdrs(a)
    assert a.status == status
    assert h["Content-Type"] == "application/json"
    assert h["Access-Control-Allow-Origin"] == "*"
    assert h["Access-Control-Expose-Headers"] == "WWW-Authenticate, Retry-After"
    assert int(h["Content-Length"]) == len(a.body)
    body = json.loads(a.body)
    assert body["code"] == status and isinstance(body["error"], str) and body["debug"] is None  # RS-27
    www = h.get("WWW-Authenticate")
    assert www is not None and WWW.match(www), www
    if error is None:
        assert "error=" not in www  # RS-23: no error attribute without credentials
    else:
        assert ",error=%s," % error in www


def test_allowed_request_has_no_answer_and_is_audited(guard, m):  # RS-41
    tok = m.token()
    v = guard.check("GET", PATH, {"authorization": "Bearer " + tok}, m.NOW)
    assert v.answer is None and v.decision.status == 200
    rec = guard.records[-1]
    assert rec["status"] == 200 and rec["client_id"] == "test-client-0123456789abcdef" and rec["kid"] == "rsa-1"
    assert rec["jti"] and rec["iss"] == m.ISS and rec["sub"] and rec["time"] == m.NOW
    assert tok not in json.dumps(guard.records) and len(rec["token"]) == 16


def test_missing_token_401_without_error(guard, m):  # RS-23
    v = guard.check("GET", PATH, {}, m.NOW)
    check_error_shape(v.answer, 401, None)


@pytest.mark.parametrize("auth", ["Bearer x.y.z", "Basic dXNlcjpwdw==", "Bearer  abc"])
def test_bad_token_401_invalid_token(guard, m, auth):
    check_error_shape(guard.check("GET", PATH, {"authorization": auth}, m.NOW).answer, 401, "invalid_token")


def test_expired_401(guard, m):
    tok = m.token(exp=m.NOW - 1)
    check_error_shape(guard.check("GET", PATH, {"authorization": "Bearer " + tok}, m.NOW).answer, 401, "invalid_token")


def test_wrong_audience_and_scope_403(guard, m):  # RS-24, RS-25
    tok = m.token(aud=["https://*.nmos.example.org"])
    check_error_shape(guard.check("GET", PATH, {"authorization": "Bearer " + tok}, m.NOW).answer, 403, "insufficient_scope")
    tok = m.token()
    check_error_shape(guard.check("POST", "/x-nmos/node/v1.3/self", {"authorization": "Bearer " + tok}, m.NOW).answer,
                      403, "insufficient_scope")


def test_preflight_answered_without_token_allowing_authorization(guard, m):  # GEN-04, GEN-05, RS-29
    v = guard.check("OPTIONS", PATH, {"origin": "https://ctl.example.com", "access-control-request-method": "GET",
                                      "access-control-request-headers": "content-type"}, m.NOW)
    h = hdrs(v.answer)
    assert v.answer.status == 200  # the NMOS RAMLs' OPTIONS 200, as the AMWA tool checks
    assert "Authorization" in h["Access-Control-Allow-Headers"]
    assert "content-type" in h["Access-Control-Allow-Headers"]
    assert h["Access-Control-Allow-Origin"] == "*"


def test_plain_options_passes_through_without_token(guard, m):
    v = guard.check("OPTIONS", PATH, {}, m.NOW)
    assert v.answer is None


def test_query_token_only_on_websocket_upgrade(guard, m):  # RS-37, RS-38, RS-40
    tok = m.token()
    target = "/x-nmos/query/v1.3/nodes?access_token=" + tok
    ws = {"upgrade": "websocket", "connection": "Upgrade"}
    assert guard.check("GET", target, ws, m.NOW).answer is None
    v = guard.check("GET", target, {}, m.NOW)  # not an upgrade: the parameter is not a credential
    check_error_shape(v.answer, 401, None)
    assert tok not in json.dumps(guard.records)
    assert all("access_token" not in r["path"] for r in guard.records)


def test_token_twice_is_400_invalid_request(guard, m):  # RFC 6750 §2
    tok = m.token()
    ws = {"upgrade": "websocket", "connection": "upgrade", "authorization": "Bearer " + tok}
    check_error_shape(guard.check("GET", "/x-nmos/query/v1.3/nodes?access_token=" + tok, ws, m.NOW).answer, 400,
                      "invalid_request")
    two = {"authorization": ["Bearer " + tok, "Bearer " + tok]}
    check_error_shape(guard.check("GET", PATH, two, m.NOW).answer, 400, "invalid_request")


def test_503_has_retry_after(m):  # RS-07
    from nmosauth_lite.errors import KeyFetchPendingError, with_attrs
    from nmosauth_lite.validator import StaticKeys

    class Fetching(StaticKeys):
        def missing_key(self, iss, kid, now):
            raise with_attrs(KeyFetchPendingError("f"), retry_after=4)

    g = Guard(TokenValidator(keys=Fetching(m.jwks), audience=["node1.example.com"]))
    a = g.check("GET", PATH, {"authorization": "Bearer " + m.token(key=m.attacker, kid="new")}, m.NOW).answer
    check_error_shape(a, 503, "invalid_token")
    assert hdrs(a)["Retry-After"] == "4"


def test_public_paths_need_nothing(guard, m):
    for p in ("/", "/x-nmos", "/x-nmos/"):
        assert guard.check("GET", p, {}, m.NOW).answer is None


def test_query_helpers():
    assert strip_access_token("/a?x=1&access_token=abc&y=2") == "/a?x=1&y=2"
    assert strip_access_token("/a?access_token=abc") == "/a"
    assert query_tokens("/a?access_token=a.b.c&x=1") == ["a.b.c"]
    assert query_tokens("/a?access_token=a%2Eb.c") == ["a.b.c"]


# --- observe mode (issue 19 §4) ---------------------------------------------------------------------

def test_observe_mode_decides_audits_then_lets_every_refusal_through(m):
    records = []
    v = TokenValidator(jwks=m.jwks, audience=["node1.example.com"])
    enforcing = Guard(v, audit=[].append)
    observing = Guard(v, audit=records.append, enforce="off")
    cases = [({}, "GET"), ({"authorization": "Bearer " + m.token()}, "POST"),
             ({"authorization": "Basic Zm9vOmJhcg=="}, "GET"), ({"authorization": ["Bearer a", "Bearer b"]}, "GET"),
             ({"authorization": "Bearer " + m.token(claims=m.claims(aud=["other.example.com"]))}, "GET")]
    for headers, method in cases:
        want = enforcing.check(method, PATH, headers, m.NOW)
        got = observing.check(method, PATH, headers, m.NOW)
        assert want.answer is not None and not want.would_deny
        assert got.answer is None and got.would_deny  # forwarded whatever the decision
        assert (got.decision.status, got.decision.reason) == (want.decision.status, want.decision.reason)
        assert records[-1]["outcome"] == "would_deny" and records[-1]["status"] == want.decision.status
    ok = observing.check("GET", PATH, {"authorization": "Bearer " + m.token()}, m.NOW)
    assert ok.answer is None and not ok.would_deny and records[-1]["outcome"] == "allow"


def test_observe_mode_without_audit_still_marks_would_deny(m):
    g = Guard(TokenValidator(jwks=m.jwks, audience=["node1.example.com"]), enforce="off")
    v = g.check("GET", PATH, {}, m.NOW)
    assert v.answer is None and v.would_deny and v.decision.status == 401


def test_enforce_list_observes_only_the_other_apis(m):
    records = []
    g = Guard(TokenValidator(jwks=m.jwks, audience=["node1.example.com"]), audit=records.append,
              enforce="node,connection")
    assert g.check("GET", PATH, {}, m.NOW).answer.status == 401 and records[-1]["outcome"] == "deny"
    assert g.check("GET", "/x-nmos/connection/v1.1/single", {}, m.NOW).answer.status == 401
    v = g.check("GET", "/x-nmos/query/v1.3/nodes", {}, m.NOW)
    assert v.answer is None and v.would_deny and records[-1]["outcome"] == "would_deny"
    # the API is read from the canonical path the Node routes, not from the raw bytes
    assert g.check("GET", "/x-nmos/%6eode/v1.3/self", {}, m.NOW).answer.status == 401
    assert g.check("GET", "/x-nmos/query/../node/v1.3/self", {}, m.NOW).answer.status == 401
    # paths of no API stay enforced; a path that cannot be placed is refused (400)
    assert g.check("GET", "/admin", {"authorization": "Bearer " + m.token()}, m.NOW).answer.status == 403
    assert g.check("GET", "/x-nmos/query//../node", {}, m.NOW).answer.status == 400


@pytest.mark.parametrize("value", ["of", "node,of", "nodes", "node;connection", "ON,node", 1, ["node", 2],
                                   ["node"] * 40])
def test_enforce_setting_refuses_typos(value):
    from nmosauth_lite.guard import parse_enforce

    with pytest.raises(ValueError):
        parse_enforce(value)


def test_enforce_setting_forms():
    from nmosauth_lite.guard import parse_enforce

    assert parse_enforce("on") is None and parse_enforce(None) is None and parse_enforce(True) is None
    assert parse_enforce("off") == () and parse_enforce(False) == ()
    assert parse_enforce(" Node, connection ,node") == ("node", "connection")
    assert parse_enforce(["query"]) == ("query",)
