"""The OAuth client of a Node or controller: registration, grants, client auth, revocation.

Registration (RFC 7591; IS-10 CL-05..CL-13) happens once per issuer and is persisted
(CredentialStore); a restart reuses it. When the answer offered RFC 7592, the stored
registration is read back once per process; a 401/404 there, or `invalid_client` at the
token endpoint, means the server forgot us: register again (at most once per hold time
per issuer, so a server that refuses for another reason cannot cause a registration storm).
Grants: client_credentials (BCP-003-02 BCP-G-02), authorization code + PKCE S256 with a
loopback redirect listener (CL-20..CL-24; one redirect URI per issuer against mix-up, and
`state` and RFC 9207 `iss` checked), refresh_token (CL-33, CL-34). Client authentication:
client_secret_basic, private_key_jwt (fresh jti each time) or none (public clients).
"""

import asyncio
import hashlib
import logging
import secrets
import time

from ... import b64url, jsonshim, oauth
from ...errors import ConfigError, with_attrs
from .redirect import RedirectListener
from .servers import Unavailable

log = logging.getLogger("nmosauth_lite.oauth.client")

REREGISTER_HOLD = 600.0  # seconds between re-registrations with one issuer
DEFAULT_REDIRECT_BASE = "http://127.0.0.1:48573/callback"  # RFC 8252 §7.3 loopback redirect
AUTHORIZE_TIMEOUT = 300.0


class AuthorizationRequired(oauth.OAuthError):
    """The refresh token is gone or expired: a user must authorize again (IS-10 CL-34)."""


class OAuthClient:
    """`grant`: "client_credentials" (Node) or "authorization_code" (controller).
    `auth_method`: client_secret_basic, private_key_jwt (needs `signing_key`, `jwks_uri`) or
    none. `client_id`/`client_secret`: pre-registered credentials (no registration, nothing
    stored). `redirect_base`: the loopback URL the per-issuer redirect URIs hang under."""

    def __init__(self, selector, store, *, name=None, scope, grant="client_credentials",
                 auth_method="client_secret_basic", initial_token=None, jwks_uri=None, signing_key=None,
                 client_id=None, client_secret=None, redirect_base=DEFAULT_REDIRECT_BASE, clock=time.time,
                 reregister_hold=REREGISTER_HOLD, software_id="nmosauth-lite", software_version=None):
        if grant == "authorization_code" and auth_method == "client_secret_basic" and not client_secret \
                and client_id:
            auth_method = "none"
        if auth_method == "private_key_jwt" and signing_key is None:
            raise ConfigError("private_key_jwt needs a signing key")
        if client_id is None and store is None:
            raise ConfigError("a credential store is needed to register")
        self.selector = selector
        self.store = store
        self.name, self.scope, self.grant, self.auth_method = name, scope, grant, auth_method
        self.initial_token = initial_token
        self.jwks_uri = jwks_uri
        self.signing_key = signing_key
        self.static = None
        if client_id is not None:
            self.static = {"client_id": client_id, "client_secret": client_secret,
                           "token_endpoint_auth_method": auth_method}
        self.redirect_base = redirect_base.rstrip("/")
        self.clock = clock
        self.reregister_hold = reregister_hold
        self.software = (software_id, software_version)
        self.registrations = 0  # registrations made by this object (observability, tests)
        self._records = {}
        self._read_back_done = set()
        self._reregistered_at = {}

    # --- registration ------------------------------------------------------------------------
    def redirect_uri(self, issuer):
        """A redirect URI of its own per issuer (mix-up defence, security guide §6)."""
        if self.static is not None:
            return self.redirect_base
        tag = b64url.encode(hashlib.sha256(issuer.encode("utf-8")).digest())[:10]
        return "%s/%s" % (self.redirect_base, tag)

    async def registration(self, c, meta):
        if self.static is not None:
            return dict(self.static, issuer=c.issuer)
        rec = self._records.get(c.issuer)
        if rec is not None:
            return rec
        async with self.store.locked():
            rec = self.store.load(c.issuer)
            if rec is not None and (rec.get("token_endpoint_auth_method") != self.auth_method
                                    or self.grant not in rec.get("grant_types", [])):
                log.warning("stored registration with %s is for %s/%s; registering for %s/%s", c.issuer,
                            rec.get("grant_types"), rec.get("token_endpoint_auth_method"), self.grant,
                            self.auth_method)
                rec = None
            if rec is not None and rec.get("registration_client_uri") and c.issuer not in self._read_back_done:
                rec = await self._read_back(rec)
            if rec is None:
                rec = await self._register(c, meta)
        self._records[c.issuer] = rec
        return rec

    async def _register(self, c, meta):
        node = self.grant == "client_credentials"
        types = oauth.node_response_types(meta) if node else None  # RFC 7591 §2, from RFC 8414 metadata
        body = oauth.build_registration(self.name, self.scope, self.grant, self.auth_method, self.jwks_uri,
                                        None if node else [self.redirect_uri(c.issuer)], *self.software,
                                        response_types=types)
        resp = await self._post_registration(meta, body)
        if resp.status not in (200, 201):
            err = oauth.parse_error(resp.status, resp.body, "registration endpoint")
            if not (node and oauth.is_response_types_refusal(err)):
                raise with_attrs(oauth.OAuthError("%s refused the registration of %s: %s" % (
                    c.issuer, self.name, err.message)), error=err.error, description=err.description,
                    status=err.status)
            # A strict AS refused this form of "no redirect-based grant": try the other, once.
            retry = dict(body, response_types=oauth.other_response_types(types))
            log.info("%s refused response_types %s (%s): retrying with %s", c.issuer,
                     jsonshim.dumps(types), err.error, jsonshim.dumps(retry["response_types"]))
            resp = await self._post_registration(meta, retry)
            if resp.status not in (200, 201):
                again = oauth.parse_error(resp.status, resp.body, "registration endpoint")
                raise with_attrs(oauth.OAuthError(
                    "%s refused the registration of %s with response_types %s (%s) and with %s (%s)" % (
                        c.issuer, self.name, jsonshim.dumps(types), err.message, jsonshim.dumps(
                            retry["response_types"]), again.message)),
                    error=again.error, description=again.description, status=again.status)
            body = retry
        doc = oauth.check_registration_response(oauth_json(resp.body, "registration response"), body)
        rec = dict(doc, issuer=c.issuer, registered_at=int(self.clock()),
                   registration_endpoint=meta["registration_endpoint"])
        self.store.save(rec)
        self.registrations += 1
        self._read_back_done.add(c.issuer)
        log.info("registered with %s as client %s (%s)", c.issuer, rec["client_id"], self.name)
        return rec

    async def _post_registration(self, meta, body):
        headers = [("content-type", "application/json"), ("accept", "application/json")]
        if self.initial_token:
            headers.append(("authorization", "Bearer " + self.initial_token))  # CL-11, CL-12
        return await self.selector.request("POST", meta["registration_endpoint"],
                                           body=jsonshim.dumps(body).encode("utf-8"), headers=headers)

    async def _read_back(self, rec):
        """RFC 7592 §2.1 read; None when the server no longer knows the client."""
        resp = await self.selector.request("GET", rec["registration_client_uri"], headers=[
            ("authorization", "Bearer " + rec["registration_access_token"]), ("accept", "application/json")])
        self._read_back_done.add(rec["issuer"])
        if resp.status in (401, 404):
            log.warning("%s no longer knows client %s: registering again", rec["issuer"], rec["client_id"])
            self.store.remove(rec["issuer"])
            return None
        if resp.status != 200:
            log.warning("reading back registration at %s: HTTP %d (kept)", rec["issuer"], resp.status)
            return rec
        doc = oauth_json(resp.body, "registration read-back")
        if doc.get("client_id") != rec["client_id"]:
            raise oauth.oauth_error("registration read-back names another client_id")
        changed = False
        for name in ("client_secret", "registration_access_token", "registration_client_uri"):
            v = doc.get(name)
            if isinstance(v, str) and v and v != rec.get(name):
                rec[name] = v  # RFC 7592 §3: the server may rotate them
                changed = True
        if changed:
            self.store.save(rec)
        return rec

    async def _forgotten(self, c, meta, rec):
        """invalid_client at the token endpoint: register again if the server forgot us."""
        if self.static is not None:
            return None
        last = self._reregistered_at.get(c.issuer)
        if last is not None and self.clock() - last < self.reregister_hold:
            return None
        async with self.store.locked():
            current = self.store.load(c.issuer)
            if current is not None and current["client_id"] != rec["client_id"]:
                self._records[c.issuer] = current  # another process registered meanwhile
                return current
            if rec.get("registration_client_uri"):
                if await self._read_back(dict(rec)) is not None:
                    return None  # still known: the refusal has another cause
            self._reregistered_at[c.issuer] = self.clock()
            self.store.remove(c.issuer)
            self._records.pop(c.issuer, None)
            log.warning("%s refused client %s (invalid_client): registering again", c.issuer, rec["client_id"])
            rec = await self._register(c, meta)
        self._records[c.issuer] = rec
        return rec

    # --- client authentication ----------------------------------------------------------------
    def _authenticate(self, rec, pairs, token_endpoint):
        method = rec.get("token_endpoint_auth_method", self.auth_method)
        headers = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")]
        if method == "client_secret_basic":
            headers.append(("authorization", oauth.basic_authorization(rec["client_id"], rec["client_secret"])))
        elif method == "private_key_jwt":
            claims = oauth.assertion_claims(rec["client_id"], token_endpoint, self.clock(), secrets.token_urlsafe(16))
            pairs += oauth.assertion_fields(self.signing_key.sign_jwt(claims))
        elif not any(k == "client_id" for k, _ in pairs):
            pairs.append(("client_id", rec["client_id"]))  # public client (RFC 6749 §2.3)
        return pairs, headers

    async def _post(self, rec, url, pairs, token_endpoint):
        pairs, headers = self._authenticate(rec, list(pairs), token_endpoint)
        return await self.selector.request("POST", url, body=oauth.build_form(pairs).encode("ascii"),
                                           headers=headers)

    async def token_request(self, c, meta, pairs):
        """POST a grant; re-registers once if the server forgot us. Returns the token dict."""
        for attempt in (0, 1):
            rec = await self.registration(c, meta)
            now = self.clock()  # before sending: expiry is counted from here, on the safe side
            resp = await self._post(rec, meta["token_endpoint"], pairs, meta["token_endpoint"])
            try:
                tokens = oauth.parse_token_response(resp.status, resp.body, now, self.scope)
            except oauth.OAuthError as e:
                if e.error != "invalid_client" or attempt or await self._forgotten(c, meta, rec) is None:
                    raise
                continue
            tokens["issuer"] = c.issuer
            tokens["candidate"] = c
            return tokens

    # --- grants ----------------------------------------------------------------------------------
    async def client_credentials(self, timeout=60.0):
        async def op(c, meta):
            return await self.token_request(c, meta, oauth.client_credentials_form(self.scope))
        return await self.selector.run(op, timeout)

    async def refresh(self, tokens):
        """refresh_token grant at the issuer that gave `tokens` (a refresh token is tied to it)."""
        c = tokens["candidate"]
        meta = await self.selector.metadata(c)
        rec = await self.registration(c, meta)
        public = rec.get("token_endpoint_auth_method") == "none"
        form = oauth.refresh_form(tokens["refresh_token"], self.scope, rec["client_id"] if public else None)
        try:
            new = await self.token_request(c, meta, form)
        except oauth.OAuthError as e:
            if e.error == "invalid_grant":
                raise with_attrs(AuthorizationRequired("refresh token refused: a new authorization is needed"),
                                 error=e.error, description=e.description, status=e.status)
            raise
        if new["refresh_token"] is None:
            new["refresh_token"] = tokens["refresh_token"]  # RFC 6749 §6: not rotated, still valid
        return new

    async def authorize(self, on_url, timeout=AUTHORIZE_TIMEOUT):
        """Authorization code + PKCE S256: `on_url(url)` shows the URL; the redirect comes back
        to a loopback listener; the code is exchanged at the same server. `timeout` bounds the
        whole flow, the wait for the browser included."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def op(c, meta):
            rec = await self.registration(c, meta)
            redirect = self.redirect_uri(c.issuer)
            verifier, challenge = oauth.pkce_pair(secrets.token_bytes(32))
            state = secrets.token_urlsafe(24)
            url = oauth.authorization_url(meta["authorization_endpoint"], rec["client_id"], redirect, self.scope,
                                          state, challenge)
            async with RedirectListener(redirect, state) as listener:
                shown = on_url(url)
                if hasattr(shown, "__await__"):
                    await shown
                # a little before the selector's own bound, so the user reads what was awaited
                params = await listener.wait(max(0.01, deadline - loop.time() - 0.1), timeout)
            if params.get("iss") is not None and params["iss"] != c.issuer:  # RFC 9207 mix-up defence
                raise oauth.oauth_error("authorization response came from another issuer")
            if "error" in params:
                raise oauth.oauth_error("authorization refused: %s" % params["error"][:64], error=params["error"],
                                        description=params.get("error_description", "")[:200])
            if not params.get("code"):
                raise oauth.oauth_error("authorization response has no code")
            return await self.token_request(c, meta, oauth.authorization_code_form(
                params["code"], redirect, rec["client_id"], verifier))
        return await self.selector.run(op, timeout)

    async def revoke(self, tokens):
        """RFC 7009 on the refresh token (else the access token) when the server offers it."""
        c = tokens["candidate"]
        try:
            meta = await self.selector.metadata(c)
        except Unavailable as e:
            log.warning("not revoking: %s", e.message)
            return False
        url = meta.get("revocation_endpoint")
        if not url:
            return False
        rec = await self.registration(c, meta)
        token, hint = ((tokens["refresh_token"], "refresh_token") if tokens.get("refresh_token")
                       else (tokens["access_token"], "access_token"))
        public = rec.get("token_endpoint_auth_method") == "none"
        resp = await self._post(rec, url, oauth.revocation_form(token, hint, rec["client_id"] if public else None),
                                meta["token_endpoint"])
        if resp.status == 200:
            return True
        err = oauth.parse_error(resp.status, resp.body, "revocation endpoint")
        if err.error == "unsupported_token_type":
            log.info("%s does not revoke %ss (they expire)", c.issuer, hint)
        else:
            log.warning("revocation refused: %s", err.message)
        return False


def oauth_json(body, what):
    try:
        return jsonshim.loads(body.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise oauth.oauth_error(what + " is not JSON")
