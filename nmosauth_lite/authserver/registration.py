"""Client registration: RFC 7591 dynamic registration and the operator's `as client add`.

Owns the metadata rules (RFC 7591 §2, IS-10 AS-17..AS-28): client_name and scope
required, scopes from the supported set (and, for client-credentials-only clients,
from the client-credentials set, BCP-G-04), grant/response type consistency, redirect
URIs (exact RFC 3986 text, https or http on loopback for native apps, RFC 8252 §7.3;
no fragment, RFC 6749 §3.1.2),
private_key_jwt keys (jwks or jwks_uri, not both), client_id of 32 characters,
secrets only for confidential clients (AS-24). Authentication of a dynamic
registration: an initial access token, or the operator's later approval (AS-21, AS-22).
"""

import secrets
import urllib.parse

from .. import jsonshim
from ..aio.admission import DEFAULT_GROUPING, FairTable
from ..aio.files import is_loopback
from ..errors import KeyFormatError
from ..jwk import parse_jwks
# our RFC 7591 §3.2.1 response extension (a private name: it cannot collide): "pending" while the
# registration awaits the operator's approval (IS-10 AS-21 2.); the client reads it in oauth.py
from ..oauth import APPROVAL_FIELD
from .clientauth import ASSERTION_ALGS
from .protocol import NO_STORE, OAuthError, credential, media_type
from .store import digest
from .tokens import without_identity_scopes

MAX_BODY = 64 * 1024
MAX_REDIRECT_URIS = 16
MAX_CLIENTS_PER_KEY = 3  # active clients sharing one private_key_jwt key (approved-device re-registrations)
MAX_STRING = 2048
AUTH_METHODS = ("client_secret_basic", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
RESPONSE_TYPES = ("code", "none")
STRING_FIELDS = ("client_name", "client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri", "scope",
                 "software_id", "software_version", "token_endpoint_auth_method")
LIST_FIELDS = ("redirect_uris", "grant_types", "response_types", "contacts")
_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")


def _bad(description, error="invalid_client_metadata"):
    return OAuthError(error, description, 400)


def is_uri_text(text):
    """Only RFC 3986 URI characters (§2): no whitespace, control or non-ASCII characters anywhere,
    so what is registered is exactly what is compared (urlsplit would quietly strip some)."""
    return bool(text) and all(c in _URI_CHARS for c in text)


def check_redirect_uri(uri):
    """RFC 6749 §3.1.2: an absolute URI, compared exactly, without a fragment."""
    if not is_uri_text(uri):
        raise _bad("redirect URI %r must be an absolute URI of RFC 3986 characters only (no spaces or control "
                   "characters)" % uri[:80], "invalid_redirect_uri")
    parts = urllib.parse.urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise _bad("redirect URI %s has a fragment (RFC 6749 §3.1.2)" % uri[:80], "invalid_redirect_uri")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return uri  # RFC 8252 §7.3: native apps on the loopback interface
    raise _bad("redirect URI %s must be https, or http on loopback" % uri[:80], "invalid_redirect_uri")


def check_metadata(meta, config, allowed_scopes=None):
    """Validate and normalise client metadata; returns the dict to store and echo (RFC 7591 §3.2.1)."""
    if not isinstance(meta, dict):
        raise _bad("registration body must be a JSON object")
    out = {}
    for name in STRING_FIELDS:
        if name in meta:
            v = meta[name]
            if not isinstance(v, str) or not v or len(v) > MAX_STRING:
                raise _bad("%s must be a non-empty string" % name)
            out[name] = v
    for name in LIST_FIELDS:
        if name in meta:
            v = meta[name]
            if not isinstance(v, list) or not all(isinstance(x, str) and x and len(x) <= MAX_STRING for x in v):
                raise _bad("%s must be an array of strings" % name)
            out[name] = list(dict.fromkeys(v))
    if "client_name" not in out:
        raise _bad("client_name is required")
    if "scope" not in out:
        raise _bad("scope is required (IS-10)")  # IS-10 §12 B6: the schema forgets it
    try:
        # RFC 7591 §2: the server may replace a requested value; identity scopes (openid...) are
        # left out, as at /authorize and /token (tokens.IDENTITY_SCOPES), and the answer says so.
        scopes = without_identity_scopes(out["scope"])
    except ValueError as e:
        raise _bad("scope: %s" % e)
    for s in scopes:
        if s not in config.permissions:
            raise _bad("scope %s is not supported by this server" % s[:40])
        if allowed_scopes is not None and s not in allowed_scopes:
            raise _bad("scope %s is not allowed by the initial access token" % s[:40])
    if not scopes:
        raise _bad("scope is required (IS-10)")
    out["scope"] = " ".join(scopes)
    method = out.setdefault("token_endpoint_auth_method", "client_secret_basic")  # RFC 7591 §2 default
    if method not in AUTH_METHODS:
        raise _bad("token_endpoint_auth_method must be one of " + ", ".join(AUTH_METHODS))
    grants = out.setdefault("grant_types", ["authorization_code"])
    for g in grants:
        if g not in GRANT_TYPES:
            raise _bad("grant type %s is not supported (IS-10 AS-32: no implicit or password)" % g[:40])
    code = "authorization_code" in grants
    responses = out.setdefault("response_types", ["code"] if code else ["none"])
    for r in responses:
        if r not in RESPONSE_TYPES:
            raise _bad("response type %s is not supported" % r[:40])
    if code != ("code" in responses):
        raise _bad("grant_types and response_types disagree (RFC 7591 §2.1)")
    if "client_credentials" in grants:
        if method == "none":
            raise _bad("client_credentials needs a confidential client (IS-10 AS-36)")
        if not code and any(s not in config.client_credentials_scopes for s in scopes):
            raise _bad("scopes allowed with client_credentials: " + " ".join(config.client_credentials_scopes))
    if "refresh_token" in grants and not code:
        raise _bad("refresh_token needs authorization_code")
    uris = out.get("redirect_uris", [])
    if code and not uris:
        raise _bad("redirect_uris is required with authorization_code", "invalid_redirect_uri")
    if len(uris) > MAX_REDIRECT_URIS:
        raise _bad("too many redirect_uris", "invalid_redirect_uri")
    for u in uris:
        check_redirect_uri(u)
    if "jwks" in meta:
        try:
            keys, _ = parse_jwks(meta["jwks"], ASSERTION_ALGS)
        except KeyFormatError as e:
            raise _bad("jwks: " + e.message)
        if not keys:
            raise _bad("jwks holds no usable signature key")
        out["jwks"] = meta["jwks"]
    if "jwks" in out and "jwks_uri" in out:
        raise _bad("jwks and jwks_uri must not both be present (RFC 7591 §2)")
    if "jwks_uri" in out and (not is_uri_text(out["jwks_uri"])
                              or urllib.parse.urlsplit(out["jwks_uri"]).scheme != "https"):
        raise _bad("jwks_uri must be https")
    if method == "private_key_jwt" and "jwks" not in out and "jwks_uri" not in out:
        raise _bad("private_key_jwt needs jwks_uri or jwks")
    return out


def create_client(store, meta, now, *, status, actor, source=None, audience=None, permissions=None):
    """Store a validated client; returns the registration response body (with the secret, once).
    `audience`, `permissions`: the client's own, checked by clientaccess.check_client_access (None:
    the server's); an operator's setting, never a registration's."""
    client_id = credential(24)  # 32 characters: IS-10 AS-23 wants >= 20
    secret = None
    if meta["token_endpoint_auth_method"] == "client_secret_basic":
        secret = credential(32)  # AS-24: only confidential clients get one
    with store.transaction():
        store.add_client(client_id, secret_hash=digest(secret) if secret else None,
                         auth_method=meta["token_endpoint_auth_method"], scope=meta["scope"],
                         grant_types=meta["grant_types"], redirect_uris=meta.get("redirect_uris", []),
                         metadata=meta, status=status, now=now, approved_by=actor if status == "active" else None,
                         audience=audience, permissions=permissions)
        if status == "pending":
            store.note_pending_source(client_id, source)
        store.audit("client.register", now, client_id=client_id, actor=actor, status=status,
                    client_name=meta["client_name"], grant_types=meta["grant_types"], scope=meta["scope"],
                    auth_method=meta["token_endpoint_auth_method"], source=source)
    body = {"client_id": client_id, "client_id_issued_at": int(now)}
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    body.update(meta)
    if status == "pending":  # issue 22: tell the device why its tokens will be refused for now
        body[APPROVAL_FIELD] = "pending"
    return body


class Registrar:
    """The registration endpoint: `register(body, content_type, authorization, now)`."""

    def __init__(self, config, store, *, realm, grouping=None):
        self.config = config
        self.store = store
        self.realm = realm
        self.grouping = grouping or DEFAULT_GROUPING

    def _bearer_error(self, description):
        # RFC 7591 §3 -> RFC 6750 §3: an invalid initial access token is a 401 with a challenge.
        value = 'Bearer realm="%s",error="invalid_token",error_description="%s"' % (self.realm, description)
        return OAuthError("invalid_token", description, 401, [("www-authenticate", value)])

    def register(self, body, content_type, authorization, now, source=None):
        """-> (status, body dict, headers). `source`: the peer address (per-source pending cap)."""
        try:
            return 201, self._register(body, content_type, authorization, now, source), list(NO_STORE)
        except OAuthError as e:
            return e.status, e.body(), e.headers + NO_STORE

    def _approved_device(self, meta):
        """The active client (store row) this registration re-registers, or None.

        A device that re-registers (its stored credentials were lost) with the private_key_jwt key of
        a client that is still active, asking for nothing that client may not do (scopes, grants,
        redirect URIs), gets a client only that key's holder can use, and no more than it had: it
        need not wait for the operator again. At most MAX_CLIENTS_PER_KEY active clients per key, so
        whoever copies a public key cannot grow the table."""
        if meta["token_endpoint_auth_method"] != "private_key_jwt" or "jwks" not in meta:
            return None
        try:
            prints = {k.thumbprint for k in parse_jwks(meta["jwks"], ASSERTION_ALGS)[0]}
        except KeyFormatError:
            return None
        match, sharing = None, 0
        for c in self.store.list_clients():
            old = c["metadata"]
            if c["status"] != "active" or c["auth_method"] != "private_key_jwt" or "jwks" not in old:
                continue
            try:
                if not prints & {k.thumbprint for k in parse_jwks(old["jwks"], ASSERTION_ALGS)[0]}:
                    continue
            except KeyFormatError:
                continue
            sharing += 1
            if (set(meta["scope"].split()) <= set(c["scope"].split())
                    and set(meta["grant_types"]) <= set(c["grant_types"])
                    and set(meta.get("redirect_uris", [])) <= set(c["redirect_uris"])):
                match = c
        return match if sharing < MAX_CLIENTS_PER_KEY else None

    def _make_room(self, source, now):
        """Fair share of the approval queue (issue 23, aio.admission): an address group at its
        share is refused; a full queue drops the oldest registration of a group holding more than
        one more than the newcomer's, so a flood from many addresses displaces itself, never a
        device from elsewhere, and floods do not trade places (each trade is two writes)."""
        table = FairTable(self.config.max_pending, self.config.max_pending_per_source)
        grouping = self.grouping
        for client_id, src, created in self.store.pending_sources():
            table.add(client_id, grouping.group(src), created)
        group = grouping.group(source or "-")
        if table.count(group) >= table.per_group:
            raise OAuthError("invalid_client_metadata", "too many registrations from this address await approval",
                             400)
        ok, victim = table.admit(None, group, now, own_when_full=False)  # refusing writes nothing
        if not ok:
            raise OAuthError("invalid_client_metadata", "too many registrations await approval", 400)
        if victim is not None:
            with self.store.transaction():
                self.store.remove_client(victim, now)
                self.store.audit("client.register_dropped", now, client_id=victim, actor="admission",
                                 reason="approval queue full: displaced by a registration from a smaller group")

    def _register(self, body, content_type, authorization, now, source):
        iat = None
        if authorization is not None:
            if authorization[:7].lower() != "bearer " or not self.config.iat_enabled:
                raise self._bearer_error("initial access tokens are presented as Bearer tokens")
            iat = self.store.use_initial_token(digest(authorization[7:].strip()), now)
            if iat is None:
                raise self._bearer_error("initial access token invalid, expired or revoked")
        if media_type(content_type) != "application/json":
            raise _bad("registration requests are application/json (RFC 7591 §3.1)")
        if len(body) > MAX_BODY:
            raise _bad("registration request too large")
        try:
            meta = jsonshim.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _bad("registration body is not JSON")
        allowed = iat["scope"].split() if iat is not None and iat["scope"] else None
        meta = check_metadata(meta, self.config, allowed)
        access = {}
        if iat is not None:
            status, actor = "active", "initial-access-token:" + iat["jti"]
        elif "client_credentials" not in meta["grant_types"] and self.config.open_authorization_code:
            status, actor = "active", "open-registration"  # IS-10 AS-22 allows this, by configuration
        elif self.config.manual_approval and (device := self._approved_device(meta)) is not None:
            # issue 23: a device the operator approved, registering again with its key, never waits
            status, actor = "active", "approved-device:" + device["client_id"]
            # and no more than it had: the operator's audience and permissions for it go with it
            access = {"audience": device["audience"], "permissions": device["permissions"]}
        elif self.config.manual_approval:
            # The queue only holds unauthenticated registrations: when it is full, those with
            # an initial access token (above) still go through.
            self.store.expire_pending(now - self.config.pending_lifetime)
            self._make_room(source, now)
            status, actor = "pending", "unauthenticated"
        else:
            raise self._bearer_error("an initial access token is required")
        return create_client(self.store, meta, now, status=status, actor=actor, source=source, **access)


def issue_initial_access_token(store, keyring, *, issuer, registration_endpoint, scope, ttl, now):
    """An initial access token (IS-10 AS-21: a JWT) for RFC 7591 §3 registration.

    Signed by the AS so it is recognisably ours, but accepted by its digest in the
    store (revocable, and valid across key rotation). Its `aud` is the registration
    endpoint URL, which never matches a resource server's audience (it has a path),
    and it carries no x-nmos-* claims: it authorizes nothing but registration.
    `scope` ("" = any supported) caps the scopes of clients registered with it.
    """
    jti = secrets.token_urlsafe(16)
    claims = {"iss": issuer, "sub": "initial-access-token", "aud": [registration_endpoint], "iat": int(now),
              "exp": int(now + ttl), "jti": jti, "allowed_scope": scope}
    token = keyring.signer(now).encode(claims)
    with store.transaction():
        store.add_initial_token(digest(token), jti, scope, now, now + ttl)
        store.audit("initial_token.issue", now, actor="operator", jti=jti, scope=scope, expires_at=int(now + ttl))
    return token, jti
