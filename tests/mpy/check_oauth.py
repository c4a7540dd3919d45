"""oauth: the OAuth client's sans-I/O messages on MicroPython and CPython (harness checks).

Listed in lane.txt; under pytest it runs via tests/test_mpy_checks_cpython.py.
"""

import harness
from nmosauth_lite import oauth
from nmosauth_lite.errors import ConfigError, RemoteError


def check_form_encoding():
    harness.eq(oauth.form_encode("a b&c=d/é~"), "a+b%26c%3Dd%2F%C3%A9~", "form")
    harness.eq(oauth.build_form([("x", "1"), ("y", None), ("z", "a b")]), "x=1&z=a+b", "pairs")


def check_basic_authorization():
    harness.eq(oauth.basic_authorization("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw"),
               "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3", "RFC 6749 example")
    harness.eq(oauth.basic_authorization("a b", "x:y%"), "Basic YStiOnglM0F5JTI1", "escaped first")


def check_pkce_rfc7636_appendix_b():
    octets = bytes([116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
                    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121])
    v, c = oauth.pkce_pair(octets)
    harness.eq(v, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "verifier")
    harness.eq(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "challenge")


def check_registration_body():
    b = oauth.build_registration("ACME Enc SN1", "registration", "client_credentials", "client_secret_basic")
    harness.eq(b["grant_types"], ["client_credentials"], "grants")
    harness.eq(b["response_types"], ["none"], "response types")
    harness.raises(ConfigError, oauth.build_registration, "n", "registration", "client_credentials", "private_key_jwt")
    harness.raises(ConfigError, oauth.client_name, "ACME", "", "SN1")


def check_node_response_types():
    # RFC 7591 §2: ["none"] only when the AS lists it, else [] (issue 12)
    harness.eq(oauth.node_response_types({"response_types_supported": ["code"]}), [], "strict AS")
    harness.eq(oauth.node_response_types({"response_types_supported": ["code", "none"]}), ["none"], "listed")
    b = oauth.build_registration("n", "registration", "client_credentials", "client_secret_basic", response_types=[])
    harness.eq(b["response_types"], [], "empty list sent")
    e = oauth.oauth_error("x", status=400, error="invalid_redirect_uri", description="")
    harness.eq(oauth.is_response_types_refusal(e), True, "retry on invalid_redirect_uri")


def check_registration_response():
    req = {"token_endpoint_auth_method": "client_secret_basic", "scope": "registration"}
    got = oauth.check_registration_response({"client_id": "c", "client_secret": "s", "registration_access_token": "t",
                                             "registration_client_uri": "https://a/r"}, req)
    harness.eq(got["registration_client_uri"], "https://a/r", "RFC 7592 kept")
    harness.raises(RemoteError, oauth.check_registration_response, {"client_id": "c"}, req)


def check_token_responses():
    t = oauth.parse_token_response(200, b'{"access_token":"a.b.c","token_type":"bearer","expires_in":30}', 100,
                                   "registration")
    harness.eq((t["token_type"], t["expires_at"], t["scope"]), ("Bearer", 130, "registration"), "token")
    e = harness.raises(oauth.OAuthError, oauth.parse_token_response, 401, b'{"error":"invalid_client"}', 0)
    harness.eq((e.error, e.status), ("invalid_client", 401), "error")
    harness.raises(RemoteError, oauth.parse_token_response, 200, b'{"access_token":"x","token_type":"mac"}', 0)


def check_metadata_for_role():
    md = {"token_endpoint": "t", "registration_endpoint": "r", "grant_types_supported": ["client_credentials"],
          "token_endpoint_auth_methods_supported": ["private_key_jwt"]}
    harness.true(oauth.check_metadata_for(md, "node", "private_key_jwt") is md, "node")
    harness.raises(RemoteError, oauth.check_metadata_for, md, "node", "client_secret_basic")
    harness.raises(RemoteError, oauth.check_metadata_for, md, "controller", "private_key_jwt")


def check_timing():
    harness.eq(oauth.refresh_time(0, 30, 0), 15.0, "30 s token")
    harness.eq(oauth.refresh_time(0, 60, 1), 27.0, "jitter")
    harness.eq(oauth.refresh_time(0, 2, 0), oauth.MIN_REFRESH_DELAY, "floor")
    harness.eq(oauth.backoff_delay(3, 0, 1.0, 60.0), 4.0, "backoff")
