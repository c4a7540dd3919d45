"""Client authentication at the token and revocation endpoints (IS-10 AS-30, RFC 6749 §2.3).

Methods: client_secret_basic (RFC 6749 §2.3.1: client_id and secret are
form-urlencoded before base64, then compared as SHA-256 digests in constant time),
private_key_jwt (RFC 7523 §2.2, §3: iss = sub = client_id, aud = the token endpoint,
the endpoint called or the issuer, exp required and near, single-use jti, keys from
the client's registered `jwks` or `jwks_uri`), and `none` for public clients (client_id
only). One method per request; the registered method is the only one accepted.
"""

import base64
import binascii
import hmac
import logging
import urllib.parse

from .. import jws as _jws
from ..errors import KeyFormatError, NmosAuthError, TokenError
from ..jwk import parse_jwks
from .protocol import OAuthError
from .store import digest

log = logging.getLogger("nmosauth_lite.authserver.clientauth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
ASSERTION_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384")  # not access tokens: TOK-03 does not bind
MAX_ASSERTION_LIFETIME = 3600  # exp further ahead than this is refused (RFC 7523 §3 item 4)
LEEWAY = 10  # clock skew allowed on exp/nbf/iat of an assertion
MAX_JTI = 256
JWKS_TTL = 300  # a fetched client jwks_uri is reused this long
JWKS_MIN_REFETCH = 10  # ...and refetched on a failed signature at most this often
MAX_CACHED_JWKS = 1024


def _unauthorized(description, basic_realm=None):
    # RFC 6749 §5.2: 401 + WWW-Authenticate when the client used the Authorization header.
    if basic_realm is not None:
        return OAuthError("invalid_client", description, 401, [("www-authenticate", 'Basic realm="%s"' % basic_realm)])
    return OAuthError("invalid_client", description, 400)


class ClientAuthenticator:
    """`await authenticate(form, authorization, now, endpoint_url)` -> the client's store row."""

    def __init__(self, store, *, issuer, token_endpoint, fetch_json=None, backend="auto"):
        self.store = store
        self.issuer = issuer
        self.token_endpoint = token_endpoint
        self.realm = issuer
        self.fetch_json = fetch_json  # async url -> parsed JSON; None: jwks_uri clients cannot authenticate
        self.backend_name = backend
        self._backend = None
        self._jwks = {}  # jwks_uri -> (keys, fetched_at)

    @property
    def backend(self):
        if self._backend is None:
            from ..crypto import get_backend

            self._backend = get_backend(self.backend_name)
        return self._backend

    async def authenticate(self, form, authorization, now, endpoint_url):
        basic = authorization is not None and authorization[:6].lower() == "basic "
        if authorization is not None and not basic:
            raise OAuthError("invalid_request", "unsupported Authorization scheme at this endpoint")
        assertion = "client_assertion" in form or "client_assertion_type" in form
        if basic + assertion + ("client_secret" in form) > 1:
            raise OAuthError("invalid_request", "more than one client authentication method")  # RFC 6749 §2.3
        if "client_secret" in form:
            raise _unauthorized("client_secret_post is not supported: use client_secret_basic or private_key_jwt")
        if basic:
            client = self._basic(authorization[6:].strip())
        elif assertion:
            client = await self._assertion(form, now, endpoint_url)
        else:
            cid = form.get("client_id")
            client = self.store.get_client(cid) if cid else None
            if client is None or client["auth_method"] != "none":
                # IS-10 AS-24: public clients only; confidential ones must authenticate.
                raise _unauthorized("client authentication failed")
        if form.get("client_id", client["client_id"]) != client["client_id"]:
            raise _unauthorized("client_id does not match the authenticated client")
        return client

    # --- client_secret_basic -------------------------------------------------------------
    def _basic(self, credentials):
        try:
            raw = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _unauthorized("malformed Basic credentials", self.realm)
        cid, sep, secret = raw.partition(":")
        if not sep:
            raise _unauthorized("malformed Basic credentials", self.realm)
        # RFC 6749 §2.3.1: both halves are application/x-www-form-urlencoded before base64.
        cid = urllib.parse.unquote_plus(cid)
        secret = urllib.parse.unquote_plus(secret)
        client = self.store.get_client(cid)
        want = client["secret_hash"] if client and client["secret_hash"] else "0" * 64
        ok = hmac.compare_digest(digest(secret), want)
        if client is None or not ok or client["auth_method"] != "client_secret_basic":
            raise _unauthorized("client authentication failed", self.realm)
        return client

    # --- private_key_jwt -----------------------------------------------------------------
    async def _assertion(self, form, now, endpoint_url):
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise _unauthorized("client_assertion_type must be %s with a client_assertion" % ASSERTION_TYPE)
        try:
            token = _jws.parse(form["client_assertion"], ASSERTION_ALGS)
        except TokenError as e:
            raise _unauthorized("client assertion: " + e.message)
        c = token.claims
        cid = c.get("sub")
        if not isinstance(cid, str) or c.get("iss") != cid:
            raise _unauthorized("client assertion: iss and sub must both be the client_id")  # RFC 7523 §3
        client = self.store.get_client(cid)
        if client is None or client["auth_method"] != "private_key_jwt":
            raise _unauthorized("client authentication failed")
        aud = c.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(a in (self.token_endpoint, endpoint_url, self.issuer) for a in auds):
            raise _unauthorized("client assertion: aud must name the token endpoint or the issuer")
        exp = c.get("exp")
        if type(exp) not in (int, float) or now >= exp + LEEWAY:
            raise _unauthorized("client assertion: exp missing or passed")
        if exp - now > MAX_ASSERTION_LIFETIME:
            raise _unauthorized("client assertion: exp too far in the future")
        for name in ("nbf", "iat"):
            v = c.get(name)
            if v is not None and (type(v) not in (int, float) or v > now + LEEWAY):
                raise _unauthorized("client assertion: %s in the future" % name)
        jti = c.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
            raise _unauthorized("client assertion: jti missing")
        await self._verify(token, client, now)
        # Only a verified assertion may spend its jti (RFC 7523 §3 item 7: single use).
        if not self.store.use_jti(cid, jti, exp + LEEWAY):
            raise _unauthorized("client assertion: jti already used")
        return client

    async def _verify(self, token, client, now):
        meta = client["metadata"]
        uri = meta.get("jwks_uri")
        if uri is None:
            keys = self._parse(meta.get("jwks"))
            try:
                _jws.verify(token, keys, self.backend)
                return
            except TokenError:
                raise _unauthorized("client assertion: signature not verified")
        entry = self._jwks.get(uri)
        if entry is None or now - entry[1] >= JWKS_TTL:
            entry = await self._fetch(uri, now)
        try:
            _jws.verify(token, entry[0], self.backend)
            return
        except TokenError:
            if now - entry[1] < JWKS_MIN_REFETCH:
                raise _unauthorized("client assertion: signature not verified")
        entry = await self._fetch(uri, now)  # the client may have rotated its key
        try:
            _jws.verify(token, entry[0], self.backend)
        except TokenError:
            raise _unauthorized("client assertion: signature not verified")

    def _parse(self, jwks):
        try:
            keys, _ = parse_jwks(jwks, ASSERTION_ALGS)
        except KeyFormatError:
            keys = []
        return keys

    async def _fetch(self, uri, now):
        if self.fetch_json is None:
            raise _unauthorized("client assertion: cannot fetch the client's jwks_uri here")
        try:
            keys = self._parse(await self.fetch_json(uri))
        except (NmosAuthError, OSError, ValueError) as e:
            log.warning("fetching client jwks_uri %s failed: %s", uri, e)
            cached = self._jwks.get(uri)
            if cached is not None:
                return cached  # keep the last good keys (STYLE.md: fail closed, keep what worked)
            raise _unauthorized("client assertion: the client's jwks_uri could not be fetched")
        if len(self._jwks) >= MAX_CACHED_JWKS:
            self._jwks.clear()
        entry = self._jwks[uri] = (keys, now)
        return entry
