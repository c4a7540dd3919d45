"""Token endpoint grants and RFC 7009 revocation (IS-10 AS-30..AS-47).

Grants: client_credentials (confidential clients only, scopes limited to the
configured client-credentials set, BCP-003-02 BCP-G-04; no refresh token, AS-40),
authorization_code with PKCE S256/plain (RFC 7636 §4.6; single-use codes whose reuse
revokes what they produced), refresh_token with rotation (AS-45; a rotated token
presented again revokes its family; expiry never past the family's, AS-46). Errors per
RFC 6749 §5.2. Access tokens are self-contained JWTs: revoking one is answered
`unsupported_token_type` (RFC 7009 §2.2.1); refresh tokens are revoked with their
family; another client's refresh token is answered 200 and left alone (RFC 7009 §2.2).
"""

import hashlib
import hmac

from .. import b64url
from .. import jws as _jws
from ..errors import TokenError
from .clientaccess import token_access
from .protocol import NO_STORE, OAuthError, credential
from .store import digest
from .tokens import build_claims, grant_scopes, without_identity_scopes

GRANTS = ("authorization_code", "client_credentials", "refresh_token")
REFRESH_TOKEN_BYTES = 48  # 64 characters: IS-10 AS-42 wants at least 40
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def is_pkce_value(v):
    """43..128 unreserved characters (RFC 7636 §4.1 verifier, §4.2 challenge)."""
    return isinstance(v, str) and 43 <= len(v) <= 128 and all(c in _UNRESERVED for c in v)


def pkce_matches(verifier, challenge, method):
    if method == "S256":
        computed = b64url.encode(hashlib.sha256(verifier.encode("ascii")).digest())
    elif method == "plain":
        computed = verifier
    else:
        return False
    return hmac.compare_digest(computed, challenge)


def _scopes(text, supported):
    """A refresh request's scopes: identity scopes left out, unknown names refused (RFC 6749 §3.3)."""
    try:
        grant_scopes(text, (), supported)  # refuses what is neither NMOS nor identity
        return without_identity_scopes(text)
    except ValueError as e:
        raise OAuthError("invalid_scope", str(e))


class OAuthServer:
    """Grant logic over the store, the key ring and a ClientAuthenticator. Sans-HTTP: dicts in, dicts out."""

    def __init__(self, config, store, keyring, authenticator, *, issuer, token_endpoint, revocation_endpoint):
        self.config = config
        self.store = store
        self.keyring = keyring
        self.auth = authenticator
        self.issuer = issuer
        self.token_endpoint = token_endpoint
        self.revocation_endpoint = revocation_endpoint
        self.audience = config.token_audience()

    # --- token endpoint -------------------------------------------------------------------
    async def token(self, form, authorization, now, source=None):
        """-> (status, body dict, headers). Every answer carries no-store (IS-10 AS-09)."""
        try:
            grant = form.get("grant_type")
            if grant is None:
                raise OAuthError("invalid_request", "grant_type missing")
            client = await self.auth.authenticate(form, authorization, now, self.token_endpoint, source)
            if grant not in GRANTS:
                raise OAuthError("unsupported_grant_type", "grant_type %s is not supported" % grant[:40])
            if client["status"] != "active":
                raise OAuthError("unauthorized_client", "client registration awaits operator approval")
            self._access(client)  # before a code or refresh token is used up
            if grant == "client_credentials":
                body = self._client_credentials(client, form, now)
            elif grant == "authorization_code":
                body = self._authorization_code(client, form, now)
            else:
                body = self._refresh(client, form, now)
            return 200, body, list(NO_STORE)
        except OAuthError as e:
            return e.status, e.body(), e.headers + NO_STORE

    def _access(self, client):
        """The client's (audience, permissions): its own when the operator set them (issue 21)."""
        try:
            return token_access(client, self.config, self.audience)
        except ValueError as e:
            raise OAuthError("invalid_scope", str(e))

    def _access_token(self, client, sub, scopes, now):
        key = self.keyring.signer(now)
        audience, permissions = self._access(client)
        claims = build_claims(issuer=self.issuer, audience=audience, client_id=client["client_id"],
                              sub=sub, scopes=scopes, permissions=permissions, now=now,
                              lifetime=self.config.token_lifetime, claims_location=self.config.claims_location)
        body = {"access_token": key.encode(claims), "token_type": "Bearer",
                "expires_in": self.config.token_lifetime, "scope": claims["scope"]}
        return body, claims

    def _client_credentials(self, client, form, now):
        # IS-10 AS-36: confidential clients only, for the grant they registered.
        if client["auth_method"] == "none" or "client_credentials" not in client["grant_types"]:
            raise OAuthError("unauthorized_client", "client may not use client_credentials")
        allowed = [s for s in client["scopes"] if s in self.config.client_credentials_scopes]
        try:
            # RFC 6749 §3.3: what the client may have of what it asked (identity scopes left out)
            requested = grant_scopes(form.get("scope"), allowed, self.config.scopes)
        except ValueError as e:
            raise OAuthError("invalid_scope", str(e))
        if not requested:
            raise OAuthError("invalid_scope", "scope not allowed for this client with client_credentials")
        body, claims = self._access_token(client, client["client_id"], requested, now)
        self.store.audit("token.client_credentials", now, client_id=client["client_id"],
                         actor=client["client_id"], scope=claims["scope"], jti=claims["jti"])
        return body

    def _authorization_code(self, client, form, now):
        if "authorization_code" not in client["grant_types"]:
            raise OAuthError("unauthorized_client", "client may not use authorization_code")
        code = form.get("code")
        if code is None:
            raise OAuthError("invalid_request", "code missing")
        state, row = self.store.take_code(digest(code), now)
        if state == "reused":
            self.store.audit("code.reuse_detected", now, client_id=row["client_id"], family=row["family_id"])
        if state != "ok" or row["client_id"] != client["client_id"]:
            raise OAuthError("invalid_grant", "authorization code invalid, expired or already used")
        # RFC 6749 §4.1.3: identical redirect_uri when the authorization request had one.
        if row["redirect_uri"] is not None and form.get("redirect_uri") != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier")
        if row["challenge"] is not None:
            if not is_pkce_value(verifier) or not pkce_matches(verifier, row["challenge"], row["method"]):
                raise OAuthError("invalid_grant", "code_verifier does not match (RFC 7636 §4.6)")
        elif verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier sent but no code_challenge was")
        scopes = row["scope"].split()
        if self.config.profile == "ipmx" and row["sub"] == client["client_id"]:
            # IPMX SEC-21: sub equals client_id for client_credentials only; a user named like the
            # client would make a Node read this token as a client_credentials one.
            raise OAuthError("invalid_grant", "the user's name equals the client_id (SEC-21)")
        body, claims = self._access_token(client, row["sub"], scopes, now)
        refresh = credential(REFRESH_TOKEN_BYTES)
        first_expiry = now + self.config.refresh_lifetime
        # IS-10 AS-46: for public (browser-based) clients no rotated token outlives the first one;
        # confidential clients get a sliding window capped by the family lifetime.
        family_expiry = first_expiry if client["auth_method"] == "none" else now + self.config.family_lifetime
        with self.store.transaction():
            self.store.add_family(row["family_id"], client_id=client["client_id"], sub=row["sub"], now=now,
                                  expires_at=family_expiry)
            self.store.add_refresh(digest(refresh), family_id=row["family_id"], client_id=client["client_id"],
                                   sub=row["sub"], scope=row["scope"], now=now, expires_at=first_expiry)
            self.store.audit("token.authorization_code", now, client_id=client["client_id"], actor=row["sub"],
                             scope=claims["scope"], jti=claims["jti"], family=row["family_id"])
        body["refresh_token"] = refresh  # IS-10 AS-43
        return body

    def _refresh(self, client, form, now):
        old = form.get("refresh_token")
        if old is None:
            raise OAuthError("invalid_request", "refresh_token missing")
        requested = _scopes(form.get("scope"), self.config.scopes)
        new = credential(REFRESH_TOKEN_BYTES)
        state, row = self.store.rotate_refresh(digest(old), client["client_id"], now, digest(new),
                                               now + self.config.refresh_lifetime, requested)
        if state == "reused":
            self.store.audit("refresh.reuse_detected", now, client_id=row["client_id"], actor=row["sub"],
                             family=row["family_id"])
        if state == "bad_scope":
            raise OAuthError("invalid_scope", "scope exceeds the scope of the refresh token")
        if state != "ok":
            raise OAuthError("invalid_grant", "refresh token invalid, expired, revoked or already used")
        scopes = [s for s in (requested or row["scope"].split()) if s in client["scopes"]]
        if not scopes:
            raise OAuthError("invalid_scope", "the client may no longer use these scopes")
        body, claims = self._access_token(client, row["sub"], scopes, now)
        self.store.audit("token.refresh", now, client_id=client["client_id"], actor=row["sub"],
                         scope=claims["scope"], jti=claims["jti"], family=row["family_id"])
        body["refresh_token"] = new
        return body

    # --- revocation endpoint (RFC 7009) ------------------------------------------------------
    async def revoke(self, form, authorization, now, source=None):
        """-> (status, body dict or None, headers)."""
        try:
            client = await self.auth.authenticate(form, authorization, now, self.revocation_endpoint, source,
                                                  public_basic=True)
            token = form.get("token")
            if token is None:
                raise OAuthError("invalid_request", "token missing (RFC 7009 §2.1)")
            row = self.store.find_refresh(digest(token))
            if row is not None:
                if row["client_id"] != client["client_id"]:
                    # RFC 7009 §2.2: 200 as for an unknown token (no oracle for other clients'
                    # tokens), and nothing is revoked: only the client it was issued to may.
                    return 200, None, list(NO_STORE)
                if self.store.revoke_family(row["family_id"], now, "revoked by client"):
                    self.store.audit("token.revoke", now, client_id=client["client_id"], actor=row["sub"],
                                     family=row["family_id"])
                return 200, None, list(NO_STORE)
            if self._is_our_access_token(token, now):
                raise OAuthError("unsupported_token_type", "access tokens are self-contained and expire within "
                                 "%d s; revoke the refresh token" % self.config.token_lifetime)
            return 200, None, list(NO_STORE)  # RFC 7009 §2.2: unknown tokens are not an error
        except OAuthError as e:
            return e.status, e.body(), e.headers + NO_STORE

    def _is_our_access_token(self, token, now):
        try:
            parsed = _jws.parse(token, ("RS512", "ES256"))
            _jws.verify(parsed, self.keyring.public_keys(now), self.auth.backend)
        except TokenError:
            return False
        return parsed.claims.get("iss") == self.issuer
