"""jwks_cache.py: refresh policy and key-set application without I/O (IS-10 RS-02..RS-04, RS-10)."""

import pytest

from minting import Minter, public_jwk
from nmosauth_lite import jwks_cache
from nmosauth_lite.jwks_cache import IssuerKeys

ISS = "https://as.example.com"


@pytest.fixture(scope="module")
def m():
    return Minter()


def test_refresh_is_hourly_plus_uniform_jitter():  # RS-02
    s = IssuerKeys(ISS)
    assert s.due(0)
    s.schedule_refresh(1000, lambda: 0.0)
    assert s.next_refresh == 1000 + 3600
    s.schedule_refresh(1000, lambda: 0.999)
    assert 1000 + 3600 < s.next_refresh < 1000 + 3660


def test_backoff_is_randomized_exponential_and_capped():  # RS-03
    s = IssuerKeys(ISS)
    delays = [s.fetch_failed(0, lambda: 0.5, "down") for _ in range(20)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == jwks_cache.BACKOFF_CAP
    lo = IssuerKeys(ISS).fetch_failed(0, lambda: 0.0, "x")
    hi = IssuerKeys(ISS).fetch_failed(0, lambda: 0.999, "x")
    assert lo == 2.5 and 7.4 < hi < 7.5


def test_apply_keeps_objects_of_kept_keys_and_withdraws_the_rest(m):
    s = IssuerKeys(ISS)
    s.apply({"keys": [public_jwk(m.rsa, "a"), public_jwk(m.rsa2, "b")]}, 0, lambda: 0)
    a, b = s.keys
    added, withdrawn = s.apply({"keys": [public_jwk(m.rsa, "a"), public_jwk(m.ec256, "c")]}, 10, lambda: 0)
    assert s.keys[0] is a and not a.withdrawn
    assert withdrawn == [b] and b.withdrawn
    assert [k.kid for k in added] == ["c"]
    assert not s.may_fetch_for_unknown_kid(10, "b")  # withdrawn: refetching will not help


def test_unknown_kid_fetches_are_rate_limited():  # RS-10
    s = IssuerKeys(ISS)
    assert s.may_fetch_for_unknown_kid(0, "x")
    s.note_unknown_kid_fetch(0)
    assert not s.may_fetch_for_unknown_kid(jwks_cache.MIN_UNKNOWN_KID_INTERVAL - 1, "y")
    assert s.may_fetch_for_unknown_kid(jwks_cache.MIN_UNKNOWN_KID_INTERVAL, "y")


def test_persisted_form_round_trips_and_rejects_foreign_documents(m):
    s = IssuerKeys(ISS)
    s.apply({"keys": [public_jwk(m.rsa, "a")]}, 5, lambda: 0, etag='"e"', jwks_uri="https://as/jwks")
    doc = s.to_json()
    t = IssuerKeys(ISS)
    t.load_json(doc)
    assert [k.kid for k in t.keys] == ["a"] and t.etag == '"e"' and t.next_refresh == s.next_refresh
    for bad in (None, [], {}, dict(doc, format="other"), dict(doc, issuer="https://x"), dict(doc, jwks=5),
                dict(doc, fetched_at="yesterday"), dict(doc, etag=5)):
        with pytest.raises(ValueError):
            IssuerKeys(ISS).load_json(bad)


def test_where_the_metadata_was_found_is_persisted_and_never_fatal(m):
    # issue 20 §2: `jwks show` says which place answered; older files without it still load
    s = IssuerKeys(ISS)
    s.apply({"keys": [public_jwk(m.rsa, "a")]}, 5, lambda: 0, jwks_uri="https://as/jwks")
    s.metadata_form, s.metadata_url = "openid-configuration", ISS + "/.well-known/openid-configuration"
    t = IssuerKeys(ISS)
    t.load_json(s.to_json())
    assert (t.metadata_form, t.metadata_url) == (s.metadata_form, s.metadata_url)
    old = s.to_json()
    del old["metadata_form"], old["metadata_url"]
    for doc in (old, dict(s.to_json(), metadata_form=5, metadata_url=["x"]), dict(s.to_json(), metadata_form="f" * 65)):
        u = IssuerKeys(ISS)
        u.load_json(doc)
        assert [k.kid for k in u.keys] == ["a"] and u.metadata_form is None
