"""The authorization endpoint: request checks, login + consent, code issue (RFC 6749 §4.1, RFC 7636).

GET validates the request. An unknown client or an unregistered redirect URI gets an
error page and never a redirect (RFC 6749 §4.1.2.1); every other error goes back to the
client as a 302 (never 307, IS-10 AS-10) with `state`. PKCE is required for public
clients (IS-10 AS-33) and, when sent, needs an explicit S256 or plain method (AS-35).
The pending request stays server-side; POST checks the user's password (scrypt, off the
event loop; failures back off per user name and source address, never per name alone), narrows the scopes to what the user may grant, and redirects with a
single-use code, `state` and `iss` (RFC 9207).
"""

import asyncio
import secrets
import urllib.parse

from ..aio.admission import DEFAULT_GROUPING, FairTable
from . import pages
from .oauth import is_pkce_value
from .protocol import OAuthError, add_query, parse_form
from .store import digest
from .throttle import LoginPolicy
from .tokens import grant_scopes
from .users import hash_password, verify_password

PENDING_TTL = 600  # seconds a user has to fill in the form
MAX_PENDING = 1000
MAX_PENDING_PER_GROUP = 100  # forms one address group may have open; its next one replaces its oldest
MAX_ATTEMPTS = 5  # wrong passwords per pending request before it is refused
MAX_QUERY = 8192


class _Result:
    """status, headers, body: what the HTTP layer sends."""

    def __init__(self, status, headers, body=b""):
        self.status = status
        self.headers = headers
        self.body = body


def _error_page(message, status=400):
    return _Result(status, list(pages.SECURITY_HEADERS), pages.error_page(message))


def _redirect(uri, params):
    return _Result(302, [("location", add_query(uri, params)), ("cache-control", "no-store"),
                         ("pragma", "no-cache")])


class AuthorizationEndpoint:
    def __init__(self, config, store, *, issuer, endpoint, grouping=None):
        self.config = config
        self.store = store
        self.issuer = issuer
        self.endpoint = endpoint
        self.action = urllib.parse.urlsplit(endpoint).path
        # Keyed by (user name, address group): an attacker elsewhere can never lock a user out.
        self.logins = LoginPolicy()
        self._pending = {}  # request id -> the checked request, until answered or PENDING_TTL
        self.grouping = grouping or DEFAULT_GROUPING
        self._slots = FairTable(MAX_PENDING, MAX_PENDING_PER_GROUP)  # request ids per address group
        self._dummy_hash = None  # compared against for unknown users: same cost, no user enumeration

    # --- GET: validate and show the form ------------------------------------------------
    def start(self, query, now, source=None):
        if len(query) > MAX_QUERY:
            return _error_page("request too large")
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=False, max_num_fields=32)
        except ValueError:
            return _error_page("malformed request")
        params, repeated = {}, False
        for k, v in pairs:
            repeated = repeated or k in params
            params[k] = v
        client = self.store.get_client(params["client_id"]) if "client_id" in params else None
        if client is None:
            return _error_page("unknown client")
        if client["status"] != "active":
            return _error_page("this client's registration awaits operator approval")
        sent_uri = params.get("redirect_uri")
        uris = client["redirect_uris"]
        if sent_uri is None and len(uris) != 1:
            return _error_page("redirect_uri is required for this client")  # RFC 6749 §3.1.2.3
        if sent_uri is not None and sent_uri not in uris:
            return _error_page("redirect_uri is not registered for this client")
        uri = sent_uri or uris[0]
        state = params.get("state")
        try:
            req = self._check(client, params, repeated)
        except OAuthError as e:
            return _redirect(uri, [("error", e.error), ("error_description", e.description),
                                   ("state", state), ("iss", self.issuer)])
        req.update(client_id=client["client_id"], sent_uri=sent_uri, uri=uri, state=state, attempts=0,
                   expires=now + PENDING_TTL, client_name=client["metadata"].get("client_name", "a client"))
        self._expire(now)
        rid = secrets.token_urlsafe(24)
        group = req["group"] = self.grouping.group(source)
        ok, victim = self._slots.admit(rid, group, now)  # issue 23: fair share per address group
        if not ok:
            return _error_page("too many authorization requests in progress; try again later", 503)
        if victim is not None:
            self._pending.pop(victim, None)  # a flood displaces itself (or the largest group's oldest)
        self._pending[rid] = req
        return self._form(rid, req)

    def _check(self, client, params, repeated):
        if repeated:
            raise OAuthError("invalid_request", "a parameter is repeated")
        rtype = params.get("response_type")
        if rtype is None:
            raise OAuthError("invalid_request", "response_type missing")
        if rtype != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        if "authorization_code" not in client["grant_types"]:
            raise OAuthError("unauthorized_client", "client may not use authorization_code")
        try:
            # RFC 6749 §3.3: identity scopes (openid...) left out, unregistered NMOS scopes too
            scopes = grant_scopes(params.get("scope"), client["scopes"], self.config.scopes)
        except ValueError as e:
            raise OAuthError("invalid_scope", str(e))
        if not scopes:
            raise OAuthError("invalid_scope", "none of the requested scopes is registered for this client")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is not None:
            if method is None:
                raise OAuthError("invalid_request", "code_challenge_method is required (IS-10 AS-35)")
            if method not in ("S256", "plain"):
                raise OAuthError("invalid_request", "code_challenge_method must be S256 or plain")
            if not is_pkce_value(challenge):
                raise OAuthError("invalid_request", "code_challenge must be 43..128 unreserved characters")
        elif method is not None:
            raise OAuthError("invalid_request", "code_challenge_method without code_challenge")
        elif client["auth_method"] == "none" or self.config.pkce_for_confidential:
            raise OAuthError("invalid_request", "PKCE (code_challenge) is required for this client")
        return {"scopes": scopes, "challenge": challenge, "method": method}

    def _form(self, rid, req, error=None, username="", status=200):
        host = urllib.parse.urlsplit(req["uri"]).netloc or req["uri"]
        body = pages.login_page(action=self.action, request_id=rid, client_name=req["client_name"],
                                scopes=req["scopes"], redirect_host=host, username=username, error=error)
        return _Result(status, list(pages.SECURITY_HEADERS), body)

    def _expire(self, now):
        if len(self._pending) >= MAX_PENDING // 2:
            for rid, req in list(self._pending.items()):
                if req["expires"] <= now:
                    self._drop(rid)

    def _drop(self, rid):
        req = self._pending.pop(rid, None)
        if req is not None:
            self._slots.remove(rid, req["group"])

    # --- POST: authenticate the user, ask consent, issue the code ----------------------------
    async def finish(self, body, now, source=None):
        try:
            form = parse_form(body)
        except OAuthError:
            return _error_page("malformed form")
        rid = form.get("request_id", "")
        req = self._pending.get(rid)
        if req is None or req["expires"] <= now:
            self._drop(rid)
            return _error_page("this authorization request has expired; start again from the application")
        back = [("state", req["state"]), ("iss", self.issuer)]
        if form.get("action") != "approve":
            self._drop(rid)
            self.store.audit("authorize.deny", now, client_id=req["client_id"], actor=form.get("username"))
            return _redirect(req["uri"], [("error", "access_denied")] + back)
        username = form.get("username", "")
        group = self.grouping.group(source)
        wait = self.logins.retry_after(username, group, now)
        busy = not wait and not self.logins.begin(group)
        if wait or busy:
            wait = max(wait, 1)
            text = ("Other sign-ins from your address are being checked. Try again." if busy else
                    "Too many failed sign-ins. Wait %d s and try again." % (wait + 0.999))
            page = self._form(rid, req, text, username, 429)
            page.headers.append(("retry-after", str(int(wait + 0.999))))
            return page
        try:
            user = self.store.get_user(username) if username else None
            if user is None and self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(hash_password, secrets.token_hex(8))
            stored = user["password_hash"] if user else self._dummy_hash
            ok = await asyncio.to_thread(verify_password, form.get("password", ""), stored) and user is not None
        finally:
            self.logins.end(group)
        if rid not in self._pending:  # answered meanwhile by another submission of the same form
            return _error_page("this authorization request was already answered")
        if not ok:
            self.logins.failed(username, group, now)
            req["attempts"] += 1
            self.store.audit("authorize.login_failed", now, client_id=req["client_id"], actor=username[:64],
                             source=source)
            if req["attempts"] >= MAX_ATTEMPTS:
                self._drop(rid)
                return _redirect(req["uri"], [("error", "access_denied")] + back)
            return self._form(rid, req, "Wrong user name or password.", username)
        self.logins.succeeded(username, group, now)
        self._drop(rid)
        allowed = user["scope"].split()
        scopes = [s for s in req["scopes"] if not allowed or s in allowed]
        if not scopes:
            self.store.audit("authorize.deny", now, client_id=req["client_id"], actor=username,
                             reason="user may grant none of the scopes")
            return _redirect(req["uri"], [("error", "access_denied"),
                                          ("error_description", "user may not grant these scopes")] + back)
        code = secrets.token_urlsafe(32)
        with self.store.transaction():
            self.store.add_code(digest(code), client_id=req["client_id"], redirect_uri=req["sent_uri"],
                                scope=" ".join(scopes), sub=username, challenge=req["challenge"],
                                method=req["method"], family_id=secrets.token_urlsafe(16),
                                expires_at=now + self.config.code_lifetime)
            self.store.audit("authorize.approve", now, client_id=req["client_id"], actor=username,
                             scope=" ".join(scopes), pkce=req["method"])
        return _redirect(req["uri"], [("code", code)] + back)
