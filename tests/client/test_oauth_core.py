"""nmosauth_lite.oauth: the client's sans-I/O messages, checked against the RFCs, the IS-10 schemas
and examples, the stdlib, and what our authorization server and resource-server guard produce."""

import base64
import hashlib
import json
import os
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_support import TESTS
from nmosauth_lite import challenge, oauth
from nmosauth_lite.errors import ConfigError, RemoteError
from nmosauth_lite.guard import Guard
from nmosauth_lite.validator import TokenValidator

EXAMPLES = os.path.join(TESTS, "vectors", "spec-data", "is-10", "examples")


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as f:
        return f.read()


# --- form encoding, client_secret_basic ---------------------------------------------------------

@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_form_encoding_round_trips_through_the_stdlib_decoder(text):
    assert urllib.parse.unquote_plus(oauth.form_encode(text)) == text
    body = oauth.build_form([("a", text), ("skip", None), ("b c", "&=")])
    assert urllib.parse.parse_qsl(body, keep_blank_values=True) == [("a", text), ("b c", "&=")]


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_basic_credentials_are_form_encoded_before_base64(cid, secret):
    header = oauth.basic_authorization(cid, secret)
    raw = base64.b64decode(header[6:], validate=True).decode()
    a, sep, b = raw.partition(":")  # the encoded id cannot hold a colon (RFC 6749 §2.3.1)
    assert header.startswith("Basic ") and sep
    assert urllib.parse.unquote_plus(a) == cid and urllib.parse.unquote_plus(b) == secret


def test_basic_credentials_match_the_rfc_example_shape():
    # RFC 6749 §2.3.1 example pair; the reserved characters of a secret are escaped
    assert oauth.basic_authorization("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw") == \
        "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"
    assert base64.b64decode(oauth.basic_authorization("a b", "x:y%")[6:]) == b"a+b:x%3Ay%25"


# --- PKCE, authorization URL ---------------------------------------------------------------------

def test_pkce_matches_rfc7636_appendix_b():
    octets = bytes([116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
                    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121])
    verifier, challenge = oauth.pkce_pair(octets)
    assert verifier == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    with pytest.raises(ValueError):
        oauth.pkce_pair(b"short")


def test_authorization_url_carries_pkce_state_and_scope():
    url = oauth.authorization_url("https://as.example.com/authorize?x=1", "cid", "http://127.0.0.1:5/cb/a",
                                  "query  connection", "st", "CH")
    base, _, q = url.partition("?")
    params = urllib.parse.parse_qs(q)
    assert base == "https://as.example.com/authorize" and params["x"] == ["1"]
    assert params["response_type"] == ["code"] and params["code_challenge_method"] == ["S256"]
    assert params["scope"] == ["query connection"] and params["redirect_uri"] == ["http://127.0.0.1:5/cb/a"]


# --- registration --------------------------------------------------------------------------------

def test_registration_requests_validate_against_the_is10_schema():
    from as_support import validate

    node = oauth.build_registration("ACME Enc SN1", "registration", "client_credentials", "private_key_jwt",
                                    jwks_uri="https://node.example.com/jwks")
    validate("register_client_request.json", node)
    assert node == dict(json.loads(example("register-client-credentials-grant-client-post-request.json")),
                        client_name="ACME Enc SN1", jwks_uri="https://node.example.com/jwks")
    ctl = oauth.build_registration("ACME Ctl SN2", "query", "authorization_code", "none",
                                   redirect_uris=["http://127.0.0.1:1/cb"])
    validate("register_client_request.json", ctl)
    assert ctl["grant_types"] == ["authorization_code", "refresh_token"] and ctl["response_types"] == ["code"]


@pytest.mark.parametrize("args", [
    ("", "registration", "client_credentials", "client_secret_basic"),
    ("n", " ", "client_credentials", "client_secret_basic"),
    ("n", "registration", "client_credentials", "none"),
    ("n", "registration", "client_credentials", "private_key_jwt"),  # no jwks_uri (CL-16)
    ("n", "registration", "authorization_code", "none"),  # no redirect URI (CL-20)
    ("n", "registration", "password", "client_secret_basic"),
])
def test_bad_registrations_are_refused_before_sending(args):
    with pytest.raises(ConfigError):
        oauth.build_registration(*args)


def test_client_name_is_unique_per_instance():
    assert oauth.client_name("ACME", "Encoder-9", "SN-1") == "ACME Encoder-9 SN-1"
    with pytest.raises(ConfigError):
        oauth.client_name("ACME", "Encoder-9", "")


def test_registration_responses():
    req = json.loads(example("register-client-credentials-grant-client-post-request.json"))
    got = oauth.check_registration_response(json.loads(example("register-client-credentials-grant-client-post-201.json")),
                                            req)
    assert got["client_id"] == "s6BhdRkqt3" and "registration_client_uri" not in got
    basic = dict(req, token_endpoint_auth_method="client_secret_basic")
    with pytest.raises(RemoteError):  # a confidential client must get its secret
        oauth.check_registration_response({"client_id": "x"}, basic)
    with pytest.raises(RemoteError):  # the server may not silently switch methods
        oauth.check_registration_response({"client_id": "x", "token_endpoint_auth_method": "none"}, basic)
    # IS-10 CL-13: RFC 7592 only when both members are present
    half = oauth.check_registration_response({"client_id": "x", "client_secret": "s",
                                              "registration_access_token": "t"}, basic)
    assert "registration_access_token" not in half
    both = oauth.check_registration_response({"client_id": "x", "client_secret": "s", "registration_access_token":
                                              "t", "registration_client_uri": "https://a/r/x"}, basic)
    assert both["registration_client_uri"] == "https://a/r/x"


# --- token responses and errors -------------------------------------------------------------------

def test_is10_example_token_response():
    t = oauth.parse_token_response(200, example("token-post-200.json"), 1000, "registration")
    assert t["expires_in"] == 60 and t["expires_at"] == 1060 and t["refresh_token"]
    assert t["scope"] == "registration"  # omitted -> as requested (RFC 6749 §5.1)


@pytest.mark.parametrize("doc,want", [
    ({"access_token": "a.b.c", "token_type": "bearer", "expires_in": 30}, 30),  # lower case (guide §4)
    ({"access_token": "a.b.c", "token_type": "BEARER", "expires_in": "45"}, 45),
])
def test_token_type_is_case_insensitive_and_expires_in_may_be_text(doc, want):
    t = oauth.parse_token_response(200, json.dumps(doc).encode(), 0)
    assert t["token_type"] == "Bearer" and t["expires_in"] == want


def test_missing_expires_in_falls_back_to_the_jwt_exp_for_scheduling_only():
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1090}).encode()).rstrip(b"=").decode()
    t = oauth.parse_token_response(200, json.dumps({"access_token": "e30." + payload + ".c2ln",
                                                    "token_type": "Bearer"}).encode(), 1000)
    assert t["expires_in"] == 90
    t = oauth.parse_token_response(200, b'{"access_token":"opaque","token_type":"Bearer"}', 1000)
    assert t["expires_in"] == oauth.DEFAULT_EXPIRES_IN


@pytest.mark.parametrize("body", [
    b'{"token_type":"Bearer","expires_in":5}', b'{"access_token":"x","token_type":"mac","expires_in":5}',
    b'{"access_token":"x y","token_type":"Bearer"}', b'{"access_token":"x","token_type":"Bearer","expires_in":-1}',
    b'[1]', b"<html>", b'{"access_token":"x","token_type":"Bearer","refresh_token":7}',
])
def test_unusable_token_responses(body):
    with pytest.raises(RemoteError):
        oauth.parse_token_response(200, body, 0)


def test_error_responses_carry_code_status_and_description():
    with pytest.raises(oauth.OAuthError) as e:
        oauth.parse_token_response(400, example("token-post-400.json"), 0)
    assert e.value.error == "invalid_request" and e.value.status == 400
    with pytest.raises(oauth.OAuthError) as e:
        oauth.parse_token_response(401, b'{"error":"invalid_client","error_description":"no such client"}', 0)
    assert e.value.error == "invalid_client" and "no such client" in e.value.message
    with pytest.raises(oauth.OAuthError) as e:
        oauth.parse_token_response(502, b"<html>bad gateway</html>", 0)
    assert e.value.error is None and e.value.status == 502


# --- RFC 6750 challenges from resource servers ------------------------------------------------------

def test_challenges_our_guard_sends_are_understood(minter):
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], clock=lambda: minter.NOW)
    g = Guard(v)
    none = g.check("GET", "/x-nmos/node/v1.3/self", {}, minter.NOW).answer
    bad = g.check("GET", "/x-nmos/node/v1.3/self", {"authorization": "Bearer x.y.z"}, minter.NOW).answer
    tok = minter.token("RS512", claims=minter.claims(aud=["other.example.com"]))
    scope = g.check("GET", "/x-nmos/node/v1.3/self", {"authorization": "Bearer " + tok}, minter.NOW).answer

    def www_authenticate(a):
        return dict(a.headers)["WWW-Authenticate"]

    assert challenge.parse_www_authenticate(www_authenticate(none)) == {"realm": "node1.example.com"}
    assert challenge.parse_www_authenticate(www_authenticate(bad))["error"] == "invalid_token"
    assert challenge.parse_www_authenticate(www_authenticate(scope))["error"] == "insufficient_scope"
    assert challenge.resource_error(401, www_authenticate(bad)) == "retry"
    assert challenge.resource_error(401, www_authenticate(none)) == "retry"
    assert challenge.resource_error(403, www_authenticate(scope)) == "scope"
    assert challenge.resource_error(403, None) is None  # an IS-04 403 that is not about authorization
    assert challenge.resource_error(503, None) == "later"
    assert challenge.resource_error(200, None) is None


@pytest.mark.parametrize("value,want", [
    ('Bearer realm="a b", error="invalid_token", error_description="x, y"',
     {"realm": "a b", "error": "invalid_token", "error_description": "x, y"}),
    ('Basic realm="x", Bearer error=insufficient_scope,scope="a b"', {"error": "insufficient_scope", "scope": "a b"}),
    ('Negotiate abc==, bearer realm=r', {"realm": "r"}),
    ('Bearer realm="q\\"uote"', {"realm": 'q"uote'}),
    ('Bearer', {}),
    ('Basic realm="x"', None),
    ('', None),
    ('Bearer realm="unterminated', {"realm": "unterminated"}),
])
def test_www_authenticate_parsing(value, want):
    assert challenge.parse_www_authenticate(value) == want


@given(st.text(max_size=200))
@settings(max_examples=500, deadline=None)
def test_www_authenticate_parser_never_raises(value):
    r = challenge.parse_www_authenticate(value)
    assert r is None or isinstance(r, dict)


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.text(max_size=60), st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_read_quoted_undoes_quoting_and_stops_after_the_closing_quote(text, rest):
    # RFC 9110 §5.6.4: any text quoted with quoted-pairs reads back as itself
    value = "x=" + _quote(text) + rest
    assert challenge.read_quoted(value, 2) == (text, len(value) - len(rest))
    assert challenge.read_quoted(value[:-len(rest) - 1] if rest else value[:-1], 2)[1] == -1  # not closed


_PARAM_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@given(st.dictionaries(st.sampled_from(["realm", "error", "error_description", "scope"]), _PARAM_VALUE,
                       max_size=4))
@settings(max_examples=300, deadline=None)
def test_the_client_and_the_probe_read_a_well_formed_challenge_alike(params):
    # the lenient client reading (oauth) and the strict probe judge (probe.challenge) share
    # read_quoted; on RFC 6750 §3 challenges they must give the same parameters
    from nmosauth_lite.probe.challenge import parse_challenge

    value = "Bearer" + (" " + ", ".join("%s=%s" % (k, _quote(v)) for k, v in params.items()) if params else "")
    assert challenge.parse_www_authenticate(value) == params
    assert parse_challenge(value) == ("Bearer", params)


# --- metadata per role ----------------------------------------------------------------------------

def test_metadata_suitability_per_role():
    full = json.loads(example("auth-metadata-get-200.json"))
    full["grant_types_supported"] = ["authorization_code", "client_credentials", "refresh_token"]
    oauth.check_metadata_for(full, "node", "private_key_jwt", alg="ES256")
    oauth.check_metadata_for(full, "controller", "client_secret_basic")
    with pytest.raises(RemoteError) as e:
        oauth.check_metadata_for(full, "node", "private_key_jwt", alg="ES384")
    assert "ES384" in e.value.message
    spec = json.loads(example("auth-metadata-get-200.json"))  # no grant_types_supported
    with pytest.raises(RemoteError) as e:  # RFC 8414 §2 default: authorization_code and implicit only
        oauth.check_metadata_for(spec, "node", "client_secret_basic")
    assert "client_credentials" in e.value.message
    oauth.check_metadata_for(spec, "controller", "client_secret_basic")
    no_pkce = dict(full)
    del no_pkce["code_challenge_methods_supported"]
    with pytest.raises(RemoteError):
        oauth.check_metadata_for(no_pkce, "controller", "client_secret_basic")
    no_reg = dict(full)
    del no_reg["registration_endpoint"]
    oauth.check_metadata_for(no_reg, "node", "client_secret_basic", register=False)
    with pytest.raises(RemoteError):
        oauth.check_metadata_for(no_reg, "node", "client_secret_basic")


# --- timing -------------------------------------------------------------------------------------

@given(st.integers(min_value=1, max_value=86400), st.floats(min_value=0, max_value=1),
       st.floats(min_value=0, max_value=2e9))
@settings(max_examples=500, deadline=None)
def test_refresh_time_rule(life, r, issued):
    at = oauth.refresh_time(issued, issued + life, r)
    delay = at - issued
    assert delay >= oauth.MIN_REFRESH_DELAY - 1e-6
    if life >= 30:  # IS-10 TOK-07 lifetimes: at least 15 s early, and at or before the half-life
        assert delay <= life / 2 + 1e-6 and issued + life - at >= oauth.EARLY_REFRESH - 1e-6
        assert delay >= min(life / 2, life - 15) * (1 - oauth.REFRESH_JITTER) - 1e-6


def test_refresh_time_examples():
    assert oauth.refresh_time(0, 30, 0) == 15
    assert oauth.refresh_time(0, 60, 0) == 30 and oauth.refresh_time(0, 60, 1) == 27
    assert oauth.refresh_time(0, 3600, 0) == 1800
    assert oauth.refresh_time(0, 3, 0.5) == oauth.MIN_REFRESH_DELAY  # the floor


@given(st.integers(min_value=0, max_value=100), st.floats(min_value=0, max_value=1))
def test_backoff_is_bounded_and_grows(attempt, r):
    d = oauth.backoff_delay(attempt, r, 1.0, 60.0)
    cap = min(60.0, 2.0 ** attempt)
    assert cap / 2 - 1e-9 <= d <= cap + 1e-9


def test_retry_after_forms():
    import email.utils

    now = 1_700_000_000
    assert challenge.parse_retry_after("7", now) == 7
    assert challenge.parse_retry_after(email.utils.formatdate(now + 42, usegmt=True), now) == 42
    assert challenge.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777) == 0
    assert challenge.parse_retry_after(email.utils.formatdate(now - 5, usegmt=True), now) == 0
    for bad in ("", "soon", "-3", "Sunday, 06-Nov-94 08:49:37 GMT", "1e3", "9999999999"):
        assert challenge.parse_retry_after(bad, now) is None


@given(st.integers(min_value=0, max_value=4_000_000_000))
@settings(max_examples=300, deadline=None)
def test_http_dates_agree_with_the_stdlib(ts):
    import email.utils

    assert challenge.parse_retry_after(email.utils.formatdate(ts, usegmt=True), 0) == ts


# --- assertions ---------------------------------------------------------------------------------

def test_assertion_claims_and_signing_input():
    c = oauth.assertion_claims("cid", "https://as/token", 1000.7, "j1")
    assert c == {"iss": "cid", "sub": "cid", "aud": "https://as/token", "iat": 1000, "exp": 1060, "jti": "j1"}
    si = oauth.jws_signing_input({"alg": "ES256"}, c).decode()
    h, p = si.split(".")
    assert json.loads(base64.urlsafe_b64decode(p + "==")) == c
    assert hashlib.sha256(si.encode()).digest()  # ASCII only
    forms = dict(oauth.assertion_fields("A"))
    assert forms["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_token_forms_always_send_scope():
    assert ("scope", "registration") in oauth.client_credentials_form(" registration ")  # IS-10 CL-30
    assert ("scope", "a b") in oauth.refresh_form("r", "a  b")
    with pytest.raises(ConfigError):
        oauth.client_credentials_form("")
    assert dict(oauth.revocation_form("t", "refresh_token")) == {"token": "t", "token_type_hint": "refresh_token",
                                                                  "client_id": None}
