"""Client authentication at the token and revocation endpoints (IS-10 AS-30, RFC 6749 §2.3).

Methods: client_secret_basic (RFC 6749 §2.3.1: client_id and secret are
form-urlencoded before base64, then compared as SHA-256 digests in constant time),
private_key_jwt (RFC 7523 §2.2, §3: iss = sub = client_id, aud = the token endpoint,
the endpoint called or the issuer, exp required and near, single-use jti, keys from
the client's registered `jwks` or its fenced `jwks_uri`, clientkeys.py), and `none` for
public clients (client_id only). One method per request; the registered method is the
only one accepted. An unknown client runs the same digest or signature check against a
dummy (no client-id enumeration by timing); failures back off per (client, source
address group) and per address group (aio.admission), answered 429 + Retry-After with an RFC 6749 §5.2 body.
Public clients have no secret to guess: a request naming one is never throttled and its
failures are not counted; any success clears its source address's count. At /revoke a public
client may also name itself in a Basic header without a password (a warning is logged).
Every failed client authentication is logged at INFO: endpoint, client id, method, source.
"""

import base64
import binascii
import hmac
import logging
import urllib.parse

from .. import jws as _jws
from ..aio.admission import DEFAULT_GROUPING
from ..errors import KeyFormatError, TokenError
from ..jwk import parse_jwks
from ..logfield import escape
from .clientkeys import ClientKeys, FetchError
from .protocol import OAuthError
from .store import digest
from .throttle import Backoff

log = logging.getLogger("nmosauth_lite.authserver.clientauth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
ASSERTION_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384")  # not access tokens: TOK-03 does not bind
MAX_ASSERTION_LIFETIME = 3600  # exp further ahead than this is refused (RFC 7523 §3 item 4)
LEEWAY = 10  # clock skew allowed on exp/nbf/iat of an assertion
MAX_JTI = 256
MAX_CLAIMED_ID = 256
SOURCE_FREE_FAILURES = 20  # one address failing for many client ids: a looser, per-address back-off
DUMMY_SECRET_HASH = "0" * 64  # compared against when the client is unknown or has no secret

# Public keys nobody holds the private half of: an assertion naming an unknown client is
# verified against these, so it costs what a known client's does (same path, same work).
DUMMY_JWKS = {"keys": [
    {"kty": "RSA", "kid": "dummy-rsa", "e": "AQAB",
     "n": "oLQT-BUH4O3sgXJSRZZ9ebGUKim8aHZdw-fd-Ens6iLD-dYJ_OzNXs9ZGqVD9etlCELat0tqwYYce2vsd0_3gkRNrPyHyfzdf9ix"
          "vnz6wXVktTlgPzP4g92j1HZxAokW7sYdA_yBaPzzEwzu4Onk4bO9jwpiqNPNA5x8TNhQwDynNVEbXCAOA4PCv5mjsq-mdFZunsRQ"
          "MgIMSsdYY2Cx4nim7C1Mu3Gc_nki71s8cigTeGSsFgo3WbvB_gKfwZxCp6bn8IPPGZ4GXmjF_K127lQdTHpL-oSKFVJnuWx1ZAnw"
          "B90uBr5JQ8C9_RBdmwjswDmsP1EgiJw5RUeXqJOuDQ"},
    {"kty": "EC", "kid": "dummy-p256", "crv": "P-256", "x": "b_L5ryUwz8o7hm9YYmR1emSBYCORxRVbV6JBu8OFvaI",
     "y": "Qysch3nDYbr8gRZ3tnq-_GsP7eGO4E5_o2kuU8QKCIQ"},
    {"kty": "EC", "kid": "dummy-p384", "crv": "P-384",
     "x": "bAtV9tKu6CbF6hshuyREaX7ITNzikU3QPuaH54L6pfO-VO-PZJzBQRGDYNv861X5",
     "y": "JizEF6i8NoCP7eLlLOyp_3JrYWdyd6Y6c6FrQQqHIYiKne-NSxYmUjKvS1MpX5u3"},
]}


def _unauthorized(description, basic_realm=None):
    # RFC 6749 §5.2: 401 + WWW-Authenticate when the client used the Authorization header.
    if basic_realm is not None:
        return OAuthError("invalid_client", description, 401, [("www-authenticate", 'Basic realm="%s"' % basic_realm)])
    return OAuthError("invalid_client", description, 400)


def _throttled(wait):
    # Our choice (documented in docs/authorization-server.md): 429 + Retry-After with the RFC 6749 §5.2 error body,
    # answered before any credential is checked, so a throttled source learns nothing.
    seconds = int(wait + 0.999)
    return OAuthError("invalid_client", "too many failed client authentications; retry after %d s" % seconds,
                      429, [("retry-after", str(seconds))])


class ClientAuthenticator:
    """`await authenticate(form, authorization, now, endpoint_url, source)` -> the client's store row."""

    def __init__(self, store, *, issuer, token_endpoint, client_keys=None, backend="auto", grouping=None):
        self.store = store
        self.issuer = issuer
        self.token_endpoint = token_endpoint
        self.realm = issuer
        self.client_keys = client_keys or ClientKeys(algorithms=ASSERTION_ALGS)
        self.backend_name = backend
        self._backend = None
        self._dummy_keys = None
        self.by_client = Backoff()  # key: (claimed client_id, source address group)
        self.by_source = Backoff(free=SOURCE_FREE_FAILURES)  # key: address group (aio.admission, issue 23)
        self.grouping = grouping or DEFAULT_GROUPING

    @property
    def backend(self):
        if self._backend is None:
            from ..crypto import get_backend

            self._backend = get_backend(self.backend_name)
        return self._backend

    async def close(self):
        await self.client_keys.close()

    async def authenticate(self, form, authorization, now, endpoint_url, source=None, public_basic=False):
        """The authenticated client's row, or OAuthError. `public_basic` (the revocation endpoint):
        a public client may name itself in a Basic header without a password."""
        claimed = _claimed_id(form, authorization)
        public = self._is_public(claimed)
        group = self.grouping.group(source)
        if not public:  # a public client has no secret to guess: never throttled
            wait = max(self.by_client.retry_after((claimed, group), now), self.by_source.retry_after(group, now))
            if wait:
                self._log_failure(endpoint_url, claimed, form, authorization, source, "throttled")
                raise _throttled(wait)
        try:
            client = await self._authenticate(form, authorization, now, endpoint_url, public_basic)
        except OAuthError as e:
            if e.error == "invalid_client":
                self._log_failure(endpoint_url, claimed, form, authorization, source, e.description)
                if not public:
                    self.by_client.failed((claimed, group), now)
                    self.by_source.failed(group, now)
            raise
        self.by_client.succeeded((claimed, group))
        self.by_source.succeeded(group)  # a success clears the address's count (issue 20 §4)
        return client

    def _is_public(self, claimed):
        if not claimed:
            return False
        client = self.store.get_client(claimed)
        return client is not None and client["auth_method"] == "none"

    @staticmethod
    def _log_failure(endpoint_url, claimed, form, authorization, source, why):
        # Never the secret, the assertion or the header: the claimed id (log-escaped), the method.
        log.info("client authentication failed at %s: client_id=%s method=%s source=%s: %s",
                 urllib.parse.urlsplit(endpoint_url).path or endpoint_url, escape(claimed or "-"),
                 _method(form, authorization), escape(source or "-"), why)

    async def _authenticate(self, form, authorization, now, endpoint_url, public_basic=False):
        basic = authorization is not None and authorization[:6].lower() == "basic "
        if authorization is not None and not basic:
            raise OAuthError("invalid_request", "unsupported Authorization scheme at this endpoint")
        assertion = "client_assertion" in form or "client_assertion_type" in form
        if basic + assertion + ("client_secret" in form) > 1:
            raise OAuthError("invalid_request", "more than one client authentication method")  # RFC 6749 §2.3
        if "client_secret" in form:
            raise _unauthorized("client_secret_post is not supported: use client_secret_basic or private_key_jwt")
        if basic:
            client = self._basic(authorization[6:].strip(), public_basic)
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
    def _basic(self, credentials, public_basic=False):
        try:
            raw = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _unauthorized("malformed Basic credentials", self.realm)
        cid, sep, secret = raw.partition(":")
        if public_basic and not secret:
            # RFC 7009 §2.1 lets a public client identify itself by its client_id; some controllers
            # (the reference web controller) send it as Basic base64(client_id), with no ":" at all.
            client = self.store.get_client(urllib.parse.unquote_plus(cid))
            if client is not None and client["auth_method"] == "none":
                log.warning("public client %s named itself in a Basic header without a password at the "
                            "revocation endpoint: accepted (send client_id in the body instead)",
                            escape(client["client_id"]))
                return client
        if not sep:
            raise _unauthorized("malformed Basic credentials", self.realm)
        # RFC 6749 §2.3.1: both halves are application/x-www-form-urlencoded before base64.
        cid = urllib.parse.unquote_plus(cid)
        secret = urllib.parse.unquote_plus(secret)
        client = self.store.get_client(cid)
        usable = client is not None and client["auth_method"] == "client_secret_basic" and client["secret_hash"]
        # One digest and one constant-time compare whoever is named: an unknown client_id
        # takes the same path, against a dummy hash, as a known one with a wrong secret.
        ok = self.secret_matches(secret, client["secret_hash"] if usable else DUMMY_SECRET_HASH)
        if not usable or not ok:
            raise _unauthorized("client authentication failed", self.realm)
        return client

    @staticmethod
    def secret_matches(secret, stored_hash):
        return hmac.compare_digest(digest(secret), stored_hash)

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
            self._verify_against_dummy(token)  # same signature work as a known client: no enumeration
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

    def _verify_against_dummy(self, token):
        if self._dummy_keys is None:
            self._dummy_keys = self._parse(DUMMY_JWKS)
        try:
            _jws.verify(token, self._dummy_keys, self.backend)
        except TokenError:
            pass

    async def _verify(self, token, client, now):
        meta = client["metadata"]
        uri = meta.get("jwks_uri")
        if uri is None:
            if self._check(token, self._parse(meta.get("jwks"))):
                return
            raise _unauthorized("client assertion: signature not verified")
        cid = client["client_id"]
        try:
            keys = await self.client_keys.get(cid, uri, now)
        except FetchError:
            raise _unauthorized("client assertion: the client's jwks_uri could not be fetched")
        if self._check(token, keys):
            return
        keys = await self.client_keys.refresh(cid, uri, now)  # the client may have rotated its key
        if keys is not None and self._check(token, keys):
            return
        raise _unauthorized("client assertion: signature not verified")

    def _check(self, token, keys):
        try:
            _jws.verify(token, keys, self.backend)
            return True
        except TokenError:
            return False

    def _parse(self, jwks):
        try:
            keys, _ = parse_jwks(jwks, ASSERTION_ALGS)
        except KeyFormatError:
            keys = []
        return keys


def _method(form, authorization):
    """The client authentication method a request uses, for the log."""
    if authorization is not None:
        return "client_secret_basic" if authorization[:6].lower() == "basic " else "other-scheme"
    if "client_assertion" in form or "client_assertion_type" in form:
        return "private_key_jwt"
    if "client_secret" in form:
        return "client_secret_post"
    return "none"


def _claimed_id(form, authorization):
    """The client_id a request claims, unverified (the back-off key); None when it names none."""
    cid = None
    if authorization is not None and authorization[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            cid = urllib.parse.unquote_plus(raw.partition(":")[0])
        except (binascii.Error, ValueError):
            return None
    elif form.get("client_assertion"):
        try:
            cid = _jws.parse(form["client_assertion"], ASSERTION_ALGS).claims.get("sub")
        except TokenError:
            return None
    else:
        cid = form.get("client_id")
    return cid[:MAX_CLAIMED_ID] if isinstance(cid, str) else None
