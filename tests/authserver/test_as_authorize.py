"""Authorization endpoint, code exchange with PKCE, refresh rotation and revocation (RFC 6749 §4.1, 7636, 7009)."""

import secrets
import urllib.parse

import pytest

from as_flows import CB, authorize, exchange, login, parse_form, pkce, redirect_params, refresh, submit
from as_support import as_pki, as_server, basic, http, no_store, token_form, validate  # noqa: F401

@pytest.fixture(scope="module")
def user(as_server):
    return as_server.add_user()


@pytest.fixture(scope="module")
def public_client(as_server):
    return as_server.add_client(grants=["authorization_code", "refresh_token"], auth="none",
                                scope="query connection", redirect_uris=[CB, "http://127.0.0.1:9999/cb"])


@pytest.fixture(scope="module")
def confidential_client(as_server):
    return as_server.add_client(grants=["authorization_code"], scope="query node", redirect_uris=[CB])


# --- the page and request checks -------------------------------------------------------------------
def test_login_page_is_html_that_cannot_be_framed_or_cached(as_server, http, public_client):
    _, challenge = pkce()
    page = authorize(http, as_server, response_type="code", client_id=public_client["client_id"],
                      redirect_uri=CB, scope="query", code_challenge=challenge, code_challenge_method="S256")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    form = parse_form(page.text)
    assert set(form.inputs) >= {"request_id", "username", "password"} and form.action
    assert "test client" in page.text and "query" in page.text
    assert "<script" not in page.text


@pytest.mark.parametrize("params", [
    {"response_type": "code", "client_id": "unknown-client-id-000000"},
    {"response_type": "code", "redirect_uri": "https://evil.example.com/cb"},
    {"response_type": "code"},  # two redirect URIs registered: redirect_uri required
])
def test_bad_client_or_redirect_uri_shows_an_error_and_never_redirects(as_server, http, public_client, params):
    params.setdefault("client_id", public_client["client_id"])
    resp = authorize(http, as_server, **params)
    assert resp.status_code == 400 and "location" not in resp.headers  # RFC 6749 §4.1.2.1
    assert resp.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("params,error", [
    ({"response_type": "token"}, "unsupported_response_type"),  # AS-32: no implicit grant
    ({}, "invalid_request"),  # response_type missing
    ({"response_type": "code", "scope": "registration"}, "invalid_scope"),
    ({"response_type": "code"}, "invalid_request"),  # public client without PKCE (AS-33)
    ({"response_type": "code", "code_challenge": "a" * 43}, "invalid_request"),  # method required (AS-35)
    ({"response_type": "code", "code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
    ({"response_type": "code", "code_challenge": "a" * 43, "code_challenge_method": "S512"}, "invalid_request"),
])
def test_request_errors_go_back_to_the_client_with_state(as_server, http, public_client, params, error):
    resp = authorize(http, as_server, client_id=public_client["client_id"], redirect_uri=CB, state="xyz", **params)
    q = redirect_params(resp)
    assert q["error"] == error and q["state"] == "xyz" and q["iss"] == as_server.issuer


def test_repeated_parameter_is_invalid_request(as_server, http, public_client):
    url = as_server.metadata["authorization_endpoint"] + "?" + urllib.parse.urlencode(
        [("client_id", public_client["client_id"]), ("redirect_uri", CB), ("response_type", "code"),
         ("state", "a"), ("state", "b")])
    assert redirect_params(http.get(url, allow_redirects=False, timeout=10))["error"] == "invalid_request"


def test_deny_returns_access_denied(as_server, http, user, public_client):
    _, challenge = pkce()
    page = authorize(http, as_server, response_type="code", client_id=public_client["client_id"], redirect_uri=CB,
                      state="s9", code_challenge=challenge, code_challenge_method="S256")
    q = redirect_params(submit(http, as_server, page, action="deny"))
    assert q == {"error": "access_denied", "state": "s9", "iss": as_server.issuer}


def test_wrong_password_shows_the_form_again(as_server, http, user, public_client):
    _, challenge = pkce()
    page = authorize(http, as_server, response_type="code", client_id=public_client["client_id"], redirect_uri=CB,
                      code_challenge=challenge, code_challenge_method="S256")
    again = submit(http, as_server, page, username=user[0], password="wrong", action="approve")
    assert again.status_code == 200 and "Wrong user name or password" in again.text
    assert submit(http, as_server, again, username=user[0], password=user[1], action="approve").status_code == 302
    # the request is answered once only
    assert submit(http, as_server, again, username=user[0], password=user[1], action="approve").status_code == 400


# --- code exchange with PKCE -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["S256", "plain"])
def test_code_flow_with_pkce_and_refresh_rotation(as_server, http, user, public_client, method):
    q, verifier = login(http, as_server, user, public_client, method=method)
    assert q["state"] == "st-1" and q["iss"] == as_server.issuer and len(q["code"]) >= 32
    resp = exchange(http, as_server, public_client, q["code"], verifier)
    assert resp.status_code == 200, resp.text
    assert no_store(resp)
    body = resp.json()
    validate("token_response.json", body)
    assert len(body["refresh_token"]) >= 40  # AS-42, AS-43
    assert body["scope"] == "query connection"
    import jwt

    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    validate("token_schema.json", claims)
    assert claims["sub"] == user[0] and claims["client_id"] == public_client["client_id"]
    assert claims["x-nmos-query"]["write"] == ["subscriptions", "subscriptions/*"]
    r2 = refresh(http, as_server, public_client, body["refresh_token"])
    assert r2.status_code == 200, r2.text
    new = r2.json()
    validate("token_response.json", new)
    assert new["refresh_token"] != body["refresh_token"]  # AS-45: rotation
    narrowed = refresh(http, as_server, public_client, new["refresh_token"], scope="query")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "query"
    wider = refresh(http, as_server, public_client, narrowed.json()["refresh_token"], scope="query node")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_code_is_single_use_and_reuse_revokes_its_tokens(as_server, http, user, public_client):
    q, verifier = login(http, as_server, user, public_client)
    first = exchange(http, as_server, public_client, q["code"], verifier).json()
    again = exchange(http, as_server, public_client, q["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    r = refresh(http, as_server, public_client, first["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # RFC 6749 §4.1.2


@pytest.mark.parametrize("case", ["wrong_verifier", "no_verifier", "other_redirect", "other_client"])
def test_code_exchange_checks(as_server, http, user, public_client, confidential_client, case):
    q, verifier = login(http, as_server, user, public_client)
    if case == "wrong_verifier":
        resp = exchange(http, as_server, public_client, q["code"], secrets.token_urlsafe(48))
    elif case == "no_verifier":
        resp = exchange(http, as_server, public_client, q["code"], None)
    elif case == "other_redirect":
        resp = exchange(http, as_server, public_client, q["code"], verifier, redirect_uri="http://127.0.0.1:9999/cb")
    else:
        resp = exchange(http, as_server, confidential_client, q["code"], verifier,
                        auth=basic(confidential_client["client_id"], confidential_client["client_secret"]))
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    validate("token_error_response.json", resp.json())


def test_confidential_client_without_pkce(as_server, http, user, confidential_client, public_client):
    page = authorize(http, as_server, response_type="code", client_id=confidential_client["client_id"],
                      scope="node", state="c1")  # single redirect URI: may be omitted
    q = redirect_params(submit(http, as_server, page, username=user[0], password=user[1], action="approve"))
    auth = basic(confidential_client["client_id"], confidential_client["client_secret"])
    form = {"grant_type": "authorization_code", "code": q["code"]}
    resp = token_form(http, as_server, form, auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["refresh_token"]
    # the refresh token is bound to its client (AS-44): another (public) client cannot use it
    stolen = refresh(http, as_server, public_client, resp.json()["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    again = token_form(http, as_server, {"grant_type": "refresh_token", "refresh_token": resp.json()["refresh_token"]},
                       auth)
    assert again.status_code == 200, again.text  # and the attempt did not harm it


def test_user_scopes_limit_what_is_granted(as_server, http, public_client):
    user = as_server.add_user("viewer", "viewer password 1", scope="query")
    q, verifier = login(http, as_server, user, public_client)
    assert exchange(http, as_server, public_client, q["code"], verifier).json()["scope"] == "query"


# --- refresh reuse and revocation -------------------------------------------------------------------------
def test_reused_refresh_token_revokes_the_family(as_server, http, user, public_client):
    q, verifier = login(http, as_server, user, public_client)
    rt0 = exchange(http, as_server, public_client, q["code"], verifier).json()["refresh_token"]
    rt1 = refresh(http, as_server, public_client, rt0).json()["refresh_token"]
    assert refresh(http, as_server, public_client, rt0).json()["error"] == "invalid_grant"  # replay
    assert refresh(http, as_server, public_client, rt1).json()["error"] == "invalid_grant"  # family gone
    s = as_server.store()
    events = [r["event"] for r in s.audit_entries(50)]
    s.close()
    assert "refresh.reuse_detected" in events


def test_revoking_a_refresh_token(as_server, http, user, public_client):
    q, verifier = login(http, as_server, user, public_client)
    rt = exchange(http, as_server, public_client, q["code"], verifier).json()["refresh_token"]
    resp = http.post(as_server.metadata["revocation_endpoint"], timeout=10,
                     data={"token": rt, "token_type_hint": "refresh_token", "client_id": public_client["client_id"]})
    assert resp.status_code == 200
    assert refresh(http, as_server, public_client, rt).json()["error"] == "invalid_grant"
    s = as_server.store()
    events = [r["event"] for r in s.audit_entries(50)]
    s.close()
    assert {"token.revoke", "token.refresh", "authorize.approve", "token.authorization_code"} <= set(events)


def test_another_client_cannot_revoke_my_refresh_token(as_server, http, user, public_client, confidential_client):
    q, verifier = login(http, as_server, user, public_client)
    rt = exchange(http, as_server, public_client, q["code"], verifier).json()["refresh_token"]
    resp = http.post(as_server.metadata["revocation_endpoint"], data={"token": rt}, timeout=10,
                     headers={"Authorization": basic(confidential_client["client_id"],
                                                     confidential_client["client_secret"])})
    # RFC 7009 §2.2 (issue 11 §3): 200 as for an unknown token, so no oracle; and nothing is revoked.
    assert resp.status_code == 200 and resp.content == b""
    assert refresh(http, as_server, public_client, rt).status_code == 200


def test_public_client_chain_never_outlives_its_first_refresh_token(as_server, http, user, public_client,
                                                                    confidential_client):
    from nmosauth_lite.authserver.store import digest

    q, verifier = login(http, as_server, user, public_client)
    rt0 = exchange(http, as_server, public_client, q["code"], verifier).json()["refresh_token"]
    as_server.clock.advance(3600)
    try:
        rt1 = refresh(http, as_server, public_client, rt0).json()["refresh_token"]
    finally:
        as_server.clock.advance(-3600)
    s = as_server.store()
    first, second = s.find_refresh(digest(rt0)), s.find_refresh(digest(rt1))
    s.close()
    assert second["expires_at"] <= first["expires_at"]  # IS-10 AS-46 (browser-based clients)
    assert first["family_expires_at"] == first["expires_at"]
