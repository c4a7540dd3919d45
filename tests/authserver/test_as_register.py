"""RFC 7591 registration endpoint (IS-10 AS-17..AS-28), initial access tokens, operator approval, audit."""

import json
import os
import time

import pytest

from as_support import SPEC, as_pki, as_server, basic, http, no_store, token_form, validate  # noqa: F401
from nmosauth_lite.authserver.registration import issue_initial_access_token
from nmosauth_lite.authserver.service import open_keyring

EXAMPLES = os.path.join(SPEC, "examples")


def _example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def iat(as_server):
    s = as_server.store()
    try:
        token, _ = issue_initial_access_token(s, open_keyring(as_server.config, s), issuer=as_server.issuer,
                                              registration_endpoint=as_server.metadata["registration_endpoint"],
                                              scope="", ttl=3600, now=time.time())
    finally:
        s.close()
    return token


def _register(http, srv, body, token=None, **kw):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return http.post(srv.metadata["registration_endpoint"], json=body, headers=headers, timeout=10, **kw)


def _created(resp):
    assert resp.status_code == 201, resp.text
    assert no_store(resp)  # AS-09: the response holds credentials
    body = resp.json()
    validate("register_client_response.json", body)
    assert len(body["client_id"]) >= 20  # AS-23
    return body


def _refused(resp, code="invalid_client_metadata"):
    assert resp.status_code == 400, resp.text
    body = resp.json()
    validate("register_client_error_response.json", body)
    assert body["error"] == code
    return body


def test_client_credentials_registration_with_initial_access_token(as_server, http, iat):
    req = _example("register-client-credentials-grant-client-post-request.json")
    del req["jwks_uri"]
    req["token_endpoint_auth_method"] = "client_secret_basic"
    validate("register_client_request.json", req)
    body = _created(_register(http, as_server, req, iat))
    assert body["client_secret"] and body["client_secret_expires_at"] == 0  # confidential: a secret
    assert body["grant_types"] == ["client_credentials"] and body["scope"] == "registration"
    tok = token_form(http, as_server, {"grant_type": "client_credentials"}, basic(body["client_id"], body["client_secret"]))
    assert tok.status_code == 200, tok.text  # active at once


def test_authorization_code_example_registration(as_server, http, iat):
    req = _example("register-authorization-code-grant-client-post-request.json")
    body = _created(_register(http, as_server, req, iat))
    assert body["redirect_uris"] == req["redirect_uris"] and body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"


def test_public_client_gets_no_secret(as_server, http, iat):
    body = _created(_register(http, as_server, {"client_name": "browser controller", "scope": "query connection",
                                                "token_endpoint_auth_method": "none",
                                                "redirect_uris": ["http://127.0.0.1:8080/cb"]}, iat))
    assert "client_secret" not in body  # AS-24
    assert body["grant_types"] == ["authorization_code"]  # AS-28 defaults


def test_private_key_jwt_client_gets_no_secret(as_server, http, iat):
    req = _example("register-client-credentials-grant-client-post-request.json")
    body = _created(_register(http, as_server, req, iat))
    assert "client_secret" not in body and body["jwks_uri"] == req["jwks_uri"]


def test_defaults_to_client_secret_basic(as_server, http, iat):
    body = _created(_register(http, as_server, {"client_name": "x", "scope": "query",
                                                "redirect_uris": ["https://c.example.com/cb"]}, iat))
    assert body["token_endpoint_auth_method"] == "client_secret_basic" and body["client_secret"]


@pytest.mark.parametrize("req,code", [
    ({"scope": "registration"}, "invalid_client_metadata"),  # client_name required
    ({"client_name": "n"}, "invalid_client_metadata"),  # scope required by IS-10 (§12 B6)
    ({"client_name": "n", "scope": "nonsense"}, "invalid_client_metadata"),
    ({"client_name": "n", "scope": "registration", "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({"client_name": "n", "scope": "registration", "grant_types": ["password"]}, "invalid_client_metadata"),
    ({"client_name": "n", "scope": "registration", "grant_types": ["client_credentials"],
      "token_endpoint_auth_method": "none"}, "invalid_client_metadata"),  # AS-36
    ({"client_name": "n", "scope": "connection", "grant_types": ["client_credentials"]},
     "invalid_client_metadata"),  # BCP-G-04
    ({"client_name": "n", "scope": "query"}, "invalid_redirect_uri"),  # code grant without redirect URIs
    ({"client_name": "n", "scope": "query", "redirect_uris": ["http://c.example.com/cb"]}, "invalid_redirect_uri"),
    ({"client_name": "n", "scope": "query", "redirect_uris": ["https://c.example.com/cb#frag"]},
     "invalid_redirect_uri"),
    ({"client_name": "n", "scope": "registration", "grant_types": ["client_credentials"],
      "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),  # no keys
    ({"client_name": "n", "scope": "registration", "grant_types": ["client_credentials"],
      "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://a.example.com/k",
      "jwks": {"keys": []}}, "invalid_client_metadata"),
    ({"client_name": "n", "scope": "query", "redirect_uris": ["https://c.example.com/cb"],
      "response_types": ["token"]}, "invalid_client_metadata"),
    ({"client_name": 7, "scope": "query"}, "invalid_client_metadata"),
])
def test_bad_metadata_is_refused(as_server, http, iat, req, code):
    _refused(_register(http, as_server, req, iat), code)


def test_body_must_be_json(as_server, http, iat):
    resp = http.post(as_server.metadata["registration_endpoint"], data={"client_name": "n", "scope": "query"},
                     headers={"Authorization": "Bearer " + iat}, timeout=10)
    _refused(resp)  # RFC 7591 §3.1 (IS-10 §12 B3)
    resp = http.post(as_server.metadata["registration_endpoint"], data=b"{not json",
                     headers={"Authorization": "Bearer " + iat, "Content-Type": "application/json"}, timeout=10)
    _refused(resp)


def test_bad_initial_access_token_is_401(as_server, http):
    resp = _register(http, as_server, {"client_name": "n", "scope": "registration",
                                       "grant_types": ["client_credentials"]}, "forged.token.value")
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_initial_access_token_caps_scopes(as_server, http):
    s = as_server.store()
    token, _ = issue_initial_access_token(s, open_keyring(as_server.config, s), issuer=as_server.issuer,
                                          registration_endpoint="x", scope="registration", ttl=60, now=time.time())
    s.close()
    _refused(_register(http, as_server, {"client_name": "n", "scope": "events",
                                         "grant_types": ["client_credentials"]}, token))
    _created(_register(http, as_server, {"client_name": "n", "scope": "registration",
                                         "grant_types": ["client_credentials"]}, token))


def test_initial_access_token_is_useless_at_a_resource_server(as_server, iat):
    from nmosauth_lite.validator import TokenValidator

    jwks = as_server.call(_get_jwks(as_server))
    v = TokenValidator(jwks=jwks, audience=["localhost", "node1.example.com"])
    assert not v.check(iat, "GET", "/x-nmos/registration/v1.3", now=time.time()).allowed


async def _get_jwks(srv):
    return srv.running.app.keyring.jwks(srv.clock())


def test_unauthenticated_registration_waits_for_operator_approval(as_server, http):
    body = _created(_register(http, as_server, {"client_name": "Acme Node 0042", "scope": "registration",
                                                "grant_types": ["client_credentials"]}))  # AS-21 item 2
    auth = basic(body["client_id"], body["client_secret"])
    refused = token_form(http, as_server, {"grant_type": "client_credentials"}, auth)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    s = as_server.store()
    assert s.get_client(body["client_id"])["status"] == "pending"
    assert s.approve_client(body["client_id"], "operator")
    s.close()
    assert token_form(http, as_server, {"grant_type": "client_credentials"}, auth).status_code == 200


def test_registration_is_audited_without_secrets(as_server, http, iat):
    body = _created(_register(http, as_server, {"client_name": "audited", "scope": "registration",
                                                "grant_types": ["client_credentials"]}, iat))
    token_form(http, as_server, {"grant_type": "client_credentials"}, basic(body["client_id"], body["client_secret"]))
    s = as_server.store()
    rows = [r for r in s.audit_entries(1000) if r["client_id"] == body["client_id"]]
    dump = json.dumps(s.audit_entries(100000))
    s.close()
    events = {r["event"] for r in rows}
    assert {"client.register", "token.client_credentials"} <= events  # AS-50
    reg = [r for r in rows if r["event"] == "client.register"][0]
    assert reg["actor"].startswith("initial-access-token:") and reg["at"] > 0
    assert body["client_secret"] not in dump and iat not in dump


def test_closed_registration_without_token(tmp_path, as_pki):
    """With manual approval off, an initial access token is the only way in (AS-21, AS-22)."""
    import requests

    from as_support import ASThread, server_table

    table = server_table(as_pki, registration={"manual_approval": False, "open_authorization_code": True})
    with ASThread(table, str(tmp_path)) as srv, requests.Session() as h:
        h.trust_env = False
        h.verify = srv.ca_file
        resp = _register(h, srv, {"client_name": "n", "scope": "registration", "grant_types": ["client_credentials"]})
        assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer")
        # AS-22: authorization_code-only registrations may be accepted openly, by configuration
        body = _created(_register(h, srv, {"client_name": "n", "scope": "query",
                                           "redirect_uris": ["https://c.example.com/cb"]}))
        s = srv.store()
        assert s.get_client(body["client_id"])["status"] == "active"
        s.close()
