"""Hostile and ordinary requests for every front of the guard (issue 20 §1): `protect`, the ASGI,
WSGI and aiohttp middleware. Each case is the exact bytes a client sends (method, raw target,
header list, WebSocket upgrade or not) and the status and error code IS-10 wants (RS-22..RS-40,
ARCHITECTURE.md "Errors on the wire"). Tokens are minted by tests/minting.py at run time, valid
around the real clock (the servers read it). Used by tests/test_aiohttp_middleware.py and the
differential tests/test_adapters_differential.py.
"""

import base64
import json
import time

from minting import b64, sign_raw

AUD = "node1.example.com"
SELF = "/x-nmos/node/v1.3/self"
WS = "/x-nmos/query/v1.3/ws"
NCP_WS = "/x-nmos/ncp/v1.0/ws"  # IS-12's control WebSocket (the AMWA testing tool sends ?access_token=)


class Case:
    def __init__(self, name, method, target, headers, status, error, websocket=False, wsgi=True):
        self.name = name
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.status = status  # what the guard decides (allowed: 200; a WebSocket then gets 101)
        self.error = error  # the error= code in WWW-Authenticate, None for none
        self.websocket = websocket
        self.wsgi = wsgi  # False: WSGI cannot carry it (no upgrade; repeated fields merged by the server)

    def __repr__(self):
        return self.name


def _now():
    return int(time.time())


def token(m, alg="RS512", key=None, **over):
    now = _now()
    c = dict(iat=now - 10, exp=now + 600)
    c.update(over)
    return m.token(alg, claims=m.claims(**c), key=key)


def bearer(t):
    return [("Authorization", "Bearer " + t)]


def upgrade_headers():
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", base64.b64encode(b"0123456789abcdef").decode())]


def cases(m):
    """The corpus: fresh tokens each call."""
    now = _now()
    good = token(m)
    h_none = b64(json.dumps({"alg": "none", "typ": "JWT"}))
    p_good = b64(json.dumps(m.claims(iat=now - 10, exp=now + 600)))
    alg_none = h_none + "." + p_good + "."
    h_rs = b64(json.dumps({"alg": "RS512", "typ": "JWT", "kid": "rsa-1"}))
    p_admin = b64(json.dumps(m.claims(iat=now - 10, exp=now + 600, **{"x-nmos-node": {"read": ["*"],
                                                                                       "write": ["*"]}})))
    tampered = h_rs + "." + p_admin + "." + good.split(".")[2]
    jku = b64(json.dumps({"alg": "RS512", "jku": "https://attacker.example.org/jwks", "kid": "evil"}))
    si = (jku + "." + p_good).encode()
    embedded = jku + "." + p_good + "." + b64(sign_raw(m.attacker, "RS512", si))
    out = [
        Case("public-root", "GET", "/", [], 200, None),
        Case("public-x-nmos", "GET", "/x-nmos/", [], 200, None),
        Case("system-api-needs-no-token", "GET", "/x-nmos/system/v1.0/global", [], 200, None),
        Case("allowed-read", "GET", SELF, bearer(good), 200, None),
        Case("allowed-lowercase-scheme", "GET", SELF, [("Authorization", "bearer " + good)], 200, None),
        Case("allowed-write", "PATCH", "/x-nmos/connection/v1.1/single/senders/x/staged", bearer(good), 200, None),
        Case("no-credentials", "GET", SELF, [], 401, None),
        Case("no-credentials-ncp", "GET", "/x-nmos/ncp/v1.0/", [], 401, None),
        Case("expired", "GET", SELF, bearer(token(m, iat=now - 900, exp=now - 60)), 401, "invalid_token"),
        Case("not-yet-valid", "GET", SELF, bearer(token(m, nbf=now + 600)), 401, "invalid_token"),
        Case("bad-signature", "GET", SELF, bearer(token(m, key=m.attacker)), 401, "invalid_token"),
        Case("alg-none", "GET", SELF, bearer(alg_none), 401, "invalid_token"),
        Case("tampered-payload", "GET", SELF, bearer(tampered), 401, "invalid_token"),
        Case("embedded-jku-key", "GET", SELF, bearer(embedded), 401, "invalid_token"),
        Case("untrusted-issuer", "GET", SELF, bearer(token(m, iss="https://evil.example.org")), 401,
             "invalid_token"),
        Case("garbage-token", "GET", SELF, bearer("not.a.jwt"), 401, "invalid_token"),
        Case("other-scheme", "GET", SELF, [("Authorization", "Basic dXNlcjpwdw==")], 401, "invalid_token"),
        Case("empty-bearer", "GET", SELF, [("Authorization", "Bearer")], 400, "invalid_request"),
        Case("two-authorization-headers", "GET", SELF, bearer(good) + bearer(good), 400, "invalid_request",
             wsgi=False),
        Case("wrong-audience", "GET", SELF, bearer(token(m, aud=["https://node1.other.example.org"])), 403,
             "insufficient_scope"),
        Case("write-without-grant", "POST", SELF, bearer(good), 403, "insufficient_scope"),
        Case("dot-dot-escape", "PATCH", "/x-nmos/connection/v1.1/single/../bulk/senders", bearer(good), 403,
             "insufficient_scope"),
        Case("encoded-dot-dot-escape", "PATCH", "/x-nmos/connection/v1.1/single/%2e%2E/bulk/senders",
             bearer(good), 403, "insufficient_scope"),
        Case("encoded-slash", "PATCH", "/x-nmos/connection/v1.1/single/..%2Fbulk/senders", bearer(good), 400,
             "invalid_request"),
        Case("double-slash-dot-dot", "GET", "/x-nmos/node/v1.3//../self", bearer(good), 400, "invalid_request"),
        Case("api-not-granted", "GET", "/x-nmos/channelmapping/v1.0/map", bearer(good), 403, "insufficient_scope"),
        Case("ncp-not-granted", "GET", "/x-nmos/ncp/v1.0/", bearer(good), 403, "insufficient_scope"),
        Case("outside-x-nmos", "GET", "/admin", bearer(good), 403, "insufficient_scope"),
        Case("query-token-on-plain-http", "GET", SELF + "?access_token=" + good, [], 401, None),
        Case("preflight", "OPTIONS", SELF, [("Origin", "https://ui.example.com"),
                                             ("Access-Control-Request-Method", "PATCH")], 200, None),
        # WebSocket upgrades (RS-37..RS-40): no WSGI server upgrades
        Case("ws-query-token", "GET", WS + "?access_token=" + good, upgrade_headers(), 200, None,
             websocket=True, wsgi=False),
        Case("ws-header-token", "GET", WS, upgrade_headers() + bearer(good), 200, None, websocket=True,
             wsgi=False),
        Case("ws-no-token", "GET", WS, upgrade_headers(), 401, None, websocket=True, wsgi=False),
        Case("ws-expired-query-token", "GET", WS + "?access_token=" + token(m, iat=now - 900, exp=now - 60),
             upgrade_headers(), 401, "invalid_token", websocket=True, wsgi=False),
        Case("ws-token-twice", "GET", WS + "?access_token=" + good, upgrade_headers() + bearer(good), 400,
             "invalid_request", websocket=True, wsgi=False),
        Case("ws-two-query-tokens", "GET", WS + "?access_token=%s&access_token=%s" % (good, good),
             upgrade_headers(), 400, "invalid_request", websocket=True, wsgi=False),
        Case("ws-ncp-not-granted", "GET", NCP_WS + "?access_token=" + good, upgrade_headers(), 403,
             "insufficient_scope", websocket=True, wsgi=False),
    ]
    return out
