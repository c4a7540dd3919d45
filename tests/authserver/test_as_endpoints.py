"""Metadata, JWKS, token and revocation endpoints over real TLS (IS-10 AS-*, RFC 6749/7009/7523/8414)."""

import json
import time
import uuid

import pytest

from as_support import as_pki, as_server, basic, http, no_store, token_form, validate  # noqa: F401 (fixtures)
from minting import encode_token, public_jwk
from nmosauth_lite.authserver.clientauth import ASSERTION_TYPE
from nmosauth_lite.authserver.store import digest

WELL_KNOWN = "/.well-known/oauth-authorization-server/x-nmos/auth/v1.0"


@pytest.fixture(scope="module")
def cc_client(as_server):
    return as_server.add_client()


def _error(resp, code, status=400):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    validate("token_error_response.json", body)
    assert body["error"] == code, body
    assert no_store(resp)
    return body


# --- metadata and JWKS (IS-10 AS-02, AS-03, AS-12, AS-13) ------------------------------------------
def test_metadata_at_the_well_known_path_after_the_port(as_server, http):
    resp = http.get(as_server.base + WELL_KNOWN, timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    md = resp.json()
    validate("auth_metadata.json", md)
    assert md["issuer"] == as_server.issuer == "https://localhost:%d/x-nmos/auth/v1.0" % as_server.port
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint",
                 "revocation_endpoint"):
        assert md[name].startswith(md["issuer"] + "/")  # AS-04: wherever the metadata says
    assert set(md["code_challenge_methods_supported"]) == {"S256", "plain"}  # AS-35
    assert {"client_secret_basic", "private_key_jwt"} <= set(md["token_endpoint_auth_methods_supported"])
    assert "implicit" not in md["grant_types_supported"] and "password" not in md["grant_types_supported"]
    assert md["response_types_supported"] == ["code"]


def test_metadata_is_not_served_under_the_issuer_prefix_or_without_suffix(as_server, http):
    assert http.get(as_server.issuer + "/.well-known/oauth-authorization-server", timeout=10).status_code == 404
    assert http.get(as_server.base + "/x-nmos" + WELL_KNOWN, timeout=10).status_code == 404


def test_jwks_is_public_and_schema_valid(as_server, http):
    resp = http.get(as_server.metadata["jwks_uri"], timeout=10)  # AS-12: no credentials
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    jwks = resp.json()
    validate("jwks_response.json", jwks)
    assert jwks["keys"] and all(k["alg"] == "RS512" and k["use"] == "sig" and k["kid"] for k in jwks["keys"])
    assert http.head(as_server.metadata["jwks_uri"], timeout=10).status_code == 200


@pytest.mark.parametrize("name", ["token_endpoint", "jwks_uri", "registration_endpoint", "authorization_endpoint",
                                  "revocation_endpoint", "well_known"])
def test_cors_preflight_everywhere_allows_authorization(as_server, http, name):
    url = as_server.base + WELL_KNOWN if name == "well_known" else as_server.metadata[name]
    resp = http.options(url, headers={"Origin": "https://controller.example.com",
                                      "Access-Control-Request-Method": "POST"}, timeout=10)
    assert resp.status_code == 200  # GEN-04: no token needed
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "authorization" in resp.headers["access-control-allow-headers"].lower()  # GEN-05
    assert "POST" in resp.headers["access-control-allow-methods"]


def test_every_response_carries_cors_headers(as_server, http):
    resp = http.get(as_server.metadata["jwks_uri"], timeout=10)
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "WWW-Authenticate" in resp.headers["access-control-expose-headers"]


# --- token endpoint: client_credentials + client_secret_basic ---------------------------------------
def test_client_credentials_success(as_server, http, cc_client):
    resp = token_form(http, as_server, {"grant_type": "client_credentials", "scope": "registration"},
                      basic(cc_client["client_id"], cc_client["client_secret"]))
    assert resp.status_code == 200, resp.text
    assert no_store(resp)  # AS-09
    body = resp.json()
    validate("token_response.json", body)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["scope"] == "registration"
    assert "refresh_token" not in body  # AS-40: left out for client_credentials
    import jwt

    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    validate("token_schema.json", claims)
    assert claims["iss"] == as_server.issuer and claims["client_id"] == cc_client["client_id"]
    assert claims["sub"] == cc_client["client_id"] and claims["aud"] == ["*.example.com"]
    assert claims["exp"] - claims["iat"] == 600 and claims["jti"]
    assert claims["x-nmos-registration"] == {"read": ["*"], "write": ["*"]}


def test_default_scope_is_the_clients_client_credentials_scopes(as_server, http, cc_client):
    resp = token_form(http, as_server, {"grant_type": "client_credentials"},
                      basic(cc_client["client_id"], cc_client["client_secret"]))
    assert resp.json()["scope"] == "registration"


def test_basic_credentials_are_form_urlencoded_before_base64(as_server, http):
    # RFC 6749 §2.3.1: a secret with reserved characters travels percent-encoded inside Basic.
    cid, secret = "client-with-odd-secret-0001", "p@ss w:rd+/%=é"
    s = as_server.store()
    with s.transaction():
        s.add_client(cid, secret_hash=digest(secret), auth_method="client_secret_basic", scope="registration",
                     grant_types=["client_credentials"], redirect_uris=[], metadata={"client_name": "odd"},
                     status="active", now=time.time())
    s.close()
    ok = token_form(http, as_server, {"grant_type": "client_credentials"}, basic(cid, secret))
    assert ok.status_code == 200, ok.text
    import base64

    raw = base64.b64encode(("%s:%s" % (cid, secret)).encode()).decode()  # not encoded: "+" and "%" differ
    _error(token_form(http, as_server, {"grant_type": "client_credentials"}, "Basic " + raw), "invalid_client", 401)


def test_wrong_secret_is_401_with_basic_challenge(as_server, http, cc_client):
    resp = token_form(http, as_server, {"grant_type": "client_credentials"}, basic(cc_client["client_id"], "nope"))
    _error(resp, "invalid_client", 401)
    assert resp.headers["www-authenticate"].startswith("Basic realm=")  # RFC 6749 §5.2
    _error(token_form(http, as_server, {"grant_type": "client_credentials"}, "Basic !!!"), "invalid_client", 401)


def test_unauthenticated_confidential_client_is_refused(as_server, http, cc_client):
    _error(token_form(http, as_server, {"grant_type": "client_credentials", "client_id": cc_client["client_id"]}),
           "invalid_client")


def test_client_secret_post_is_not_accepted(as_server, http, cc_client):
    _error(token_form(http, as_server, {"grant_type": "client_credentials", "client_id": cc_client["client_id"],
                                        "client_secret": cc_client["client_secret"]}), "invalid_client")


def test_two_authentication_methods_are_invalid_request(as_server, http, cc_client):
    resp = token_form(http, as_server, {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                                        "client_assertion": "x.y.z"},
                      basic(cc_client["client_id"], cc_client["client_secret"]))
    _error(resp, "invalid_request")


@pytest.mark.parametrize("form,code", [
    ({}, "invalid_request"),
    ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),  # AS-32
    ({"grant_type": "implicit"}, "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "connection"}, "invalid_scope"),  # BCP-G-04
    ({"grant_type": "client_credentials", "scope": "registration nosuchapi"}, "invalid_scope"),  # unknown name
    ({"grant_type": "client_credentials", "scope": "openid"}, "invalid_scope"),  # identity scopes only
    ({"grant_type": "authorization_code", "code": "x"}, "unauthorized_client"),
    ({"grant_type": "refresh_token", "refresh_token": "x" * 64}, "invalid_grant"),
])
def test_token_errors(as_server, http, cc_client, form, code):
    _error(token_form(http, as_server, form, basic(cc_client["client_id"], cc_client["client_secret"])), code)


@pytest.mark.parametrize("scope", ["registration events", "registration openid profile", "openid registration"])
def test_client_credentials_grants_what_the_client_may_have_and_says_so(as_server, http, cc_client, scope):
    # RFC 6749 §3.3: fewer scopes than asked (events is not registered; identity scopes are not
    # served here), reported in the response's `scope`
    resp = token_form(http, as_server, {"grant_type": "client_credentials", "scope": scope},
                      basic(cc_client["client_id"], cc_client["client_secret"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "registration"


def test_token_request_must_be_form_encoded(as_server, http, cc_client):
    resp = http.post(as_server.metadata["token_endpoint"], json={"grant_type": "client_credentials"},
                     headers={"Authorization": basic(cc_client["client_id"], cc_client["client_secret"])}, timeout=10)
    _error(resp, "invalid_request")


def test_repeated_parameter_is_invalid_request(as_server, http, cc_client):
    resp = http.post(as_server.metadata["token_endpoint"], data="grant_type=client_credentials&scope=a&scope=b",
                     headers={"Authorization": basic(cc_client["client_id"], cc_client["client_secret"]),
                              "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    _error(resp, "invalid_request")  # RFC 6749 §3.1


def test_credentials_in_the_query_string_are_refused(as_server, http, cc_client):
    url = as_server.metadata["token_endpoint"] + "?client_secret=" + cc_client["client_secret"]
    resp = http.post(url, data={"grant_type": "client_credentials"},
                     headers={"Authorization": basic(cc_client["client_id"], cc_client["client_secret"])}, timeout=10)
    _error(resp, "invalid_request")  # IS-10 §12 B4


def test_public_and_pending_clients_get_no_client_credentials(as_server, http):
    pending = as_server.add_client(status="pending")
    _error(token_form(http, as_server, {"grant_type": "client_credentials"},
                      basic(pending["client_id"], pending["client_secret"])), "unauthorized_client")
    public = as_server.add_client(grants=["authorization_code"], auth="none", scope="query",
                                  redirect_uris=["https://app.example.com/cb"])
    _error(token_form(http, as_server, {"grant_type": "client_credentials", "client_id": public["client_id"]}),
           "unauthorized_client")  # AS-36: confidential only
    code_client = as_server.add_client(grants=["authorization_code"], scope="query",
                                       redirect_uris=["https://app.example.com/cb"])
    _error(token_form(http, as_server, {"grant_type": "client_credentials"},
                      basic(code_client["client_id"], code_client["client_secret"])), "unauthorized_client")


def test_token_endpoint_only_accepts_post(as_server, http):
    assert http.get(as_server.metadata["token_endpoint"], timeout=10).status_code == 405


# --- private_key_jwt (RFC 7523) -------------------------------------------------------------------
@pytest.fixture(scope="module")
def pkj(as_server):
    from cryptography.hazmat.primitives.asymmetric import ec

    priv = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [public_jwk(priv, "node-key-1", "ES256")]}
    client = as_server.add_client(auth="private_key_jwt", jwks=jwks, scope="registration events")
    return client, priv


def _assertion(as_server, client_id, priv, **over):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": as_server.metadata["token_endpoint"], "iat": now,
              "exp": now + 60, "jti": str(uuid.uuid4())}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return encode_token({"alg": "ES256", "typ": "JWT", "kid": "node-key-1"}, claims, priv)


def _pkj_form(assertion, **extra):
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    form.update(extra)
    return form


def test_private_key_jwt_success_and_jti_single_use(as_server, http, pkj):
    client, priv = pkj
    a = _assertion(as_server, client["client_id"], priv)
    resp = token_form(http, as_server, _pkj_form(a, scope="events", client_id=client["client_id"]))
    assert resp.status_code == 200, resp.text
    validate("token_response.json", resp.json())
    assert resp.json()["scope"] == "events"
    _error(token_form(http, as_server, _pkj_form(a)), "invalid_client")  # replayed jti


def test_private_key_jwt_aud_may_be_the_issuer(as_server, http, pkj):
    client, priv = pkj
    a = _assertion(as_server, client["client_id"], priv, aud=[as_server.issuer, "https://other.example.com"])
    assert token_form(http, as_server, _pkj_form(a)).status_code == 200


@pytest.mark.parametrize("over", [
    {"aud": "https://elsewhere.example.com/token"},
    {"exp": None},
    {"exp": int(time.time()) - 120},
    {"exp": int(time.time()) + 86400},
    {"jti": None},
    {"iss": "someone-else"},
    {"nbf": int(time.time()) + 600},
])
def test_private_key_jwt_bad_claims(as_server, http, pkj, over):
    client, priv = pkj
    _error(token_form(http, as_server, _pkj_form(_assertion(as_server, client["client_id"], priv, **over))),
           "invalid_client")


def test_private_key_jwt_wrong_key_or_type(as_server, http, pkj):
    from cryptography.hazmat.primitives.asymmetric import ec

    client, priv = pkj
    forged = _assertion(as_server, client["client_id"], ec.generate_private_key(ec.SECP256R1()))
    _error(token_form(http, as_server, _pkj_form(forged)), "invalid_client")
    good = _assertion(as_server, client["client_id"], priv)
    _error(token_form(http, as_server, _pkj_form(good, client_assertion_type="urn:x")), "invalid_client")
    import base64

    none = ".".join(base64.urlsafe_b64encode(json.dumps(x).encode()).decode().rstrip("=")
                    for x in ({"alg": "none"}, {"iss": client["client_id"], "sub": client["client_id"]})) + "."
    _error(token_form(http, as_server, _pkj_form(none)), "invalid_client")


def test_private_key_jwt_with_jwks_uri(as_server, http, as_pki):
    """The client's keys are fetched from its jwks_uri over verified TLS, and refetched on rotation."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from nmosauth_lite.aio.server import HTTPServer
    from nmosauth_lite.aio.web import json_response
    from nmosauth_lite.aio.tlsutil import server_context

    keys = {"current": rsa.generate_private_key(65537, 2048)}

    def handler(request):
        return json_response({"keys": [public_jwk(keys["current"], "k", "RS256")]})

    async def start():
        srv = HTTPServer(handler, ssl=server_context(as_pki.cert, as_pki.key))
        await srv.start("127.0.0.1", 0)
        return srv

    srv = as_server.call(start())
    try:
        uri = "https://localhost:%d/jwks.json" % srv.port
        client = as_server.add_client(auth="private_key_jwt", jwks_uri=uri)
        cid = client["client_id"]

        def assertion(priv):
            now = int(time.time())
            return encode_token({"alg": "RS256", "kid": "k"}, {"iss": cid, "sub": cid, "exp": now + 60,
                                "aud": as_server.metadata["token_endpoint"], "jti": str(uuid.uuid4())}, priv)

        assert token_form(http, as_server, _pkj_form(assertion(keys["current"]))).status_code == 200
        keys["current"] = rsa.generate_private_key(65537, 2048)  # the client rotates its key
        as_server.clock.advance(11)  # the cached set is refetched when the signature fails (10 s floor)
        try:
            resp = token_form(http, as_server, _pkj_form(assertion(keys["current"])))
        finally:
            as_server.clock.advance(-11)
        assert resp.status_code == 200, resp.text
    finally:
        as_server.call(srv.shutdown(1))


# --- revocation (RFC 7009) -----------------------------------------------------------------------
def _revoke(http, as_server, form, auth=None):
    headers = {"Authorization": auth} if auth else {}
    return http.post(as_server.metadata["revocation_endpoint"], data=form, headers=headers, timeout=10)


def test_revocation_of_unknown_token_is_200(as_server, http, cc_client):
    resp = _revoke(http, as_server, {"token": "not-a-token", "token_type_hint": "refresh_token"},
                   basic(cc_client["client_id"], cc_client["client_secret"]))
    assert resp.status_code == 200 and resp.content == b""


def test_revocation_needs_client_authentication_and_token(as_server, http, cc_client):
    _error(_revoke(http, as_server, {"token": "x"}, basic(cc_client["client_id"], "wrong")), "invalid_client", 401)
    _error(_revoke(http, as_server, {}, basic(cc_client["client_id"], cc_client["client_secret"])), "invalid_request")


def test_access_tokens_are_not_revocable(as_server, http, cc_client):
    auth = basic(cc_client["client_id"], cc_client["client_secret"])
    at = token_form(http, as_server, {"grant_type": "client_credentials"}, auth).json()["access_token"]
    _error(_revoke(http, as_server, {"token": at, "token_type_hint": "access_token"}, auth), "unsupported_token_type")
