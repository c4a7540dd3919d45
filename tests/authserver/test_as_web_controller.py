"""The reference web controller (Sony's nmos-js, experimental IS-10) against our AS: its exact requests.

What the controller sends, read from its source (Development/src/authProvider.js) and replayed here
byte for byte in order and encoding (URLSearchParams: form encoding, space as '+'):
- authorize: GET authorization_endpoint?client_id, redirect_uri (http://localhost:3000/login),
  response_type=code, code_challenge (S256 of a 128-character unreserved verifier),
  code_challenge_method=S256, state (32 characters), scope "query connection channelmapping openid";
- code exchange: POST token_endpoint, form body grant_type, code, redirect_uri, code_verifier, scope
  (again, with openid), then client_id; no Authorization header (a public client);
- refresh at half of expires_in: form body grant_type=refresh_token, refresh_token, client_id;
- logout: POST revocation_endpoint, form body token (the refresh token), token_type_hint=refresh_token,
  with `Authorization: Basic base64(client_id)` (no ':' and no secret).
Issue 20 §4: before, /authorize answered invalid_scope to `openid`, and every logout counted as a
failed client authentication until the controller's refreshes got 429.
"""

import base64
import hashlib
import json
import logging
import secrets
import subprocess
import sys
import urllib.parse

import pytest

from as_flows import parse_form
from as_support import as_pki, as_server, basic, http, request_from  # noqa: F401 (fixtures)
from nmosauth_lite.authserver import clientauth

REDIRECT = "http://localhost:3000/login"  # nmos-js getAuthSettings()
SCOPE = "query connection channelmapping openid"  # nmos-js getAuthSettings(): always this
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
SOURCE = "127.0.0.1"


@pytest.fixture(scope="module")
def operator(as_server):
    return as_server.add_user("operator", "the operator's password")


@pytest.fixture(scope="module")
def controller(as_server):
    # registered as a site would: `as client add --auth none --scope "query connection channelmapping openid"`
    # (identity scopes are left out at registration, as at /authorize)
    return as_server.add_client(grants=["authorization_code", "refresh_token"], auth="none", scope=SCOPE,
                                redirect_uris=[REDIRECT], name="nmos-js")


@pytest.fixture(autouse=True)
def clean_backoffs(as_server):
    as_server.reset_backoffs()


def _random(n):
    return "".join(secrets.choice(UNRESERVED) for _ in range(n))


def _post(srv, endpoint, pairs, headers=None, source=SOURCE):
    """A form POST with the fields in the controller's order; -> (status, headers, JSON body or None)."""
    body = urllib.parse.urlencode(pairs)
    h = dict(headers or {}, **{"Content-Type": "application/x-www-form-urlencoded"})
    status, rh, raw = request_from(srv, "POST", srv.metadata[endpoint], source, body=body, headers=h)
    return status, rh, json.loads(raw) if raw else None


def controller_login(srv, http, client, user):
    """Authorize (with openid), log in, exchange the code: the controller's first three requests."""
    verifier = _random(128)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = _random(32)
    query = urllib.parse.urlencode([("client_id", client["client_id"]), ("redirect_uri", REDIRECT),
                                    ("response_type", "code"), ("code_challenge", challenge),
                                    ("code_challenge_method", "S256"), ("state", state), ("scope", SCOPE)])
    page = http.get(srv.metadata["authorization_endpoint"] + "?" + query, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text[:300]  # the login page, not invalid_scope
    form = parse_form(page.text)
    done = http.post(urllib.parse.urljoin(srv.metadata["authorization_endpoint"], form.action),
                     data=dict(form.inputs, username=user[0], password=user[1], action="approve"),
                     allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text[:300]
    back = urllib.parse.urlsplit(done.headers["location"])
    q = dict(urllib.parse.parse_qsl(back.query))
    assert back.scheme + "://" + back.netloc + back.path == REDIRECT and q["state"] == state
    status, headers, tokens = _post(srv, "token_endpoint", [
        ("grant_type", "authorization_code"), ("code", q["code"]), ("redirect_uri", REDIRECT),
        ("code_verifier", verifier), ("scope", SCOPE), ("client_id", client["client_id"])])
    assert status == 200, tokens
    return tokens


def controller_refresh(srv, client, refresh_token, source=SOURCE):
    return _post(srv, "token_endpoint", [("grant_type", "refresh_token"), ("refresh_token", refresh_token),
                                         ("client_id", client["client_id"])], source=source)


def controller_logout(srv, client, refresh_token, source=SOURCE):
    auth = "Basic " + base64.b64encode(client["client_id"].encode()).decode()  # btoa(client_id): no ':'
    return _post(srv, "revocation_endpoint", [("token", refresh_token), ("token_type_hint", "refresh_token")],
                 {"Authorization": auth}, source=source)


def test_controller_logs_in_with_openid_refreshes_and_logs_out(as_server, http, operator, controller, caplog):
    # RFC 6749 §3.3: `openid` is left out of what is granted, and the response says what was
    assert controller["scope"] == "query connection channelmapping"
    tokens = controller_login(as_server, http, controller, operator)
    assert tokens["scope"] == "query connection channelmapping" and tokens["expires_in"] > 0
    claims = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[1] + "=="))
    assert claims["scope"] == "query connection channelmapping" and claims["sub"] == "operator"
    assert {"x-nmos-query", "x-nmos-connection", "x-nmos-channelmapping"} <= set(claims)
    assert not [k for k in claims if "openid" in k]
    # refresh with rotation (IS-10 AS-45), as the controller's half-life timer does
    status, _, second = controller_refresh(as_server, controller, tokens["refresh_token"])
    assert status == 200, second
    assert second["refresh_token"] != tokens["refresh_token"] and second["scope"] == tokens["scope"]
    # logout: RFC 7009 revocation naming the client in a Basic header without a password
    with caplog.at_level(logging.WARNING, logger="nmosauth_lite.authserver.clientauth"):
        status, _, body = controller_logout(as_server, controller, second["refresh_token"])
    assert status == 200 and body is None
    assert any("without a password" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    status, _, err = controller_refresh(as_server, controller, second["refresh_token"])
    assert status == 400 and err["error"] == "invalid_grant"  # really revoked


def test_many_logouts_never_lock_the_controller_out(as_server, http, operator, controller):
    # Before: each logout was a failed client authentication; after four, refreshes got 429.
    for _ in range(clientauth.Backoff().free + 4):
        tokens = controller_login(as_server, http, controller, operator)
        status, _, _ = controller_logout(as_server, controller, tokens["refresh_token"])
        assert status == 200
    tokens = controller_login(as_server, http, controller, operator)
    status, _, fresh = controller_refresh(as_server, controller, tokens["refresh_token"])
    assert status == 200, fresh


def test_public_client_failures_are_never_throttled(as_server, http, operator, controller):
    tokens = controller_login(as_server, http, controller, operator)
    bad = "Basic " + base64.b64encode(controller["client_id"].encode()).decode()  # malformed at /token
    for _ in range(clientauth.SOURCE_FREE_FAILURES + 5):
        status, _, err = _post(as_server, "token_endpoint", [("grant_type", "refresh_token"),
                                                             ("refresh_token", tokens["refresh_token"])],
                               {"Authorization": bad})
        assert status == 401 and err["error"] == "invalid_client"  # refused, never 429
    status, _, fresh = controller_refresh(as_server, controller, tokens["refresh_token"])
    assert status == 200, fresh


def test_a_success_clears_the_sources_count(as_server):
    cc = as_server.add_client()
    url = as_server.metadata["token_endpoint"]
    form = {"grant_type": "client_credentials"}
    right = {"Authorization": basic(cc["client_id"], cc["client_secret"])}
    half = clientauth.SOURCE_FREE_FAILURES // 2 + 1
    for round_ in range(3):  # 3 x half > the per-address allowance, but a success comes between
        for i in range(half):
            status = request_from(as_server, "POST", url, "127.0.0.2", dict(form),
                                  {"Authorization": basic("nobody-%d-%d" % (round_, i), "x")})[0]
            assert status == 401
        assert request_from(as_server, "POST", url, "127.0.0.2", dict(form), right)[0] == 200


def test_confidential_client_still_needs_its_password_at_revoke(as_server):
    cc = as_server.add_client()
    auth = "Basic " + base64.b64encode(cc["client_id"].encode()).decode()
    status, _, err = _post(as_server, "revocation_endpoint", [("token", "x" * 64)], {"Authorization": auth})
    assert status == 401 and err["error"] == "invalid_client"
    auth = "Basic " + base64.b64encode((cc["client_id"] + ":").encode()).decode()  # empty password
    status, _, err = _post(as_server, "revocation_endpoint", [("token", "x" * 64)], {"Authorization": auth})
    assert status == 401 and err["error"] == "invalid_client"


def test_public_client_id_in_the_revocation_body_is_accepted(as_server, http, operator, controller):
    tokens = controller_login(as_server, http, controller, operator)
    status, _, _ = _post(as_server, "revocation_endpoint", [("token", tokens["refresh_token"]),
                                                            ("client_id", controller["client_id"])])
    assert status == 200
    assert controller_refresh(as_server, controller, tokens["refresh_token"])[0] == 400


def test_failed_client_authentication_is_logged_at_info_without_secrets(as_server, caplog):
    cc = as_server.add_client()
    secret_guess = "guess-" + secrets.token_hex(8)
    with caplog.at_level(logging.INFO, logger="nmosauth_lite.authserver.clientauth"):
        request_from(as_server, "POST", as_server.metadata["token_endpoint"], "127.0.0.2",
                     {"grant_type": "client_credentials"}, {"Authorization": basic(cc["client_id"], secret_guess)})
        request_from(as_server, "POST", as_server.metadata["revocation_endpoint"], "127.0.0.2",
                     {"token": "t" * 64, "client_id": "no\nsuch"})
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    token_line = [m for m in lines if "/token" in m and cc["client_id"] in m]
    revoke_line = [m for m in lines if "/revoke" in m]
    assert token_line and "method=client_secret_basic" in token_line[0] and "source=127.0.0.2" in token_line[0]
    assert revoke_line and "client_id=no\\x0asuch" in revoke_line[0] and "method=none" in revoke_line[0]
    assert not [m for m in lines if secret_guess in m or cc["client_secret"] in m]


@pytest.mark.parametrize("scope,granted", [
    ("query connection channelmapping openid", "query connection channelmapping"),
    ("openid query profile email offline_access", "query"),
    ("query registration", "query"),  # registration: an NMOS scope this client was not registered for
])
def test_authorize_grants_the_nmos_scopes_the_client_may_have(as_server, http, operator, controller, scope, granted):
    verifier = _random(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    page = http.get(as_server.metadata["authorization_endpoint"], params=[
        ("client_id", controller["client_id"]), ("redirect_uri", REDIRECT), ("response_type", "code"),
        ("code_challenge", challenge), ("code_challenge_method", "S256"), ("state", "s"), ("scope", scope)],
        allow_redirects=False, timeout=10)
    assert page.status_code == 200
    assert ["<li><code>%s</code></li>" % s in page.text for s in granted.split()] == [True] * len(granted.split())
    assert "<code>openid</code>" not in page.text


@pytest.mark.parametrize("scope", ["openid", "openid profile", "query nosuchapi", "query x-nmos-query"])
def test_authorize_refuses_unknown_names_and_identity_only_requests(as_server, http, controller, scope):
    page = http.get(as_server.metadata["authorization_endpoint"], params=[
        ("client_id", controller["client_id"]), ("redirect_uri", REDIRECT), ("response_type", "code"),
        ("code_challenge", "a" * 43), ("code_challenge_method", "S256"), ("state", "s"), ("scope", scope)],
        allow_redirects=False, timeout=10)
    assert page.status_code == 302
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.headers["location"]).query))
    assert q["error"] == "invalid_scope" and q["state"] == "s"


def test_refresh_asking_for_openid_again_is_not_an_error(as_server, http, operator, controller):
    tokens = controller_login(as_server, http, controller, operator)
    status, _, body = _post(as_server, "token_endpoint", [
        ("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"]), ("scope", "query openid"),
        ("client_id", controller["client_id"])])
    assert status == 200 and body["scope"] == "query"


def test_as_client_add_leaves_identity_scopes_out_and_says_so(tmp_path):
    state = str(tmp_path / "as")
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "client", "add", "--state-dir", state,
                        "--name", "nmos-js", "--scope", SCOPE, "--auth", "none", "--grant",
                        "authorization_code,refresh_token", "--redirect-uri", REDIRECT],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["scope"] == "query connection channelmapping"
    assert "openid left out" in p.stderr
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "client", "add", "--state-dir", state,
                        "--name", "only identity", "--scope", "openid profile", "--auth", "none", "--grant",
                        "authorization_code", "--redirect-uri", REDIRECT], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "scope is required" in p.stderr


# --- the rule itself (tokens.grant_scopes), on any request text -----------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nmosauth_lite.authserver import tokens  # noqa: E402

SUPPORTED = sorted(tokens.DEFAULT_PERMISSIONS)
_names = st.sampled_from(SUPPORTED + list(tokens.IDENTITY_SCOPES) + ["nosuchapi", "x-nmos-query", "OPENID", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(_names, max_size=8), st.lists(st.sampled_from(SUPPORTED), max_size=6), st.sampled_from([" ", "  "]))
def test_grant_scopes_grants_a_subset_never_identity_and_refuses_unknown_names(names, may_have, sep):
    text = sep.join(names)
    unknown = [n for n in names if n and n not in SUPPORTED and n not in tokens.IDENTITY_SCOPES]
    try:
        granted = tokens.grant_scopes(text, may_have, SUPPORTED)
    except ValueError:
        assert unknown
        return
    assert not unknown
    assert not set(granted) & set(tokens.IDENTITY_SCOPES) and set(granted) <= set(may_have)
    asked = [n for n in names if n]
    assert granted == (list(may_have) if not asked else [n for n in dict.fromkeys(asked) if n in may_have])


@pytest.mark.parametrize("text", ["a" * (tokens.MAX_SCOPE_LEN + 1), "query\x00", "query \"x\"", "q\u00e9",
                                  " ".join("s%d" % i for i in range(tokens.MAX_SCOPE_VALUES + 1))])
def test_grant_scopes_refuses_hostile_text(text):
    with pytest.raises(ValueError):
        tokens.grant_scopes(text, SUPPORTED, SUPPORTED)


def test_identity_scope_names_cannot_be_configured_as_nmos_scopes():
    from nmosauth_lite.errors import ConfigError

    with pytest.raises(ConfigError):
        tokens.check_permissions({"openid": {"read": ["*"]}})


@pytest.mark.parametrize("raw", [b"!!!not base64", b"\xff\xfe", b":", b"%zz", b"\x00", b"a" * 5000, b"nobody",
                                 b"nobody:"])
def test_hostile_basic_headers_at_revoke_are_invalid_client_never_a_crash(as_server, controller, raw):
    value = raw.decode("latin-1") if raw.startswith(b"!!!") else base64.b64encode(raw).decode()
    status, _, err = _post(as_server, "revocation_endpoint", [("token", "t" * 64)], {"Authorization": "Basic " + value})
    assert status == 401 and err["error"] == "invalid_client"
    # the controller's own id with trailing junk is not its id
    junk = base64.b64encode(controller["client_id"].encode() + b"\n").decode()
    status, _, err = _post(as_server, "revocation_endpoint", [("token", "t" * 64)], {"Authorization": "Basic " + junk})
    assert status == 401 and err["error"] == "invalid_client"
