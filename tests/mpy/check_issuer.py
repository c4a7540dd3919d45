"""issuer: RFC 8414 metadata URLs and documents, IS-10 DS-14 issuer comparison."""

import harness
from nmosauth_lite import issuer as I
from nmosauth_lite.errors import ConfigError, RemoteError

ISS = "https://as.example.com:8443/x-nmos/auth/v1.0"


def check_metadata_url_inserts_well_known():
    harness.eq(I.metadata_url(ISS), "https://as.example.com:8443/.well-known/oauth-authorization-server/x-nmos/auth/v1.0", "url")
    harness.eq(I.metadata_url("https://[::1]/"), "https://[::1]/.well-known/oauth-authorization-server", "ipv6")


def check_metadata_urls_in_the_order_tried():
    got = I.metadata_urls(ISS)
    harness.eq([f for f, _ in got], ["rfc8414", "issuer-appended", "openid-configuration"], "forms")
    harness.eq(got[1][1], ISS + "/.well-known/oauth-authorization-server", "appended")
    harness.eq(got[2][1], ISS + "/.well-known/openid-configuration", "oidc")
    bare = I.metadata_urls("https://as.example.com/")
    harness.eq(bare, [("rfc8414", "https://as.example.com/.well-known/oauth-authorization-server"),
                      ("openid-configuration", "https://as.example.com/.well-known/openid-configuration")], "no path")


def check_bad_issuers_refused():
    for bad in ("http://as", "https://a b", "https://as/p?q", "https://as:0", "https://u@as"):
        harness.raises(ConfigError, I.check_issuer, bad)


def check_metadata_issuer_must_match():
    doc = {"issuer": ISS, "jwks_uri": "https://as.example.com/jwks"}
    harness.true(I.check_metadata(doc, ISS) is doc, "exact")
    harness.raises(RemoteError, I.check_metadata, {"issuer": "https://evil", "jwks_uri": "https://e/j"}, ISS)
    harness.raises(RemoteError, I.check_metadata, {"issuer": ISS, "jwks_uri": "http://as/jwks"}, ISS)
    loose = {"issuer": "https://AS.example.com.:8443/x-nmos/auth/v1.0/", "jwks_uri": "https://as/jwks"}
    harness.raises(RemoteError, I.check_metadata, loose, ISS)
    harness.true(I.check_metadata(loose, ISS, loose=True) is loose, "DS-14")
