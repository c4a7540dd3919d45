"""The same Node flow against an independent OAuth server built in this test with authlib (flask):
RFC 8414 metadata, RFC 7591 registration with an initial access token, RFC 7592 read-back,
client_credentials with client_secret_basic and private_key_jwt (RFC 7523), RFC 9068 JWT access
tokens carrying an x-nmos claim, RFC 7009 revocation. Served over TLS by werkzeug in a thread,
so we are not only compatible with ourselves."""

import hmac
import inspect
import secrets
import threading
import time

import pytest
import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Flask, jsonify
from werkzeug.serving import make_server

from client_support import make_pki, resource_server_for, run
from nmosauth_lite.aio.client import HTTPClient
from nmosauth_lite.aio.oauth import (BearerClient, CredentialStore, JWKSServer, OAuthClient, ServerSelector,
                                     TokenManager)
from nmosauth_lite.aio.tlsutil import server_context
from nmosauth_lite.jws import parse

try:  # authlib >= 1.7 signs with joserfc
    from joserfc.jwk import KeySet, RSAKey

    def _new_rsa_key(params):
        return RSAKey.generate_key(2048, parameters=params, private=True)

    def _client_key(jwks, headers):
        return KeySet.import_key_set(jwks)

    def _public_jwks(keys):
        return KeySet(keys).as_dict(private=False)
except ImportError:  # authlib 1.6: the newest that runs on Debian bookworm's cryptography 38 (issue 18)
    from authlib.jose import JsonWebKey, KeySet, RSAKey

    def _new_rsa_key(params):
        return RSAKey.generate_key(2048, options=params, is_private=True)

    def _client_key(jwks, headers):  # 1.6 wants the one key
        return JsonWebKey.import_key_set(jwks).find_by_kid(headers["kid"])

    def _public_jwks(keys):
        return KeySet(keys).as_dict(is_private=False)

IAT = "authlib-initial-token-" + secrets.token_urlsafe(8)
PERMS = {"read": ["*"], "write": ["*"]}


class Client(ClientMixin):
    def __init__(self, info, metadata):
        self.client_info, self.client_metadata = info, metadata

    def get_client_id(self):
        return self.client_info["client_id"]

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        allowed = set(self.client_metadata.get("scope", "").split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret, self.client_info.get("client_secret") or "")

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.client_metadata.get("token_endpoint_auth_method", "client_secret_basic")

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type in self.client_metadata.get("grant_types", [])


class Token:
    def __init__(self, client_id, access_token):
        self.client_id, self.access_token, self.revoked = client_id, access_token, False

    def check_client(self, client):
        return client.get_client_id() == self.client_id


class AuthlibAS:
    """A small IS-10-shaped authorization server made of authlib parts."""

    def __init__(self, pki):
        self.pki = pki
        self.clients, self.tokens, self.jtis, self.rats = {}, {}, set(), {}
        self.key = _new_rsa_key({"kid": "authlib-1", "use": "sig", "alg": "RS256"})
        self.registrations = 0
        self.readbacks = 0
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = pki.ca_cert  # to fetch our client's jwks_uri

    def metadata(self):
        i = self.issuer
        return {"issuer": i, "token_endpoint": i + "/token", "jwks_uri": i + "/jwks",
                "registration_endpoint": i + "/register", "revocation_endpoint": i + "/revoke",
                "grant_types_supported": ["client_credentials"], "response_types_supported": ["none"],
                "scopes_supported": ["registration", "events"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"]}

    def build(self):
        app = Flask("authlib-as")
        outer = self
        server = AuthorizationServer(app, query_client=self.clients.get,
                                     save_token=lambda tok, req: self.tokens.__setitem__(
                                         tok["access_token"], Token(req.client.get_client_id(), tok["access_token"])))

        class Assertion(JWTBearerClientAssertion):
            CLIENT_AUTH_METHOD = "private_key_jwt"

            def get_audiences(self):
                return [outer.issuer + "/token", outer.issuer]

            def validate_jti(self, claims, jti):
                if jti in outer.jtis:
                    return False
                outer.jtis.add(jti)
                return True

            def resolve_client_public_key(self, client, headers=None):  # headers: authlib 1.6
                return _client_key(outer.http.get(client.client_metadata["jwks_uri"], timeout=5).json(), headers)

        class ClientCredentials(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

        class Generator(JWTBearerTokenGenerator):
            def get_jwks(self):
                return KeySet([outer.key])

            def get_audiences(self, client, user, scope):
                return ["*.example.com"]

            def get_extra_claims(self, client, grant_type, user, scope):
                return {"x-nmos-" + s: PERMS for s in (scope or "").split()}

        class Register(ClientRegistrationEndpoint):
            def authenticate_token(self, req):
                auth = req.headers.get("Authorization", "")
                return auth == "Bearer " + IAT or None

            def get_server_metadata(self):
                return outer.metadata()

            def save_client(self, info, metadata, req):
                outer.registrations += 1
                c = outer.clients[info["client_id"]] = Client(info, metadata)
                return c

            def generate_client_registration_info(self, client, req):
                rat = secrets.token_urlsafe(24)
                outer.rats[rat] = client.get_client_id()
                return {"registration_client_uri": outer.issuer + "/register/" + client.get_client_id(),
                        "registration_access_token": rat}

            def generate_client_secret(self, req):
                if req.payload.data.get("token_endpoint_auth_method") == "private_key_jwt":
                    return None
                return secrets.token_urlsafe(32)

        class Configure(ClientConfigurationEndpoint):
            def authenticate_token(self, req):
                rat = req.headers.get("Authorization", "")[7:]
                cid = outer.rats.get(rat)
                return _RAT(cid) if cid else None

            def authenticate_client(self, req):
                return outer.clients.get(req.uri.rstrip("/").rsplit("/", 1)[-1])

            def revoke_access_token(self, req, token):
                outer.rats = {k: v for k, v in outer.rats.items() if v != token.client_id}

            def check_permission(self, client, req):
                outer.readbacks += 1
                return True

            def delete_client(self, client, req):
                outer.clients.pop(client.get_client_id(), None)

            def update_client(self, client, metadata, req):
                client.client_metadata.update(metadata)
                return client

            def generate_client_registration_info(self, client, req):
                return {"registration_client_uri": req.uri,
                        "registration_access_token": req.headers["Authorization"][7:]}

            def get_server_metadata(self):
                return outer.metadata()

        class Revoke(RevocationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

            def query_token(self, token_string, hint):
                return outer.tokens.get(token_string)

            def revoke_token(self, token, req):
                token.revoked = True

        # authlib 1.6 takes the token URL (the one audience it accepts) here; it is set in start()
        old_api = "token_url" in inspect.signature(JWTBearerClientAssertion.__init__).parameters
        self.assertion = Assertion(None) if old_api else Assertion()
        server.register_client_auth_method("private_key_jwt", self.assertion)
        server.register_grant(ClientCredentials)
        server.register_token_generator("client_credentials", Generator(
            "", expires_generator=lambda client, grant_type: 60))
        server.register_endpoint(Register)
        server.register_endpoint(Configure)
        server.register_endpoint(Revoke)
        self.generator = server._token_generators["client_credentials"]

        @app.get("/.well-known/oauth-authorization-server")
        def metadata():
            return jsonify(outer.metadata())

        @app.get("/jwks")
        def jwks():
            return jsonify(_public_jwks([outer.key]))

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.post("/register")
        def register():
            return server.create_endpoint_response("client_registration")

        @app.route("/register/<cid>", methods=["GET", "PUT", "DELETE"])
        def configure(cid):
            return server.create_endpoint_response("client_configuration")

        @app.post("/revoke")
        def revoke():
            return server.create_endpoint_response("revocation")

        return app

    def start(self):
        app = self.build()
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(self.pki.cert, self.pki.key))
        self.issuer = "https://localhost:%d" % self.httpd.server_port
        self.generator.issuer = self.issuer
        if getattr(self.assertion, "token_url", "") is None:
            self.assertion.token_url = self.issuer + "/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="authlib-as", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.thread.join(10)
        self.http.close()


class _RAT:
    def __init__(self, client_id):
        self.client_id = client_id

    def check_client(self, client):
        return client.get_client_id() == self.client_id


@pytest.fixture()
def authlib_as(tmp_path):
    pki = make_pki(str(tmp_path / "pki"))
    s = AuthlibAS(pki).start()
    yield s
    s.stop()


def _client(tmp_path, s, **kw):
    sel = ServerSelector(issuers=[s.issuer], ca_file=s.pki.ca_cert, auth_method=kw.get("auth_method",
                                                                                       "client_secret_basic"))
    store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k"))
    return sel, store, OAuthClient(sel, store, name="ACME Encoder-9 SN-AUTHLIB", scope="registration",
                                   initial_token=IAT, **kw)


def test_client_credentials_with_basic_readback_revocation_and_reregistration(tmp_path, authlib_as):
    s = authlib_as

    async def go():
        rs = await resource_server_for(s.pki, str(tmp_path / "rs"), s.pki.ca_cert, ["registry.example.com"],
                                       issuers=[s.issuer])
        sel, store, client = _client(tmp_path, s)
        async with TokenManager(client) as m:
            tok = await m.token()
            claims = parse(tok).claims
            assert claims["iss"] == s.issuer and parse(tok).header["typ"] == "at+jwt"
            async with HTTPClient(ca_file=s.pki.ca_cert) as h:
                r = await BearerClient(m, h).post_json(rs.url, {})
                assert r.status == 200 and r.json()["client_id"] == claims["client_id"]
            rec = store.load(s.issuer)
            assert rec["registration_client_uri"].endswith("/register/" + claims["client_id"])
        assert s.tokens[tok].revoked  # RFC 7009 at shutdown
        await sel.close()
        # restart: the stored registration is read back (RFC 7592), not repeated
        sel, store, client = _client(tmp_path, s)
        first = (await client.client_credentials())["access_token"]
        assert client.registrations == 0 and s.readbacks == 1
        await sel.close()
        # the server deletes the client: the next start's read-back gets 401 -> register again
        s.clients.clear()
        sel, store, client = _client(tmp_path, s)
        second = (await client.client_credentials())["access_token"]
        assert client.registrations == 1
        assert parse(second).claims["client_id"] != parse(first).claims["client_id"]
        await sel.close()
        await rs.close()

    run(go())
    assert s.registrations == 2


def test_private_key_jwt_against_authlib(tmp_path, authlib_as):
    s = authlib_as

    async def go():
        store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k"))
        key = store.signing_key()
        jwks = JWKSServer(key, server_context(s.pki.cert, s.pki.key))
        await jwks.start("127.0.0.1", 0)
        sel, store, client = _client(tmp_path, s, auth_method="private_key_jwt", signing_key=key,
                                     jwks_uri="https://localhost:%d%s" % (jwks.port, jwks.path))
        a = await client.client_credentials()
        b = await client.client_credentials()  # a second assertion with a fresh jti
        await sel.close()
        await jwks.close()
        return a, b, client

    a, b, client = run(go())
    assert parse(a["access_token"]).claims["client_id"] == parse(b["access_token"]).claims["client_id"]
    assert len(s.jtis) == 2 and client.registrations == 1
    (c,) = s.clients.values()
    assert c.client_metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert not c.client_info.get("client_secret")


def test_expires_in_from_another_server_counts_from_before_the_request(tmp_path, authlib_as):
    s = authlib_as

    async def go():
        sel, store, client = _client(tmp_path, s)
        t0 = time.time()
        tokens = await client.client_credentials()
        await sel.close()
        return t0, tokens

    t0, tokens = run(go())
    assert tokens["expires_in"] == 60 and t0 <= tokens["issued_at"] and tokens["expires_at"] - t0 <= 61
