"""Issue 23 attack 5: metric labels come from closed sets only. Every field an attacker chooses (the
token's alg, kid, typ, crit, iss, aud, claims, the method, path, query, headers) is sent, and the label
sets read back with prometheus_client's parser hold nothing but the closed names; the series cap is
never reached, so later 401/403/expiry decisions are still counted under their own cause."""

import json

from prometheus_client.parser import text_string_to_metric_families

from minting import Minter
from minting_common import assemble, b64
from nmosauth_lite import TokenValidator
from nmosauth_lite.aio import metrics as m
from nmosauth_lite.errors import CAUSES
from nmosauth_lite.guard import Guard

NOW = Minter.NOW


def _labels(registry, family):
    out = set()
    for f in text_string_to_metric_families(registry.render().decode()):
        if f.name == family:
            for s in f.samples:
                out.add(tuple(sorted(s.labels.items())))
    return out


def _unsigned(header, claims):
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode()) + ".c2ln"


def test_attacker_chosen_fields_never_become_labels_and_never_blind_the_counts():
    # IS-10 RS-23..RS-25 decisions; labels: status (closed), reason (errors.CAUSES)
    mint = Minter()
    pm = m.ProxyMetrics()
    g = Guard(TokenValidator(jwks=mint.jwks, audience=["node1.example.com"]), audit=pm.audit())
    tokens = []
    for i in range(200):  # far more distinct values than MAX_SERIES (64)
        tokens.append(_unsigned({"alg": "X%d\n\"}" % i, "typ": "JWT"}, mint.claims()))
        tokens.append(_unsigned({"alg": "RS512", "kid": "k%d" % i, "crit": ["x%d" % i]}, mint.claims()))
        tokens.append(mint.token(iss="https://evil%d.example" % i))
        tokens.append(mint.token(aud=["a%d.example" % i]))
        tokens.append(mint.token(header={"typ": "t%d" % i, "jku": "https://x%d/" % i}))
        tokens.append(mint.token(**{"x-nmos-node": {"read": ["p%d" % i]}}))
        tokens.append("not.a.token%d" % i)
    for i, t in enumerate(tokens):
        g.check(["GET", "PUT", "X%d" % i][i % 3], "/x-nmos/node/v1.3/q%d?access_token=z%d" % (i, i),
                {"authorization": "Bearer " + t, "x-forwarded-for": "1.2.3.%d" % (i % 250)}, NOW)
        g.check("GET", "/x-nmos/node/v1.3/", {"authorization": "Basic %d" % i}, NOW)
        g.check("GET", "/x-nmos/node/v1.3/", {"authorization": ["Bearer a", "Bearer b%d" % i]}, NOW)
    got = _labels(pm.registry, "nmosauth_decisions")
    statuses = {dict(k)["status"] for k in got}
    reasons = {dict(k)["reason"] for k in got}
    assert statuses <= m.STATUSES | {"other"} and reasons <= set(CAUSES)
    assert len(got) < m.MAX_SERIES  # the cap is never reached: nothing folds into "other"
    # later decisions are still counted truthfully under their own cause
    before = pm.decisions.value("401", "expired")
    g.check("GET", "/x-nmos/node/v1.3/self", {"authorization": "Bearer " + mint.token(exp=NOW - 3600)}, NOW)
    assert pm.decisions.value("401", "expired") == before + 1
    before = pm.decisions.value("403", "permission")
    g.check("PUT", "/x-nmos/node/v1.3/self", {"authorization": "Bearer " + mint.token(aud=["node1.example.com"])},
            NOW)
    assert pm.decisions.value("403", "permission") == before + 1
    assert pm.decisions.value("other", "other") == 0


def test_as_and_server_labels_are_closed_whatever_the_client_sends():
    am = m.ASMetrics()
    for i in range(200):
        am.on_token({"grant_type": "g%d" % i}, 400, {"error": "e%d" % i})
        am.on_token({"grant_type": "client_credentials"}, 200,
                    {"access_token": assemble({"alg": "A%d" % i}, {}, lambda si: b"x")})
    refusals = {dict(k)["error"] for k in _labels(am.registry, "nmosauth_as_token_refusals")}
    issued = _labels(am.registry, "nmosauth_as_tokens_issued")
    assert refusals <= m.OAUTH_ERRORS | {"other"}
    assert {dict(k)["alg"] for k in issued} <= m.TOKEN_ALGS | {"other"}
    assert {dict(k)["grant_type"] for k in issued} <= m.GRANT_TYPES | {"other"}
    pm = m.ProxyMetrics()
    for i in range(200):
        pm.rejected("cause%d" % i)
    pm.rejected("evicted")
    causes = {dict(k)["cause"] for k in _labels(pm.registry, "nmosauth_rejected_connections")}
    assert causes == {"other", "evicted"}


def test_every_cause_the_validator_gives_is_in_the_closed_set():
    mint = Minter()
    v = TokenValidator(jwks=mint.jwks, audience=["node1.example.com"])
    seen = set()
    for t in (None, "x", mint.token(), mint.token(exp=NOW - 3600), mint.token(iat=NOW + 3600, nbf=NOW + 3600),
              mint.token(iss="https://other"), mint.token(aud=["elsewhere.example"]), mint.token(sub=None),
              _unsigned({"alg": "none"}, mint.claims()), mint.token(key=mint.attacker)):
        for method, path in (("GET", "/"), ("GET", "/x-nmos/node/v1.3/self"), ("PUT", "/x-nmos/node/v1.3/self"),
                             ("GET", "/x-nmos/../%00")):
            seen.add(v.check(t, method, path, NOW).cause)
    assert seen <= set(CAUSES) and "other" not in seen
    assert {"ok", "public", "no_token", "malformed", "expired", "audience",
            "permission", "unsupported_alg", "bad_signature"} <= seen
