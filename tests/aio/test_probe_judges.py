"""`probe` says what the Node said and why it likely failed (issue 22 item 5; probe/judges.py).

Against the real guard + AuthProxy + demo Node, misconfigured the way a vendor's first Node is:
the probe's issuer not trusted, the Node's clock hours off, the wrong audience configured. Each
failure quotes the Node's error_description (RFC 6750 §3) and names the cause and the fix
(IS-10 RS-42 trust, RS-13/RS-14 validity, RS-15 audience). The quoting of hostile Node text is
bounded and printable (a property test).
"""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from probe_support import Bench
from test_probe import got, probe_with
from tls_helpers import pki  # noqa: F401

from nmosauth_lite.guard import Guard
from nmosauth_lite.probe import FAIL, PASS, diagnose, format_table, said
from nmosauth_lite.probe.judges import MAX_SAID

assert pki and Bench  # the fixture, imported for pytest


def by_id(results):
    return {r.id: r for r in results}


def test_untrusted_issuer_is_named_with_the_fix(tmp_path, pki):
    results = probe_with(tmp_path, pki, trust_issuer=False)
    r = by_id(results)["valid-token"]
    assert r.verdict == FAIL
    assert '401 error=invalid_token ("issuer not trusted")' in r.got  # what the Node said
    assert "does not trust the probe's issuer https://" in r.hint and "--issuer" in r.hint
    table = format_table(results)
    assert table.count("likely cause") == 1  # one paragraph per cause, naming every check it explains
    assert "likely cause (unseen-key, valid-scope-only, valid-token)" in table
    assert table.rstrip().splitlines()[-1].endswith("warnings")  # the summary stays last


class SkewedGuard(Guard):
    """The real guard on a Node whose clock runs two hours ahead."""

    def check(self, method, target, headers, now=None, *rest, **kw):
        return super().check(method, target, headers, time.time() + 7200, *rest, **kw)


def test_clock_skew_is_named_with_the_fix(tmp_path, pki):
    results = probe_with(tmp_path, pki, guard_cls=SkewedGuard)
    r = by_id(results)["valid-token"]
    assert r.verdict == FAIL and '("token expired")' in r.got
    assert "clock" in r.hint and "NTP" in r.hint


def test_wrong_audience_configuration_is_named_with_the_fix(tmp_path, pki):
    results = probe_with(tmp_path, pki, audience=("other-node.example.com",))
    r = by_id(results)["valid-token"]
    assert r.verdict == FAIL and "403 error=insufficient_scope" in r.got and "audience" in r.got
    assert "audience" in r.hint and "--audience" in r.hint
    assert r.to_dict()["likely_cause"] == r.hint


def test_passing_results_carry_no_hint(tmp_path, pki):
    results = probe_with(tmp_path, pki)
    assert all(r.verdict == PASS and r.hint is None for r in results)
    assert "likely cause" not in format_table(results)
    assert all("likely_cause" not in r.to_dict() for r in results)


def test_a_node_that_accepts_what_it_must_refuse_is_named():
    ok = got(200, {"access-control-allow-origin": "*"})
    assert "outside their validity" in diagnose("expired", ok)
    assert "signatures" in diagnose("alg-none", ok)
    assert "aud" in diagnose("wrong-audience", ok)
    assert diagnose("no-token", ok) is None  # no clear pattern: no guess


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600), st.sampled_from(["valid-token", "unseen-key", "expired", "wrong-audience", "x"]),
       st.sampled_from([200, 401, 403, 503]))
def test_hostile_challenges_are_quoted_bounded_and_never_break_the_judge(www, cid, status):
    a = got(status, {"www-authenticate": www})
    err, desc = said(a)
    assert isinstance(err, str) and len(desc) <= MAX_SAID and all(" " <= c <= "~" for c in desc)
    hint = diagnose(cid, a, {"issuer": "https://probe.example"})
    assert hint is None or isinstance(hint, str)
