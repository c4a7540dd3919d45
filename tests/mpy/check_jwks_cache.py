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


def check_metadata_form_persisted_and_optional():
    # issue 20 §2: where the metadata was found rides along with the keys; older files lack it
    s = J.IssuerKeys(ISS)
    s.apply({"keys": []}, 5, lambda: 0, jwks_uri="https://as.example.com/jwks")
    s.metadata_form, s.metadata_url = "openid-configuration", ISS + "/.well-known/openid-configuration"
    doc = s.to_json()
    t = J.IssuerKeys(ISS)
    t.load_json(doc)
    harness.eq((t.metadata_form, t.metadata_url), (s.metadata_form, s.metadata_url), "round trip")
    del doc["metadata_form"]
    doc["metadata_url"] = 5
    u = J.IssuerKeys(ISS)
    u.load_json(doc)
    harness.eq((u.metadata_form, u.metadata_url), (None, None), "absent or not text")
