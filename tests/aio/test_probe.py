"""`nmosauth-lite probe` checks (issue 14 item 1): the judges on their own, the whole probe against
the real guard + AuthProxy + demo Node API (every check passes), and against stand-ins that break
one behaviour of the real guard at a time (each check can fail). IS-10 RS-06..RS-40, RFC 6750 §3."""

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmos_upstream import NodeUpstream
from probe_support import APIS, Bench, BrokenGuard
from tls_helpers import pki  # noqa: F401
from nmosauth_lite.guard import Answer, is_websocket_upgrade
from nmosauth_lite.probe import (FAIL, PASS, WARN, Answer as Got, Retry, build_checks, format_table,
                                 judge_error, judge_new_key, judge_ok, judge_preflight, parse_api,
                                 parse_challenge, summary_line, tool_reads_error)

NMOS_401 = json.dumps({"code": 401, "error": "Unauthorized", "debug": None}).encode()


def got(status, headers=None, body=b""):
    return Got(status, dict(headers or {}), body)


def err_answer(status, www, body=None, cors=True):
    h = {"content-type": "application/json", "www-authenticate": www}
    if cors:
        h["access-control-allow-origin"] = "*"
    return got(status, h, body or json.dumps({"code": status, "error": "x", "debug": None}).encode())


# --- the judges on their own ------------------------------------------------------------------------------
def test_parse_challenge_reads_rfc7235_params_quoted_and_token_forms():
    assert parse_challenge('Bearer realm="a,b",error=invalid_token') == ("Bearer", {"realm": "a,b", "error": "invalid_token"})
    assert parse_challenge('Bearer realm="x\\"y" , error="insufficient_scope"')[1]["error"] == "insufficient_scope"
    assert parse_challenge("Bearer") == ("Bearer", {})


@pytest.mark.parametrize("bad", ['Bearer realm', 'Bearer realm="x', 'Bearer a=1 b=2', 'Bearer a=1,a=2',
                                 'Bearer =x', '', 'Bearer,realm="x"', 'Bearer a='])
def test_parse_challenge_refuses_broken_syntax(bad):
    with pytest.raises(ValueError):
        parse_challenge(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_challenge_only_ever_raises_value_error(text):
    try:
        parse_challenge(text)
    except ValueError:
        pass


def test_tool_layout_is_unquoted_error_without_space():  # IS-10 RS-26
    assert tool_reads_error('Bearer realm="n",error=invalid_token,error_description="x"', "invalid_token")
    assert not tool_reads_error('Bearer realm="n", error=invalid_token', "invalid_token")
    assert not tool_reads_error('Bearer realm="n",error="invalid_token"', "invalid_token")


def test_judge_error_passes_the_documented_shape_and_fails_each_defect():
    j = judge_error(401, "invalid_token")
    ok = 'Bearer realm="n",error=invalid_token,error_description="token expired"'
    assert j([err_answer(401, ok)])[0] == PASS
    assert j([err_answer(403, ok)])[0] == FAIL  # status
    assert j([err_answer(401, 'Bearer realm="n"')])[0] == FAIL  # no error code
    assert j([err_answer(401, 'Bearer realm="n",error=insufficient_scope')])[0] == FAIL  # wrong code
    assert j([err_answer(401, 'Basic realm="n"')])[0] == FAIL  # scheme
    assert j([err_answer(401, ok, body=b"Unauthorized")])[0] == FAIL  # RS-27 body
    assert j([err_answer(401, ok, cors=False)])[0] == FAIL  # RS-27 CORS
    assert j([err_answer(401, 'Bearer realm="n", error="invalid_token"')])[0] == WARN  # RS-26 layout
    no_www = err_answer(401, ok)
    del no_www.headers["www-authenticate"]
    assert j([no_www])[0] == FAIL
    # RS-23: no credentials means no error attribute
    assert judge_error(401, None)([err_answer(401, 'Bearer realm="n"', NMOS_401)])[0] == PASS
    assert judge_error(401, None)([err_answer(401, ok, NMOS_401)])[0] == FAIL


def test_judge_new_key_waits_out_retry_after_then_wants_2xx():  # IS-10 RS-06, RS-07
    a503 = got(503, {"retry-after": "2"})
    assert isinstance(judge_new_key([a503]), Retry) and judge_new_key([a503]).delay == 2
    assert judge_new_key([a503, got(200)])[0] == PASS
    assert judge_new_key([got(200)])[0] == WARN  # the AMWA tool fails a 200 at once (issue 19 §2)
    assert judge_new_key([got(401)])[0] == WARN
    assert judge_new_key([got(503)])[0] == FAIL  # no Retry-After
    assert judge_new_key([got(503, {"retry-after": "soon"})])[0] == FAIL
    assert judge_new_key([a503] * 4)[0] == FAIL
    assert judge_new_key([got(403)])[0] == FAIL
    assert judge_ok()([got(200)])[0] == WARN  # no CORS on a success
    assert judge_ok()([got(404, {"access-control-allow-origin": "*"})])[0] == FAIL


def test_judge_preflight_wants_authorization_allowed():  # IS-10 RS-29
    good = {"access-control-allow-origin": "*", "access-control-allow-headers": "Content-Type, Authorization"}
    assert judge_preflight([got(200, good)])[0] == PASS
    assert judge_preflight([got(200, dict(good, **{"access-control-allow-headers": "Content-Type"}))])[0] == FAIL
    # exactly 200: the AMWA tool fails "Incorrect response code: 204" (IS-05-01 auto tests)
    assert judge_preflight([got(204, good)])[0] == FAIL
    assert judge_preflight([got(401, good)])[0] == FAIL
    assert judge_preflight([got(200, {"access-control-allow-headers": "authorization"})])[0] == FAIL


@pytest.mark.parametrize("text", ["node", "node/1.3", "Node/v1.3", "node/v1.x", "/x-nmos/node/v1.3", "no de/v1"])
def test_parse_api_refuses_what_is_not_name_slash_version(text):
    with pytest.raises(ValueError):
        parse_api(text)


def test_parse_api_accepts_nmos_names():
    assert parse_api("connection/v1.1") == ("connection", "v1.1")


# --- against the real guard + proxy + demo Node -----------------------------------------------------------------
def run(coro, timeout=90):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def probe_with(tmp_path, pki, apis=APIS, ws=(), **bench):
    async def go():
        async with Bench(tmp_path, pki, **bench) as b:
            return await b.probe(apis, ws)
    return run(go())


def verdicts(results):
    return {(r.api, r.id): r.verdict for r in results}


def test_probe_passes_everything_against_protect_and_the_demo_node(tmp_path, pki):
    results = probe_with(tmp_path, pki)
    table = format_table(results)
    assert all(r.verdict == PASS for r in results), table
    assert len(results) == len(build_checks(APIS, _FakeMint())) == 17
    assert summary_line(results) == "17 passed, 0 failed, 0 warnings"
    unseen = [r for r in results if r.id == "unseen-key"][0]
    assert "after 503" in unseen.got  # the real key store answers 503 + Retry-After, then 200 (RS-07)


def test_websocket_checks_pass_through_the_proxy_to_a_real_socket(tmp_path, pki):
    # IS-10 RS-37..RS-39: access_token in the query on the handshake (the AMWA tool's way)
    node = NodeUpstream()
    results = probe_with(tmp_path, pki, apis=[("query", "v1.3")], ws=["/x-nmos/query/v1.3/ws"], upstream=node)
    ws = [r for r in results if r.id.startswith("ws-")]
    assert len(ws) == 3 and all(r.verdict == PASS for r in ws), format_table(results)


class _FakeMint:
    now = 1700000000

    def __call__(self, **kw):
        return "t"

    none = forged = unseen = __call__


# --- stand-ins: one broken behaviour each --------------------------------------------------------------------------
def _forward_if(pred):
    return lambda g, m, t, h, v: None if v.answer is not None and pred(v.decision, m, t, h) else v.answer


def _reshape(pred, fn):
    def rewrite(g, m, t, h, v):
        if v.answer is None or not pred(v.decision):
            return v.answer
        a = v.answer
        return fn(Answer(a.status, list(a.headers), a.body))
    return rewrite


def _set_header(name, value):
    def fn(a):
        a.headers = [x for x in a.headers if x[0].lower() != name.lower()] + ([(name, value)] if value else [])
        return a
    return fn


def _status(n):
    def fn(a):
        a.status = n
        return a
    return fn


def _public_needs_token(g, m, t, h, v):
    if t in ("/", "/x-nmos"):
        return g.error_answer(g.validator.check(None, m, "/x-nmos/node/v1.3"))
    return v.answer


def _no_error_code(a):
    www = dict(a.headers)["WWW-Authenticate"]
    return _set_header("WWW-Authenticate", www.split(",error=")[0])(a)


def _quoted_layout(a):
    www = dict(a.headers)["WWW-Authenticate"]
    scheme, params = parse_challenge(www)
    return _set_header("WWW-Authenticate", "Bearer " + ", ".join('%s="%s"' % kv for kv in params.items()))(a)


def _plain_body(a):
    a = _set_header("Content-Type", "text/plain")(a)
    a.body = b"denied"
    return _set_header("Content-Length", "6")(a)


def _understands_bare_aud_only(g, m, t, h, v):  # RS-15: both forms MUST be understood
    c = v.decision.claims
    if v.answer is None and c is not None and any(x.startswith("https://") for x in c.get("aud", [])):
        d = g.validator.check("x.y.z", m, t)
        return g.error_answer(d)
    return v.answer


def _reason(text):
    return lambda d, m, t, h: text in d.reason


STANDINS = {
    # name: (BrokenGuard kwargs, {check id: verdict}); every other check must still pass
    "403-instead-of-401-without-token": (
        dict(rewrite=_reshape(lambda d: d.status == 401 and d.error is None, _status(403))), {"no-token": FAIL}),
    "error-code-on-request-without-credentials": (
        dict(rewrite=_reshape(lambda d: d.status == 401 and d.error is None,
                              _set_header("WWW-Authenticate", 'Bearer realm="node.test",error=invalid_token'))),
        {"no-token": FAIL}),
    "omits-error-code": (
        dict(rewrite=_reshape(lambda d: d.error == "invalid_token", _no_error_code)),
        {"bad-signature": FAIL, "alg-none": FAIL, "expired": FAIL, "not-yet-valid": FAIL}),
    "quoted-error-with-spaces": (
        dict(rewrite=_reshape(lambda d: d.error == "insufficient_scope", _quoted_layout)),
        {"wrong-audience": WARN, "wrong-scope": WARN, "missing-claim": WARN, "read-only-write": WARN}),
    "plain-text-error-body": (
        dict(rewrite=_reshape(lambda d: d.status == 403, _plain_body)),
        {"wrong-audience": FAIL, "wrong-scope": FAIL, "missing-claim": FAIL, "read-only-write": FAIL}),
    "no-cors-on-errors": (
        dict(rewrite=_reshape(lambda d: d.status == 401, _set_header("Access-Control-Allow-Origin", None))),
        {"no-token": FAIL, "bad-signature": FAIL, "alg-none": FAIL, "expired": FAIL, "not-yet-valid": FAIL,
         "query-token-plain-get": PASS}),
    "accepts-empty-bearer": (dict(rewrite=_forward_if(lambda d, m, t, h: d.status == 400)),
                             {"malformed-header": FAIL}),
    "401-for-empty-bearer": (
        dict(rewrite=_reshape(lambda d: d.status == 400, lambda a: Answer(401, [
            ("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*"),
            ("WWW-Authenticate", 'Bearer realm="node.test",error=invalid_token')], NMOS_401))),
        {"malformed-header": WARN}),
    "accepts-bad-signature": (dict(rewrite=_forward_if(_reason("signature not verified"))), {"bad-signature": FAIL}),
    "accepts-alg-none": (dict(rewrite=_forward_if(_reason("alg none"))), {"alg-none": FAIL}),
    "accepts-expired": (dict(rewrite=_forward_if(_reason("token expired"))), {"expired": FAIL}),
    "accepts-not-yet-valid": (dict(rewrite=_forward_if(_reason("not yet valid"))), {"not-yet-valid": FAIL}),
    "ignores-audience": (dict(rewrite=_forward_if(_reason("audience"))), {"wrong-audience": FAIL}),
    "ignores-scope": (dict(rewrite=_forward_if(_reason("no scope or claim"))), {"wrong-scope": FAIL}),
    "scope-grants-deep-paths": (dict(rewrite=_forward_if(_reason("no claim for this API"))), {"missing-claim": FAIL}),
    "read-claim-allows-writes": (dict(rewrite=_forward_if(_reason("not permitted for this method"))),
                                 {"read-only-write": FAIL}),
    "bare-aud-only": (dict(rewrite=_understands_bare_aud_only),
                      {"valid-token": FAIL, "valid-scope-only": FAIL, "unseen-key": FAIL}),
    "503-without-retry-after": (
        dict(rewrite=_reshape(lambda d: d.status == 503, _set_header("Retry-After", None))), {"unseen-key": FAIL}),
    "query-token-on-plain-get": (
        dict(rewrite=lambda g, m, t, h, v: None if "access_token=" in t and not is_websocket_upgrade(h) else v.answer),
        {"query-token-plain-get": WARN}),
    "preflight-without-authorization": (
        dict(preflight_fix=_set_header("Access-Control-Allow-Headers", "Content-Type")), {"preflight": FAIL}),
    "preflight-needs-token": (
        dict(preflight_fix=lambda a: Answer(401, [("Content-Type", "application/json")], NMOS_401)),
        {"preflight": FAIL}),
    "public-paths-need-token": (dict(rewrite=_public_needs_token), {"public-root": FAIL, "public-x-nmos": FAIL}),
}


@pytest.mark.parametrize("name", sorted(STANDINS))
def test_each_defect_fails_its_check_and_only_its_check(tmp_path, pki, name):
    kwargs, expected = STANDINS[name]
    results = probe_with(tmp_path, pki, guard_cls=BrokenGuard, **kwargs)
    table = format_table(results)
    for r in results:
        assert r.verdict == expected.get(r.id, PASS), "%s: %s\n%s" % (name, r.id, table)
    assert any(v != PASS for v in expected.values())


def test_every_check_is_failed_by_some_stand_in():
    covered = set()
    for _kw, expected in STANDINS.values():
        covered.update(k for k, v in expected.items() if v != PASS)
    ids = set(c.id for c in build_checks(APIS, _FakeMint()))
    assert ids <= covered, ids - covered  # ws-* checks: the two WebSocket stand-in tests below


def test_node_with_a_static_jwks_gets_a_warning_for_the_unseen_key(tmp_path, pki):
    # IS-10 RS-06: a Node that cannot fetch keys answers 401; the AMWA tool accepts it with a warning
    results = probe_with(tmp_path, pki, static_jwks=True)
    v = verdicts(results)
    assert v[("node", "unseen-key")] == WARN
    assert [r.id for r in results if r.verdict != PASS] == ["unseen-key"]


def test_websocket_stand_in_that_upgrades_without_a_token_fails(tmp_path, pki):
    # IS-10 RS-39: never upgrade without a valid token
    rewrite = _forward_if(lambda d, m, t, h: is_websocket_upgrade(h))
    results = probe_with(tmp_path, pki, apis=[("query", "v1.3")], ws=["/x-nmos/query/v1.3/ws"],
                         upstream=NodeUpstream(), guard_cls=BrokenGuard, rewrite=rewrite)
    v = verdicts(results)
    ws = "/x-nmos/query/v1.3/ws"
    assert v[(ws, "ws-no-token")] == FAIL and v[(ws, "ws-expired-query-token")] == FAIL
    assert v[(ws, "ws-valid-query-token")] == PASS


def test_websocket_stand_in_that_ignores_the_query_token_fails(tmp_path, pki):
    # IS-10 RS-38: the access_token query parameter MUST be accepted on the handshake
    def header_only(g, m, t, h, v):
        if is_websocket_upgrade(h) and "access_token=" in t:
            return g.error_answer(g.validator.check(None, m, t.split("?")[0]))
        return v.answer
    results = probe_with(tmp_path, pki, apis=[("query", "v1.3")], ws=["/x-nmos/query/v1.3/ws"],
                         upstream=NodeUpstream(), guard_cls=BrokenGuard, rewrite=header_only)
    ws = "/x-nmos/query/v1.3/ws"
    ws_verdicts = dict((k, v) for k, v in verdicts(results).items() if k[0] == ws)
    assert ws_verdicts == {(ws, "ws-valid-query-token"): FAIL, (ws, "ws-no-token"): PASS,
                           (ws, "ws-expired-query-token"): FAIL}  # 401 without error: not judged as a token
