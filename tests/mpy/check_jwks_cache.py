"""jwks_cache: refresh schedule, back-off, unknown-kid rate limit, persisted form (IS-10 RS-02..RS-10)."""

import harness
from nmosauth_lite import jwks_cache as J

ISS = "https://as.example.com"


def check_hourly_with_jitter():
    s = J.IssuerKeys(ISS)
    s.schedule_refresh(100, lambda: 0.5)
    harness.eq(s.next_refresh, 100 + 3600 + 30, "next refresh")


def check_backoff_doubles_and_caps():
    s = J.IssuerKeys(ISS)
    d = [s.fetch_failed(0, lambda: 0.5, "down") for _ in range(12)]
    harness.eq(d[:3], [5, 10, 20], "doubling")
    harness.eq(max(d), J.BACKOFF_CAP, "cap")


def check_unknown_kid_rate_limit():
    s = J.IssuerKeys(ISS)
    harness.true(s.may_fetch_for_unknown_kid(0, "k"), "first")
    s.note_unknown_kid_fetch(0)
    harness.true(not s.may_fetch_for_unknown_kid(1, "k"), "limited")


def check_foreign_documents_rejected():
    for bad in (None, {}, {"format": J.FORMAT, "issuer": "https://x"}):
        harness.raises(ValueError, J.IssuerKeys(ISS).load_json, bad)
