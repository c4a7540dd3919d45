"""The IS-10 Authorization API over HTTP: routes on aio/server.py for the lite AS.

Paths are the ones the RFC 8414 metadata advertises (IS-10 AS-03..AS-05): metadata at
/.well-known/oauth-authorization-server/<issuer path>, then <issuer>/jwks, /token,
/register, /authorize and /revoke. Every response carries CORS headers and OPTIONS is
answered everywhere, allowing the Authorization header (IS-10 GEN-04, GEN-05). Token
and revocation bodies must be form-encoded; credentials in a query string are refused
(IS-10 §12 B4). JSON answers are application/json (GEN-03); tokens and secrets no-store.
Like every NMOS API, /x-nmos/ and /x-nmos/auth/ list what is below them (with or without
the trailing slash) and unknown paths get 404 with the NMOS error JSON. The client's
address for throttling is the connection's peer address (never X-Forwarded-For). Metadata also at
the bare well-known path; each answer logged at INFO (issue 19 §3).
"""

import logging
import time
import urllib.parse

from ..aio.admission import Grouping
from ..aio.web import Response, Router, json_response
from ..logfield import escape
from .authorize import AuthorizationEndpoint
from .clientauth import ASSERTION_ALGS, ClientAuthenticator
from .clientkeys import ClientKeys
from .config import LAB_WARNING
from .oauth import GRANTS, OAuthServer
from .protocol import MAX_FORM, NO_STORE, OAuthError, media_type, parse_form
from .registration import MAX_BODY, Registrar

WELL_KNOWN = "/.well-known/oauth-authorization-server"  # RFC 8414 §3, IS-10 AS-03
FORM = "application/x-www-form-urlencoded"
CORS_HEADERS = [("access-control-allow-origin", "*"),
                ("access-control-expose-headers", "WWW-Authenticate, Retry-After")]
PREFLIGHT_HEADERS = [("access-control-allow-methods", "GET, HEAD, POST, OPTIONS"),
                     ("access-control-max-age", "600")]
DEFAULT_ALLOW_HEADERS = "Authorization, Content-Type, Accept"  # GEN-05: Authorization is a must
_QUERY_CREDENTIALS = ("client_secret", "client_assertion", "code", "refresh_token", "token", "code_verifier",
                      "password")
AUTH_METHODS = ["client_secret_basic", "private_key_jwt", "none"]
MAX_LOGGED_PATH = 200  # characters of a request path in the access log

log = logging.getLogger("nmosauth_lite.authserver.access")


def _source(request):
    """The peer's address as the server saw it (X-Forwarded-For is the client's to write)."""
    peer = request.client
    return peer[0] if peer else None


def _logged(request, resp):
    """Method, path (never the query), status, peer: no token or secret is in these."""
    if log.isEnabledFor(logging.INFO):
        peer = request.client
        log.info("%s %s %d %s", escape(request.method[:16]), escape(request.path[:MAX_LOGGED_PATH]), resp.status,
                 escape(str(peer[0])) if peer else "-")
    return resp


def _oauth_json(status, body, headers):
    if body is None:
        return Response(status, b"", headers)
    return json_response(body, status, headers)


class AuthServerApp:
    """A request handler (a callable returning a Response or an awaitable of one)."""

    def __init__(self, config, store, keyring, *, issuer, clock=time.time, client_keys=None):
        self.config = config
        self.store = store
        self.keyring = keyring
        self.issuer = issuer.rstrip("/")
        self.clock = clock
        self.endpoints = {n: self.issuer + "/" + n for n in ("authorize", "token", "jwks", "register", "revoke")}
        self.metadata_path = WELL_KNOWN + urllib.parse.urlsplit(self.issuer).path
        self.client_keys = client_keys or ClientKeys(
            algorithms=ASSERTION_ALGS, allow_private=config.jwks_allow_private, min_ttl=config.jwks_min_ttl,
            max_ttl=config.jwks_max_ttl, negative_ttl=config.jwks_negative_ttl, ca_file=config.trust_ca_file)
        self.grouping = Grouping(getattr(config, "address_group", 32))  # issue 23: one policy for every table
        self.authenticator = ClientAuthenticator(store, issuer=self.issuer, token_endpoint=self.endpoints["token"],
                                                 client_keys=self.client_keys, grouping=self.grouping)
        self.oauth = OAuthServer(config, store, keyring, self.authenticator, issuer=self.issuer,
                                 token_endpoint=self.endpoints["token"],
                                 revocation_endpoint=self.endpoints["revoke"])
        self.registrar = Registrar(config, store, realm=self.issuer, grouping=self.grouping)
        self.authz = AuthorizationEndpoint(config, store, issuer=self.issuer, endpoint=self.endpoints["authorize"],
                                           grouping=self.grouping)
        r = self.router = Router()
        r.add("GET", self.metadata_path, self._metadata)
        if self.metadata_path != WELL_KNOWN:
            # the reference C++ Node asks here after a key rotation; one issuer per host and port
            r.add("GET", WELL_KNOWN, self._metadata)
        path = {n: urllib.parse.urlsplit(u).path for n, u in self.endpoints.items()}
        r.add("GET", path["jwks"], self._jwks)
        r.add("POST", path["token"], self._token)
        r.add("POST", path["register"], self._register)
        r.add(["GET", "POST"], path["authorize"], self._authorize)
        r.add("POST", path["revoke"], self._revoke)
        self._add_listings(urllib.parse.urlsplit(self.issuer).path)

    def _add_listings(self, issuer_path):
        """NMOS API listings above the issuer path, e.g. /x-nmos/ -> ["auth/"], /x-nmos/auth/ -> ["v1.0/"]."""
        segments = [s for s in issuer_path.split("/") if s]
        if not segments or segments[0] != "x-nmos":
            return  # a configured issuer_path outside /x-nmos: nothing NMOS to list
        for depth in range(1, len(segments)):
            base = "/" + "/".join(segments[:depth])
            body = [segments[depth] + "/"]
            for p in (base, base + "/"):
                self.router.add("GET", p, lambda request, body=body: json_response(body))

    def metadata(self):
        """RFC 8414 §2 metadata; valid against IS-10 auth_metadata.json (AS-03)."""
        e = self.endpoints
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": e["authorize"],
            "token_endpoint": e["token"],
            "jwks_uri": e["jwks"],
            "registration_endpoint": e["register"],
            "revocation_endpoint": e["revoke"],
            "scopes_supported": list(self.config.scopes),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANTS),
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "code_challenge_methods_supported": ["S256", "plain"],
            "authorization_response_iss_parameter_supported": True,
        }
        if self.config.lab:  # RFC 8414 §2 allows more members: say it where every client looks (issue 22)
            doc["nmosauth_lite_lab_mode"] = LAB_WARNING
        return doc

    async def close(self):
        await self.client_keys.close()

    # --- CORS around everything (IS-10 GEN-05), and the access log -------------------------------
    def __call__(self, request):
        if request.method == "OPTIONS":
            asked = request.header("access-control-request-headers")
            allow = DEFAULT_ALLOW_HEADERS
            if asked and len(asked) < 512 and all(c.isalnum() or c in "-_, " for c in asked):
                allow = asked  # echoing is allowed by GEN-05 and keeps custom headers working
            return _logged(request, Response(200, b"", CORS_HEADERS + PREFLIGHT_HEADERS
                                             + [("access-control-allow-headers", allow)]))
        result = self.router(request)
        if isinstance(result, Response):
            result.headers.extend(CORS_HEADERS)
            return _logged(request, result)
        return self._with_cors(request, result)

    async def _with_cors(self, request, awaitable):
        resp = await awaitable
        resp.headers.extend(CORS_HEADERS)
        return _logged(request, resp)

    # --- handlers ---------------------------------------------------------------------------------
    def _metadata(self, request):
        return json_response(self.metadata())

    def _jwks(self, request):
        return json_response(self.keyring.jwks(self.clock()))

    async def _form(self, request):
        """The request's form (OAuthError when it is not one); query credentials refused."""
        body = await request.read(limit=MAX_FORM)
        if media_type(request.header("content-type")) != FORM:
            raise OAuthError("invalid_request", "the body must be " + FORM)
        if request.query:
            query = urllib.parse.parse_qs(request.query)
            if any(k in query for k in _QUERY_CREDENTIALS):
                raise OAuthError("invalid_request", "credentials must not be sent in the URL")
        return parse_form(body)

    async def _token(self, request):
        try:
            form = await self._form(request)
        except OAuthError as e:
            return _oauth_json(e.status, e.body(), NO_STORE)
        status, body, headers = await self.oauth.token(form, request.header("authorization"), self.clock(),
                                                       _source(request))
        return _oauth_json(status, body, headers)

    async def _revoke(self, request):
        try:
            form = await self._form(request)
        except OAuthError as e:
            return _oauth_json(e.status, e.body(), NO_STORE)
        status, body, headers = await self.oauth.revoke(form, request.header("authorization"), self.clock(),
                                                        _source(request))
        return _oauth_json(status, body, headers)

    async def _register(self, request):
        body = await request.read(limit=MAX_BODY)
        status, out, headers = self.registrar.register(body, request.header("content-type"),
                                                       request.header("authorization"), self.clock(),
                                                       _source(request))
        return json_response(out, status, headers)

    async def _authorize(self, request):
        now = self.clock()
        if request.method == "POST":
            body = await request.read(limit=MAX_FORM)
            if media_type(request.header("content-type")) != FORM:
                return Response(415, b"form expected", [("content-type", "text/plain")])
            result = await self.authz.finish(body, now, _source(request))
        else:
            result = self.authz.start(request.query, now, _source(request))
        return Response(result.status, result.body, result.headers)
