"""auditreport.py and `nmosauth-lite audit report`: the summary of protect's audit log (issue 19
§4), bounded and robust to whatever the file holds (hostile lines, other log lines, truncation)."""

import io
import json
import os
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmosauth_lite import auditreport
from nmosauth_lite.auditreport import MAX_KEYS, MAX_LINE, OTHER, AuditReport

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SELF = "/x-nmos/node/v1.3/self"


def rec(status=401, reason="no token", outcome="would_deny", method="GET", path=SELF, peer="10.0.0.5",
        client_id=None, token=None, time=1765000000.0):
    return {"time": time, "method": method, "path": path, "status": status, "reason": reason, "iss": None,
            "sub": None, "client_id": client_id, "kid": None, "jti": None, "token": token, "outcome": outcome,
            "peer": peer}


def lines(*records):
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_counts_clients_reasons_and_apis_of_the_refusals():
    data = lines(rec(), rec(), rec(status=403, reason="path not permitted", client_id="ctl-1", token="ab" * 8,
                                   method="PATCH", path="/x-nmos/connection/v1.1/single/senders/x/staged"),
                 rec(status=200, reason="", outcome="allow", client_id="ctl-1", token="ab" * 8),
                 rec(status=401, reason="bad signature", token="cd" * 8, peer="10.0.0.9", outcome="deny"))
    d = AuditReport().read(io.BytesIO(data)).to_dict()
    assert (d["records"], d["malformed"], d["skipped"]) == (5, 0, 0)
    assert d["outcomes"] == {"allow": 1, "deny": 1, "would_deny": 3} and d["refusals"] == 4
    assert d["reasons"][0] == {"status": 401, "reason": "no token", "count": 2}
    clients = {(c["peer"], c["client"]): c for c in d["clients"]}
    assert clients[("10.0.0.5", "(no token)")]["count"] == 2
    assert clients[("10.0.0.5", "ctl-1")]["reasons"] == [{"status": 403, "reason": "path not permitted",
                                                          "count": 1}]
    assert clients[("10.0.0.9", "(invalid token)")]["count"] == 1
    assert {(a["api"], a["method"]): a["count"] for a in d["apis"]} == {("node", "GET"): 3,
                                                                       ("connection", "PATCH"): 1}
    text = AuditReport().read(io.BytesIO(data)).text()
    assert "outcomes: allow 1, deny 1, would_deny 3" in text and "fix these clients" in text
    assert "10.0.0.5" in text and "403 path not permitted" in text


def test_other_log_lines_broken_json_and_wrong_types_are_counted_never_fatal():
    data = (b"2026-12-07 10:00:00 INFO nmosauth_lite.protect: protecting ...\n"
            b"{not json\n" + b"[" * 5000 + b"\n" + b"{\"status\": \"401\", \"method\": \"GET\", \"path\": \"/\"}\n"
            + b"{\"status\": 401, \"method\": 1, \"path\": \"/\"}\n" + b"[1, 2]\n" + b"\xff\xfe{\n"
            + b"{\"a\": " * 3000 + b"\n" + b"\n" + lines(rec(time=float("nan")), rec(reason="x\x1b[31m" * 100)))
    r = AuditReport().read(io.BytesIO(data))
    assert r.lines == 11 and r.records == 2 and r.records + r.malformed + r.skipped == r.lines
    assert r.first is None or r.first == 1765000000.0
    assert all(ch.isprintable() for row in r.to_dict()["reasons"] for ch in row["reason"])
    assert all(len(row["reason"]) <= auditreport.MAX_FIELD for row in r.to_dict()["reasons"])


def test_an_over_long_line_is_skipped_unread_and_the_next_one_counted():
    data = b"{\"x\": \"" + b"a" * (3 * MAX_LINE) + b"\"}\n" + lines(rec())
    r = AuditReport().read(io.BytesIO(data))
    assert (r.lines, r.skipped, r.records) == (2, 1, 1)


def test_tables_are_bounded_with_the_rest_counted_as_other():
    r = AuditReport()
    for i in range(MAX_KEYS + 50):
        r.add_record(rec(peer="10.%d.%d.1" % (i // 256, i % 256), reason="r%d" % i))
    assert len(r.clients.counts) == MAX_KEYS + 1 and r.clients.counts[OTHER] == 50
    assert len(r.reasons.counts) == MAX_KEYS + 1 and len(r.client_reasons) <= MAX_KEYS + 1
    d = r.to_dict(top=5)
    assert len(d["clients"]) == 5 and sum(r.clients.counts.values()) == MAX_KEYS + 50


def test_records_written_before_observe_mode_count_by_status():
    old = rec(outcome=None)
    del old["outcome"], old["peer"]
    d = AuditReport().read(io.BytesIO(lines(old, dict(old, status=200)))).to_dict()
    assert d["outcomes"] == {"allow": 1, "deny": 1, "would_deny": 0}
    assert d["clients"][0]["peer"] == "-"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=12)
record_like = st.fixed_dictionaries({}, optional={k: json_values for k in (
    "time", "method", "path", "status", "reason", "client_id", "token", "outcome", "peer")})
any_line = st.one_of(st.binary(max_size=200), record_like.map(lambda d: json.dumps(d).encode()),
                     st.builds(lambda r: json.dumps(r).encode(), st.builds(rec, status=st.integers(100, 599),
                               reason=st.text(max_size=30), outcome=st.sampled_from(["allow", "deny", "would_deny"]),
                               peer=st.text(max_size=40), client_id=st.one_of(st.none(), st.text(max_size=30)))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_line, max_size=30))
def test_property_any_file_is_summarized_and_every_line_accounted_for(raw_lines):
    data = b"\n".join(line.replace(b"\n", b" ") for line in raw_lines)
    r = AuditReport().read(io.BytesIO(data))
    assert r.records + r.malformed + r.skipped == r.lines
    assert sum(r.outcomes.values()) == r.records
    assert sum(r.reasons.counts.values()) == r.outcomes["deny"] + r.outcomes["would_deny"]
    d = r.to_dict()
    json.dumps(d, allow_nan=False)  # the --json document is strict JSON whatever came in
    r.text()


def test_cli_text_json_stdin_and_a_missing_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(lines(rec(), rec(status=200, outcome="allow", reason="")))
    env = dict(os.environ, PYTHONPATH=ROOT)

    def cli(*args, data=None):
        return subprocess.run([sys.executable, "-m", "nmosauth_lite", "audit"] + list(args), input=data,
                              capture_output=True, env=env, timeout=60)
    p = cli("report", str(path))
    assert p.returncode == 0 and b"would_deny 1" in p.stdout and b"401 no token" in p.stdout, p.stderr
    p = cli("report", "--json", "-", data=path.read_bytes())
    assert p.returncode == 0 and json.loads(p.stdout)["outcomes"]["would_deny"] == 1
    p = cli("report", str(tmp_path / "missing.jsonl"))
    assert p.returncode == 2 and p.stderr.count(b"\n") == 1 and b"cannot read" in p.stderr
