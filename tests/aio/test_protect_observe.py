"""`protect --enforce off|API,...`: observe mode for rolling IS-10 out (issue 19 §4), a real
`protect` subprocess over TLS in front of the test Node. Every request is decided, audited and
counted as when enforcing, then forwarded whatever the decision; a refused request reaches the
Node without the credentials enforcing would have stopped (the Node sees no token it would not
have seen); the audit record and the metrics say would_deny; the start-up log says loudly that
the Node is not protected; `audit report` summarizes the file.
"""

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from test_protect import (REPO, SELF, Protect, base_args, bearer, call, jwks_path, m, token,  # noqa: F401
                          upstream)
from tls_helpers import pki  # noqa: F401

assert pki and jwks_path and m and upstream  # fixtures, imported for pytest


def cases(m):
    """(name, method, path, headers, body, status enforcing would answer, token sent or None)."""
    now = int(time.time())
    good = token(m)
    expired = token(m, iat=now - 900, exp=now - 60)
    forged = token(m, key=m.attacker)
    alien = token(m, aud=["https://node1.other.example.org"])
    return [
        ("missing", "GET", SELF, [], None, 401, None),
        ("expired", "GET", SELF, bearer(expired), None, 401, expired),
        ("bad-signature", "GET", SELF, bearer(forged), None, 401, forged),
        ("other-scheme", "GET", SELF, [("Authorization", "Basic dXNlcjpwdw==")], None, 401, "dXNlcjpwdw=="),
        ("forbidden-write", "POST", SELF, bearer(good), None, 403, good),  # no body: the echo reads none
        ("wrong-audience", "GET", SELF, bearer(alien), None, 403, alien),
        ("malformed-header", "GET", SELF, [("Authorization", "Bearer")], None, 400, None),
        ("two-headers", "GET", SELF, bearer(good) + bearer(forged), None, 400, forged),
    ]


def sent_authorization(body):
    return [v for n, v in json.loads(body)["headers"] if n.lower() == "authorization"]


@pytest.fixture(scope="module")
def observing(pki, upstream, jwks_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observe")
    audit = str(tmp / "audit.jsonl")
    p = Protect(base_args(pki, upstream, jwks_path) + ["--audit", audit, "--enforce", "off",
                                                       "--metrics", "127.0.0.1:0"], tmp, "observe")
    p.audit_path = audit
    yield p
    p.kill()


def test_observe_mode_forwards_every_refusal_without_its_credentials(pki, observing, upstream, m):
    assert observing.info["enforce"] == "off"
    for name, method, path, headers, body, status, secret in cases(m):
        before = len(upstream.node.hits)
        got_status, h, got = call(pki, observing.port, method, path, headers, body)
        assert got_status == 200, (name, got_status, got[:200])  # the Node answered
        assert len(upstream.node.hits) == before + 1, name
        assert sent_authorization(got) == [], name  # enforcing would have stopped these credentials
        if secret:
            assert secret not in got.decode(), name
    # an allowed request is forwarded exactly as when enforcing, its token included
    t = token(m)
    status, _, got = call(pki, observing.port, "GET", SELF, bearer(t))
    assert status == 200 and sent_authorization(got) == ["Bearer " + t]


def test_observe_mode_audits_and_counts_would_deny_and_says_the_node_is_unprotected(pki, observing, m):
    expected = cases(m)
    for name, method, path, headers, body, status, _ in expected:
        call(pki, observing.port, method, path, headers, body)
    deadline = time.monotonic() + 10
    while True:
        with open(observing.audit_path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        tail = recs[-len(expected):]
        if len(recs) >= len(expected) and len(tail) == len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(r["status"], r["outcome"]) for r in tail] == [(c[5], "would_deny") for c in expected]
    assert all(r["reason"] for r in tail)
    metrics = observing.info["metrics"]
    text = urllib.request.urlopen("http://%s/metrics" % metrics, timeout=10).read().decode()
    counted = {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("nmosauth_would_deny_total{")}
    assert counted.get("401", 0) >= 4 and counted.get("403", 0) >= 2 and counted.get("400", 0) >= 2, counted
    assert "OBSERVE MODE (--enforce off): THE NODE IS NOT PROTECTED" in observing.stderr()


def test_enforce_list_refuses_the_named_apis_and_observes_the_others(pki, upstream, jwks_path, tmp_path, m):
    audit = str(tmp_path / "audit.jsonl")
    p = Protect(base_args(pki, upstream, jwks_path) + ["--audit", audit, "--enforce", "connection,node"],
                tmp_path, "partial")
    try:
        assert p.info["enforce"] == "connection,node"
        status, h, body = call(pki, p.port, "GET", SELF)
        assert status == 401 and h["WWW-Authenticate"] == 'Bearer realm="node1.example.com"'
        # query is observed: the Node has no such route, and its own 404 comes back
        status, _, _ = call(pki, p.port, "GET", "/x-nmos/query/v1.3/nodes")
        assert status == 404
        assert "NOT PROTECTED" in p.stderr() and "connection, node" in p.stderr()
    finally:
        p.kill()
    with open(audit) as f:
        outcomes = [json.loads(line)["outcome"] for line in f if line.strip()]
    assert outcomes == ["deny", "would_deny"]


def test_enforce_typo_is_a_configuration_error(pki, upstream, jwks_path):
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "protect"] + base_args(pki, upstream, jwks_path)
                       + ["--enforce", "of"], cwd=REPO, capture_output=True, timeout=20)
    assert r.returncode == 2 and b"not an NMOS API name" in r.stderr


def test_audit_report_of_an_observed_run_names_the_clients_and_reasons(pki, observing, m):
    for name, method, path, headers, body, status, _ in cases(m):
        call(pki, observing.port, method, path, headers, body)
    time.sleep(0.5)  # the audit lines are written before each answer; this is only slack for the file
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "audit", "report", "--json", observing.audit_path],
                       cwd=REPO, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["malformed"] == 0 and d["outcomes"]["deny"] == 0 and d["outcomes"]["would_deny"] >= len(cases(m))
    reasons = {(x["status"], x["reason"]) for x in d["reasons"]}
    assert {s for s, _ in reasons} == {400, 401, 403}
    clients = {(c["peer"], c["client"]) for c in d["clients"]}
    assert ("127.0.0.1", "(no token)") in clients and ("127.0.0.1", "test-client-0123456789abcdef") in clients
    assert {(a["api"], a["method"]) for a in d["apis"]} == {("node", "GET"), ("node", "POST")}
