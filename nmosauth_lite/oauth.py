"""OAuth 2.0 client messages for IS-10 Nodes and controllers: sans-I/O, MicroPython-compatible.

Owns: RFC 7591 registration requests and responses (IS-10 CL-08..CL-13, CL-16), token
request forms (RFC 6749 §4.1.3, §4.4.2, §6; RFC 7636 PKCE S256; RFC 7009 revocation),
client_secret_basic (RFC 6749 §2.3.1) and private_key_jwt assertion claims (RFC 7523 §3),
token responses and errors (RFC 6749 §5.1, §5.2), per-role metadata suitability, and the
timing rules: refresh at min(half-life, exp - 15 s) (CL-32, §12 A18), randomized back-off.
What resource servers answer (RFC 6750 §3 challenges, Retry-After) is in `challenge`.
Randomness and `now` come in as arguments; signing, HTTP and storage live in
nmosauth_lite.aio.oauth.
"""

import binascii
import hashlib

from . import b64url
from .errors import ConfigError, RemoteError, with_attrs
from .jsonshim import dumps, loads

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
MAX_RESPONSE_BYTES = 65536  # a token or registration response is well under 16 KiB
MAX_TOKEN_LEN = 16384  # tokens ride in one header (IS-10 TOK-08)
MAX_FIELD_LEN = 2048  # client_id, scope, URIs in answers
MAX_DESCRIPTION = 200  # error_description kept for messages
MAX_NAME_PART = 64  # manufacturer / product / serial in client_name
EARLY_REFRESH = 15  # IS-10 CL-32: at least 15 s before expiry
MIN_REFRESH_DELAY = 2.0  # floor: never refresh in a tight loop, however short the token
REFRESH_JITTER = 0.1  # up to 10 % earlier, so Nodes booted together do not refresh in step
DEFAULT_EXPIRES_IN = 60  # no expires_in and no readable exp: assume a short life
DEFAULT_ASSERTION_LIFETIME = 60  # RFC 7523 §3: exp close to now
PKCE_MIN_RANDOM = 32  # RFC 7636 §4.1: 32 octets -> 43 characters
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_HEX = "0123456789ABCDEF"
_B64TOKEN = _UNRESERVED + "+/="  # RFC 6750 §2.1 b64token


class OAuthError(RemoteError):
    """An error answer from an authorization or resource server.

    Attributes (set after construction): `error` (RFC 6749 §5.2 / RFC 6750 §3.1 code or
    None), `description`, `status` (HTTP), `retry_after` (seconds or None).
    """

    error = None
    description = ""
    status = 0
    retry_after = None


def oauth_error(message, **attrs):
    return with_attrs(OAuthError(message), **attrs)


# --- application/x-www-form-urlencoded (RFC 6749 App. B) ------------------------------------

def form_encode(text):
    """Percent-encode one value: unreserved characters kept, space as '+', the rest %XX (UTF-8)."""
    out = []
    for b in str(text).encode("utf-8"):
        c = chr(b)
        if c in _UNRESERVED:
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append("%" + _HEX[b >> 4] + _HEX[b & 15])
    return "".join(out)


def build_form(pairs):
    """[(name, value)] -> body text; pairs whose value is None are left out."""
    return "&".join(form_encode(k) + "=" + form_encode(v) for k, v in pairs if v is not None)


# --- registration (RFC 7591; IS-10 CL-08..CL-16) ----------------------------------------------

def client_name(manufacturer, product, serial):
    """IS-10 CL-09: unique per instance, from manufacturer, product and serial number."""
    parts = []
    for what, v in (("manufacturer", manufacturer), ("product", product), ("serial", serial)):
        v = (v or "").strip()
        if not v or len(v) > MAX_NAME_PART:
            raise ConfigError("client name: %s must be 1..%d characters" % (what, MAX_NAME_PART))
        parts.append(v)
    return " ".join(parts)


def _check_scope(scope):
    if not isinstance(scope, str) or not scope.split():
        raise ConfigError("scope is required (IS-10 CL-08, CL-30)")
    return " ".join(scope.split())


def node_response_types(metadata):
    """response_types for a client with no redirect-based grant: ["none"] (the IS-10 example) only
    when the AS lists "none" in response_types_supported, else [] (RFC 7591 §2: such a client
    sends an empty list; an OpenID-certified AS reads "none" as a redirect flow needing redirect_uris)."""
    supported = metadata.get("response_types_supported") if isinstance(metadata, dict) else None
    return ["none"] if isinstance(supported, list) and "none" in supported else []


def other_response_types(types):
    """The form to retry with when an AS refused `types` ([] <-> ["none"])."""
    return [] if types else ["none"]


def is_response_types_refusal(err):
    """Did a registration answer refuse a Node's response_types? invalid_redirect_uri (we sent no
    redirect URI, so response_types made the AS want one), or invalid_client_metadata whose
    description names response types or redirect URIs (RFC 7591 §3.2.2)."""
    if err.status != 400:
        return False
    if err.error == "invalid_redirect_uri":
        return True
    desc = (err.description or "").lower()
    return err.error == "invalid_client_metadata" and ("response" in desc or "redirect" in desc)


def build_registration(name, scope, grant, auth_method, jwks_uri=None, redirect_uris=None,
                       software_id=None, software_version=None, response_types=None):
    """The RFC 7591 §2 request body for a Node ("client_credentials") or controller ("authorization_code").
    A Node's `response_types` come from node_response_types(metadata); default ["none"] (IS-10 example)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("client_name is required (IS-10 CL-08)")
    body = {"client_name": name, "scope": _check_scope(scope), "token_endpoint_auth_method": auth_method}
    if grant == "client_credentials":
        if auth_method not in ("client_secret_basic", "private_key_jwt"):
            raise ConfigError("client_credentials needs client_secret_basic or private_key_jwt (IS-10 CL-11)")
        types = ["none"] if response_types is None else list(response_types)
        if types not in ([], ["none"]):
            raise ConfigError("a client_credentials client has response_types [] or [\"none\"]")
        body["grant_types"], body["response_types"] = ["client_credentials"], types
    elif grant == "authorization_code":
        if auth_method not in ("none", "client_secret_basic", "private_key_jwt"):
            raise ConfigError("unsupported token_endpoint_auth_method " + str(auth_method))
        if not redirect_uris:
            raise ConfigError("authorization_code needs redirect URIs (IS-10 CL-20, CL-21)")
        body["grant_types"], body["response_types"] = ["authorization_code", "refresh_token"], ["code"]
        body["redirect_uris"] = list(redirect_uris)
    else:
        raise ConfigError("grant must be client_credentials or authorization_code")
    if auth_method == "private_key_jwt":
        if not jwks_uri or not jwks_uri.startswith("https://"):
            raise ConfigError("private_key_jwt needs an https jwks_uri the client serves (IS-10 CL-16)")
        body["jwks_uri"] = jwks_uri
    for k, v in (("software_id", software_id), ("software_version", software_version)):
        if v:
            body[k] = v
    return body


def _string(doc, name, required=True, limit=MAX_FIELD_LEN):
    v = doc.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v or len(v) > limit:
        raise RemoteError("registration response: %s missing or not a string" % name)
    return v


APPROVAL_FIELD = "nmosauth_approval"  # the lite AS's marker of a registration awaiting approval


def check_registration_response(doc, request):
    """Validate an RFC 7591 §3.2.1 answer to `request`; returns the fields a client keeps."""
    if not isinstance(doc, dict):
        raise RemoteError("registration response is not a JSON object")
    method = doc.get("token_endpoint_auth_method", request["token_endpoint_auth_method"])
    if method != request["token_endpoint_auth_method"]:
        raise RemoteError("registration response: server chose auth method %s" % str(method)[:40])
    out = {"client_id": _string(doc, "client_id"), "token_endpoint_auth_method": method}
    secret = _string(doc, "client_secret", method == "client_secret_basic", MAX_TOKEN_LEN)
    if secret is not None:
        out["client_secret"] = secret
    for name in ("client_id_issued_at", "client_secret_expires_at"):
        v = doc.get(name)
        if v is not None:
            if type(v) is not int or v < 0:
                raise RemoteError("registration response: %s is not a number" % name)
            out[name] = v
    uri = _string(doc, "registration_client_uri", False)
    rat = _string(doc, "registration_access_token", False, MAX_TOKEN_LEN)
    if uri is not None and rat is not None:  # IS-10 CL-13: both, or RFC 7592 is not used
        if not uri.startswith("https://") and not uri.startswith("http://"):
            raise RemoteError("registration response: registration_client_uri is not a URL")
        out["registration_client_uri"] = uri
        out["registration_access_token"] = rat
    for name in ("client_name", "scope", "jwks_uri"):
        out[name] = doc.get(name) if isinstance(doc.get(name), str) else request.get(name)
    if doc.get(APPROVAL_FIELD) == "pending":  # the lite AS: held for the operator (IS-10 AS-21 2.)
        out["approval"] = "pending"
    for name in ("grant_types", "redirect_uris"):
        v = doc.get(name)
        out[name] = list(v) if isinstance(v, list) else list(request.get(name) or [])
    return out


# --- token requests (RFC 6749 §4, §6; RFC 7636; RFC 7009; RFC 7523) -----------------------------

def client_credentials_form(scope):
    return [("grant_type", "client_credentials"), ("scope", _check_scope(scope))]  # CL-30


def authorization_code_form(code, redirect_uri, client_id, code_verifier):
    return [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri),
            ("client_id", client_id), ("code_verifier", code_verifier)]


def refresh_form(refresh_token, scope, client_id=None):
    return [("grant_type", "refresh_token"), ("refresh_token", refresh_token),
            ("scope", _check_scope(scope)), ("client_id", client_id)]


def revocation_form(token, hint=None, client_id=None):
    return [("token", token), ("token_type_hint", hint), ("client_id", client_id)]


def assertion_fields(assertion):
    return [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]


def basic_authorization(client_id, secret):
    """RFC 6749 §2.3.1: each half form-urlencoded, then 'id:secret' in base64."""
    raw = (form_encode(client_id) + ":" + form_encode(secret)).encode("ascii")
    return "Basic " + binascii.b2a_base64(raw).decode("ascii").strip()


def assertion_claims(client_id, audience, now, jti, lifetime=DEFAULT_ASSERTION_LIFETIME):
    """RFC 7523 §3: iss = sub = client_id, aud = the token endpoint, a near exp, a fresh jti."""
    now = int(now)
    return {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + lifetime, "jti": jti}


def jws_signing_input(header, claims):
    return (b64url.encode(dumps(header).encode("utf-8")) + "." +
            b64url.encode(dumps(claims).encode("utf-8"))).encode("ascii")


def pkce_pair(random_bytes):
    """(verifier, S256 challenge) from >= 32 random bytes (RFC 7636 §4.1, §4.2)."""
    if len(random_bytes) < PKCE_MIN_RANDOM:
        raise ValueError("PKCE verifier needs at least 32 random bytes")
    verifier = b64url.encode(random_bytes)
    return verifier, b64url.encode(hashlib.sha256(verifier.encode("ascii")).digest())


def authorization_url(endpoint, client_id, redirect_uri, scope, state, challenge):
    """The authorization request (RFC 6749 §4.1.1) with PKCE S256 (IS-10 CL-22, CL-23)."""
    sep = "&" if "?" in endpoint else "?"
    return endpoint + sep + build_form([
        ("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect_uri),
        ("scope", _check_scope(scope)), ("state", state), ("code_challenge", challenge),
        ("code_challenge_method", "S256")])


# --- responses -----------------------------------------------------------------------------

def _json_object(body, what):
    if len(body) > MAX_RESPONSE_BYTES:
        raise RemoteError(what + " too large")
    try:
        doc = loads(body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body)
    except (ValueError, UnicodeError):
        raise RemoteError(what + " is not JSON")
    if not isinstance(doc, dict):
        raise RemoteError(what + " is not a JSON object")
    return doc


def parse_error(status, body, what="token endpoint"):
    """An OAuthError from an RFC 6749 §5.2 error answer (or whatever a failing server sent)."""
    error, desc = None, ""
    try:
        doc = _json_object(body, what)
        if isinstance(doc.get("error"), str):
            error = doc["error"][:64]
        if isinstance(doc.get("error_description"), str):
            desc = doc["error_description"][:MAX_DESCRIPTION]
    except RemoteError:
        pass
    text = "%s: HTTP %d%s%s" % (what, status, " " + error if error else "", " (" + desc + ")" if desc else "")
    return oauth_error(text, error=error, description=desc, status=status)


def _unverified_exp(token):
    # For scheduling only, never for trust: the resource server verifies the token.
    try:
        payload = token.split(".")[1]
        exp = loads(b64url.decode(payload)).get("exp")
        return exp if type(exp) in (int, float) else None
    except Exception:
        return None


def parse_token_response(status, body, now, requested_scope=None):
    """RFC 6749 §5.1 answer -> dict: access_token, token_type "Bearer", expires_in, issued_at,
    expires_at, scope, refresh_token (or None). Error answers raise OAuthError (§5.2)."""
    if status != 200:
        raise parse_error(status, body)
    doc = _json_object(body, "token response")
    token = doc.get("access_token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LEN:
        raise RemoteError("token response: access_token missing")
    for c in token:
        if c not in _B64TOKEN:
            raise RemoteError("token response: access_token is not a b64token (RFC 6750 §2.1)")
    ttype = doc.get("token_type")
    if not isinstance(ttype, str) or ttype.lower() != "bearer":  # case-insensitive (RFC 6749 §5.1)
        raise RemoteError("token response: token_type is not Bearer")
    expires_in = doc.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)  # some servers send a string
    if expires_in is None:
        exp = _unverified_exp(token)
        expires_in = int(exp - now) if exp is not None else DEFAULT_EXPIRES_IN
    if type(expires_in) not in (int, float) or expires_in <= 0:
        raise RemoteError("token response: expires_in is not a positive number")
    scope = doc.get("scope")
    if scope is None:
        scope = requested_scope or ""  # RFC 6749 §5.1: omitted = as requested
    refresh = doc.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or not refresh or len(refresh) > MAX_TOKEN_LEN):
        raise RemoteError("token response: refresh_token is not a string")
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "issued_at": now,
            "expires_at": now + expires_in, "scope": scope if isinstance(scope, str) else "",
            "refresh_token": refresh}


# --- metadata per role (RFC 8414 §2 defaults) ------------------------------------------------

def check_metadata_for(doc, role, auth_method, register=True, alg=None):
    """Raise RemoteError unless the metadata offers what `role` ("node": client_credentials,
    "controller": authorization_code + PKCE S256) needs with `auth_method`; returns doc."""
    missing = []
    need = ["token_endpoint"] + (["registration_endpoint"] if register else [])
    if role == "controller":
        need.append("authorization_endpoint")
    for name in need:
        if not isinstance(doc.get(name), str):
            missing.append(name)
    grants = doc.get("grant_types_supported", ["authorization_code", "implicit"])
    want = "client_credentials" if role == "node" else "authorization_code"
    if not isinstance(grants, list) or want not in grants:
        missing.append("grant " + want)
    methods = doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    if not isinstance(methods, list) or auth_method not in methods:
        missing.append("auth method " + auth_method)
    if auth_method == "private_key_jwt" and alg is not None:
        algs = doc.get("token_endpoint_auth_signing_alg_values_supported")
        if isinstance(algs, list) and alg not in algs:
            missing.append("assertion alg " + alg)
    if role == "controller":
        pkce = doc.get("code_challenge_methods_supported")  # RFC 8414: omitted = no PKCE
        if not isinstance(pkce, list) or "S256" not in pkce:
            missing.append("PKCE S256")
        types = doc.get("response_types_supported")
        if not isinstance(types, list) or "code" not in types:
            missing.append("response type code")
    if missing:
        raise RemoteError("metadata does not offer what a %s needs: %s" % (role, ", ".join(missing)))
    return doc


# --- timing ------------------------------------------------------------------------------------

def refresh_time(issued_at, expires_at, rand01):
    """When to refresh: min(half the lifetime, exp - 15 s) after issue, up to 10 % earlier at
    random, never sooner than MIN_REFRESH_DELAY after issue (IS-10 CL-32, §12 A18)."""
    life = expires_at - issued_at
    delay = min(life / 2.0, life - EARLY_REFRESH)
    delay -= delay * REFRESH_JITTER * rand01
    return issued_at + max(delay, MIN_REFRESH_DELAY)


def backoff_delay(attempt, rand01, base=1.0, cap=60.0):
    """Randomized exponential back-off: uniform in [d/2, d], d = min(cap, base * 2**attempt)."""
    d = min(cap, base * (2 ** min(attempt, 30)))
    return d / 2.0 + d / 2.0 * rand01
