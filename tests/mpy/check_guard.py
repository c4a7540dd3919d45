"""guard: the HTTP answers of the resource server on MicroPython too (IS-10 RS-22..RS-40):
401/403 shapes with NMOS error JSON and CORS, pre-flight without a token, query tokens
only on WebSocket upgrades, audit records that never hold the token."""

import harness
from nmosauth_lite import TokenValidator
from nmosauth_lite.guard import Guard, parse_enforce
from nmosauth_lite.jsonshim import loads

PATH = "/x-nmos/connection/v1.1/single/senders"


def _guard(records):
    d = harness.load_json("tests/mpy/data/lane-vectors.json")
    v = TokenValidator(jwks=d["jwks"], audience=[d["audience"]], backend="pure")
    return Guard(v, audit=records.append), d["tokens"]["RS256"], d["now"]


def check_allowed_and_audited_without_the_token():
    records = []
    g, tok, now = _guard(records)
    v = g.check("GET", PATH, {"authorization": "Bearer " + tok}, now)
    harness.true(v.answer is None, "allowed")
    harness.eq(records[-1]["client_id"], "mpy-lane-client", "audit client_id")
    harness.true(tok not in repr(records), "no token in the audit record")


def check_missing_and_bad_tokens():
    g, tok, now = _guard([])
    a = g.check("GET", PATH, {}, now).answer
    h = dict(a.headers)
    harness.eq(a.status, 401, "no token")
    harness.eq(h["WWW-Authenticate"], 'Bearer realm="node1.example.com"', "no error code")
    harness.eq(loads(a.body)["code"], 401, "NMOS error JSON")
    harness.eq(h["Access-Control-Allow-Origin"], "*", "CORS")
    a = g.check("POST", "/x-nmos/connection/v1.1/bulk/senders", {"authorization": "Bearer " + tok}, now).answer
    harness.eq(a.status, 403, "write not granted")
    harness.true(",error=insufficient_scope," in dict(a.headers)["WWW-Authenticate"], "403 error code")


def check_preflight_and_query_token():
    g, tok, now = _guard([])
    pre = {"origin": "https://c", "access-control-request-method": "GET"}
    a = g.check("OPTIONS", PATH, pre, now).answer
    harness.eq(a.status, 200, "pre-flight")
    harness.true("Authorization" in dict(a.headers)["Access-Control-Allow-Headers"], "Authorization allowed")
    ws = {"upgrade": "websocket", "connection": "Upgrade"}
    harness.true(g.check("GET", PATH + "?access_token=" + tok, ws, now).answer is None, "WebSocket query token")
    harness.eq(g.check("GET", PATH + "?access_token=" + tok, {}, now).answer.status, 401, "not an upgrade")


def check_observe_mode_lets_refusals_through_and_audits_would_deny():
    d = harness.load_json("tests/mpy/data/lane-vectors.json")
    v = TokenValidator(jwks=d["jwks"], audience=[d["audience"]], backend="pure")
    records = []
    g = Guard(v, audit=records.append, enforce="node")  # connection observed, node enforced
    verdict = g.check("GET", PATH, {}, d["now"])
    harness.true(verdict.answer is None and verdict.would_deny, "observed refusal let through")
    harness.eq(records[-1]["outcome"], "would_deny", "audited as would_deny")
    harness.eq(records[-1]["status"], 401, "decided as when enforcing")
    harness.eq(g.check("GET", "/x-nmos/node/v1.3/self", {}, d["now"]).answer.status, 401, "node enforced")
    harness.eq(records[-1]["outcome"], "deny", "enforced refusal")
    harness.eq(parse_enforce("off"), (), "off")
    harness.true(parse_enforce("on") is None, "on")


def check_ws_deadline_and_claims_location():
    # issue 20 §2, §3: the WebSocket close time and a validator reading claims under ext
    from nmosauth_lite.errors import ConfigError

    d = harness.load_json("tests/mpy/data/lane-vectors.json")
    tok = d["tokens"]["RS256"]
    up = {"authorization": "Bearer " + tok, "upgrade": "websocket", "connection": "Upgrade"}
    g = Guard(TokenValidator(jwks=d["jwks"], audience=[d["audience"]], backend="pure", leeway=2), ws_grace=3)
    verdict = g.check("GET", PATH, up, d["now"])
    harness.true(verdict.answer is None, "allowed upgrade")
    harness.eq(g.ws_deadline(verdict), verdict.decision.claims["exp"] + 5, "exp + leeway + grace")
    keep = Guard(TokenValidator(jwks=d["jwks"], audience=[d["audience"]], backend="pure"), ws_expiry="keep")
    harness.eq(keep.ws_deadline(keep.check("GET", PATH, up, d["now"])), None, "keep")
    harness.raises(ConfigError, Guard, g.validator, None, "*", "GET", "drop")
    ext = TokenValidator(jwks=d["jwks"], audience=[d["audience"]], backend="pure", claims_location="ext")
    harness.eq(ext.check(tok, "GET", PATH, d["now"]).status, 403, "top-level claims not read in ext mode")
