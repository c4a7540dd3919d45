"""Third-party clients against the running server over real TLS: authlib (OAuth2Session on requests)
completes client_credentials (secret and private_key_jwt) and authorization code + PKCE with refresh;
PyJWT (keys fetched by its own PyJWKClient) and our TokenValidator accept every issued token."""

import ssl
import urllib.parse

import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from as_support import ASThread, as_pki, as_server, http, server_table  # noqa: F401 (fixtures)
from nmosauth_lite.jws import IS10_STRICT_ALGORITHMS
from nmosauth_lite.validator import TokenValidator
from as_flows import CB, parse_form

NODE = "node7.example.com"


def _session(srv, client_id, secret=None, **kw):
    s = OAuth2Session(client_id, secret, **kw)
    s.trust_env = False  # keep REQUESTS_CA_BUNDLE out: verify against the test CA only
    s.verify = srv.ca_file
    return s


def _pyjwt_claims(srv, token, alg="RS512"):
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    key = jwt.PyJWKClient(srv.metadata["jwks_uri"], ssl_context=ctx).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=[alg], audience="*.example.com", issuer=srv.issuer,
                      options={"require": ["iss", "sub", "aud", "exp", "iat"]})


def _validator(srv, http, strict=True):
    jwks = http.get(srv.metadata["jwks_uri"], timeout=10).json()
    algs = IS10_STRICT_ALGORITHMS if strict else ("RS512", "ES256")
    return TokenValidator(jwks=jwks, audience=[NODE], issuers=[srv.issuer], algorithms=algs)


def test_authlib_client_credentials_with_client_secret_basic(as_server, http):
    client = as_server.add_client(scope="registration events")
    s = _session(as_server, client["client_id"], client["client_secret"], scope="registration",
                 token_endpoint_auth_method="client_secret_basic")
    token = s.fetch_token(as_server.metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "registration"
    claims = _pyjwt_claims(as_server, token["access_token"])
    assert claims["client_id"] == client["client_id"]
    v = _validator(as_server, http)
    at = token["access_token"]
    assert v.check(at, "POST", "/x-nmos/registration/v1.3/resource").allowed
    assert v.check(at, "POST", "/x-nmos/registration/v1.3/health/nodes/abc").allowed
    assert v.check(at, "GET", "/x-nmos/query/v1.3/nodes").status == 403  # no query scope
    wrong_aud = TokenValidator(jwks=http.get(as_server.metadata["jwks_uri"], timeout=10).json(),
                               audience=["node7.other.org"])
    assert wrong_aud.check(at, "GET", "/x-nmos/registration/v1.3").status == 403


def test_authlib_client_credentials_with_private_key_jwt(as_server, http):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from minting import public_jwk

    priv = rsa.generate_private_key(65537, 2048)
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    client = as_server.add_client(auth="private_key_jwt", jwks={"keys": [public_jwk(priv, alg="RS256")]})
    s = _session(as_server, client["client_id"], pem, scope="registration",
                 token_endpoint_auth_method="private_key_jwt")
    s.register_client_auth_method(PrivateKeyJWT(as_server.metadata["token_endpoint"]))
    token = s.fetch_token(as_server.metadata["token_endpoint"], grant_type="client_credentials")
    assert _pyjwt_claims(as_server, token["access_token"])["scope"] == "registration"
    # a second request signs a fresh assertion (new jti) and works too
    assert s.fetch_token(as_server.metadata["token_endpoint"], grant_type="client_credentials")["access_token"]


def _browser_login(srv, http, url, user, password):
    """What a person does in a browser: open the URL, fill in the form, press "allow"."""
    page = http.get(url, timeout=10)
    assert page.status_code == 200, page.text
    form = parse_form(page.text)
    data = dict(form.inputs, username=user, password=password, action="approve")
    resp = http.post(urllib.parse.urljoin(url, form.action), data=data, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


@pytest.mark.parametrize("public", [True, False])
def test_authlib_authorization_code_with_pkce_and_refresh(as_server, http, public):
    user, password = as_server.add_user("operator1", "operator password")
    client = as_server.add_client(grants=["authorization_code", "refresh_token"], auth="none" if public else
                                  "client_secret_basic", scope="query connection", redirect_uris=[CB])
    s = _session(as_server, client["client_id"], client.get("client_secret"), redirect_uri=CB,
                 scope="query connection", code_challenge_method="S256",
                 token_endpoint_auth_method="none" if public else "client_secret_basic")
    verifier = __import__("secrets").token_urlsafe(64)
    url, state = s.create_authorization_url(as_server.metadata["authorization_endpoint"], code_verifier=verifier)
    location = _browser_login(as_server, http, url, user, password)
    token = s.fetch_token(as_server.metadata["token_endpoint"], authorization_response=location,
                          code_verifier=verifier)
    assert token["refresh_token"] and token["scope"] == "query connection"
    claims = _pyjwt_claims(as_server, token["access_token"])
    assert claims["sub"] == user and claims["x-nmos-connection"]["read"] == ["*"]
    v = _validator(as_server, http)
    at = token["access_token"]
    assert v.check(at, "GET", "/x-nmos/query/v1.3/nodes").allowed
    assert v.check(at, "POST", "/x-nmos/query/v1.3/subscriptions").allowed  # IS-10 §12 A6 handled
    assert v.check(at, "PATCH", "/x-nmos/connection/v1.1/single/receivers/abc/staged").allowed
    assert v.check(at, "PATCH", "/x-nmos/connection/v1.1/single/receivers/abc/active").status == 403
    assert v.check(at, "GET", "/x-nmos/node/v1.3/self").status == 403
    old_rt = token["refresh_token"]
    new = s.refresh_token(as_server.metadata["token_endpoint"])
    assert new["refresh_token"] != old_rt
    assert _pyjwt_claims(as_server, new["access_token"])["sub"] == user
    s.revoke_token(as_server.metadata["revocation_endpoint"], new["refresh_token"], token_type_hint="refresh_token")
    with pytest.raises(Exception):
        s.refresh_token(as_server.metadata["token_endpoint"], refresh_token=new["refresh_token"])


def test_es256_server_tokens_validate(tmp_path, as_pki):
    import requests

    with ASThread(server_table(as_pki, tokens={"alg": "ES256"}), str(tmp_path)) as srv, requests.Session() as h:
        h.trust_env = False
        h.verify = srv.ca_file
        client = srv.add_client()
        s = _session(srv, client["client_id"], client["client_secret"], scope="registration")
        at = s.fetch_token(srv.metadata["token_endpoint"], grant_type="client_credentials")["access_token"]
        assert jwt.get_unverified_header(at)["alg"] == "ES256"
        assert _pyjwt_claims(srv, at, alg="ES256")["scope"] == "registration"
        assert _validator(srv, h, strict=False).check(at, "GET", "/x-nmos/registration/v1.3").allowed
        # the IS-10 strict profile has no use for its key at all (TOK-03): the reason RS512 is the default
        from nmosauth_lite.errors import KeyFormatError

        with pytest.raises(KeyFormatError):
            _validator(srv, h, strict=True)
