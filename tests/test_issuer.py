"""issuer.py: RFC 8414 issuer identifiers, metadata URLs and documents (IS-10 RS-06, DS-14)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite import issuer
from nmosauth_lite.errors import ConfigError, RemoteError


@pytest.mark.parametrize(
    "iss, url",
    [
        ("https://as.example.com", "https://as.example.com/.well-known/oauth-authorization-server"),
        ("https://as.example.com/", "https://as.example.com/.well-known/oauth-authorization-server"),
        ("https://as.example.com:8443/x-nmos/auth/v1.0",
         "https://as.example.com:8443/.well-known/oauth-authorization-server/x-nmos/auth/v1.0"),
        ("https://[::1]:4443/t1", "https://[::1]:4443/.well-known/oauth-authorization-server/t1"),
    ],
)
def test_metadata_url_inserts_well_known_before_path(iss, url):  # RFC 8414 §3.1
    assert issuer.metadata_url(iss) == url


@pytest.mark.parametrize(
    "iss, urls",
    [
        ("https://kc.example.com:8443/realms/nmos", [
            ("rfc8414", "https://kc.example.com:8443/.well-known/oauth-authorization-server/realms/nmos"),
            ("issuer-appended", "https://kc.example.com:8443/realms/nmos/.well-known/oauth-authorization-server"),
            ("openid-configuration", "https://kc.example.com:8443/realms/nmos/.well-known/openid-configuration")]),
        ("https://as.example.com/", [  # no path: the first two places are one URL
            ("rfc8414", "https://as.example.com/.well-known/oauth-authorization-server"),
            ("openid-configuration", "https://as.example.com/.well-known/openid-configuration")]),
    ],
)
def test_metadata_urls_rfc8414_first_then_appended_then_openid(iss, urls):  # RFC 8414 §3.1, OIDC Discovery §4
    assert issuer.metadata_urls(iss) == urls


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["https://as.example.com", "https://[::1]:4443", "http://10.0.0.1:80"]),
       st.lists(st.text(alphabet="abcAZ09-._~%!$&'()*+,;=:@", min_size=1, max_size=12), max_size=4),
       st.booleans())
def test_metadata_urls_stay_on_the_issuers_origin(origin, segments, slash):
    iss = origin + "".join("/" + s for s in segments) + ("/" if slash else "")
    urls = issuer.metadata_urls(iss)
    assert [f for f, _ in urls][0] == "rfc8414" and urls[-1][0] == "openid-configuration"
    assert len({u for _, u in urls}) == len(urls) and 2 <= len(urls) <= 3
    for _, u in urls:
        assert issuer.split_url(u)[:3] == issuer.split_url(iss)[:3] and len(u) <= len(iss) + 60


def test_metadata_urls_refuse_what_is_not_a_url():
    for bad in ("", "https://", "as.example.com", "https://a b", "https://x/" + "a" * issuer.MAX_URL_LEN):
        with pytest.raises(ValueError):
            issuer.metadata_urls(bad)


@pytest.mark.parametrize("bad", ["http://as.example.com", "ftp://x", "https://", "https://a b", "https://user@as",
                                 "https://as:99999", "https://as:x", "as.example.com", "https://as/p?q=1", "https://é.com"])
def test_bad_issuers_refused(bad):
    with pytest.raises(ConfigError):
        issuer.check_issuer(bad)


def test_http_issuer_only_in_insecure_lab_mode():  # IS-10 GEN-01, §12 A10
    assert issuer.check_issuer("http://lab.local:8080", allow_http=True)


def test_metadata_checks():  # RFC 8414 §3.3
    iss = "https://as.example.com/x-nmos/auth/v1.0"
    good = {"issuer": iss, "jwks_uri": "https://as.example.com/jwks"}
    assert issuer.check_metadata(good, iss) is good
    for bad in ({}, [], {"issuer": iss}, {"issuer": "https://evil", "jwks_uri": "https://e/j"},
                {"issuer": iss, "jwks_uri": "http://as.example.com/jwks"}, {"issuer": iss, "jwks_uri": 5},
                {"issuer": iss, "jwks_uri": "https://as/jwks", "token_endpoint": ["x"]}):
        with pytest.raises(RemoteError):
            issuer.check_metadata(bad, iss)


def test_ds14_loose_comparison_for_discovered_issuers():
    a = "https://AS.example.com.:443/x-nmos/auth/v1.0/"
    b = "https://as.example.com/x-nmos/auth/v1.0"
    assert issuer.same_issuer(a, b)
    assert not issuer.same_issuer(b, "https://as.example.com:8443/x-nmos/auth/v1.0")
    assert not issuer.same_issuer(b, "https://as.example.com/x-nmos/auth/v1.1")
    doc = {"issuer": a, "jwks_uri": "https://as.example.com/jwks"}
    with pytest.raises(RemoteError):
        issuer.check_metadata(doc, b)
    assert issuer.check_metadata(doc, b, loose=True)
