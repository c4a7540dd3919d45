"""IS-10 / BCP-003-02 resource-server conformance checks, as data (what `nmosauth-lite probe` sends).

Each Check is a request to send plus a judge (probe.judges), which reads status,
`WWW-Authenticate` (RFC 7235 §4.1 syntax, RFC 6750 §3 error codes, the layout the AMWA tool
parses: RS-26), the NMOS error JSON and CORS headers (RS-27). No I/O: tokens come from a minter
handed in, the asyncio runner (probe.run) sends the requests. Leaves out registry client-id
binding (BCP-R-*) and IS-07 subscription filtering (BCP-E-03): they need API-specific writes.
"""

import base64
import os

from .judges import (FAIL, PASS, WARN, _judge_malformed, judge_error, judge_new_key, judge_ok,  # noqa: F401
                     judge_preflight, judge_public, judge_query_plain, judge_upgrade)

NIL = "00000000-0000-4000-8000-000000000000"
ORIGIN = "https://probe.nmosauth-lite.invalid"
WRONG_AUDIENCE = "https://*.nmos-probe.invalid"  # RS-25: names no real host

# API -> (a read path below the version, (method, write path)). Paths are after /x-nmos/<api>/<ver>/
# (TOK-29); BCP-003-02 §3 gives the resources. Writes target a nil id: refused by the guard (403)
# before routing, they could only ever reach a resource that does not exist.
API_PATHS = {
    "node": ("self", ("PUT", "receivers/%s/target" % NIL)),
    "connection": ("single", ("PATCH", "single/receivers/%s/staged" % NIL)),
    "query": ("nodes", ("POST", "subscriptions")),
    "registration": ("health/nodes/" + NIL, ("POST", "resource")),
    "events": ("sources", ("POST", "sources")),
    "channelmapping": ("io", ("POST", "map/activations")),
}
DEFAULT_PATHS = ("nmosauth-probe", ("POST", "nmosauth-probe"))


class Request:
    def __init__(self, method, path, headers=(), body=None):
        self.method = method
        self.path = path
        self.headers = list(headers)
        self.body = body


class Check:
    """`needs`: "new_key" when the runner must publish the probe's second key first."""

    def __init__(self, cid, api, spec, expected, request, judge, needs=None):
        self.id = cid
        self.api = api
        self.spec = spec
        self.expected = expected
        self.request = request
        self.judge = judge
        self.needs = needs


class Result:
    def __init__(self, check, verdict, got, hint=None):
        self.hint = hint  # judges.diagnose: likely cause and fix of a failure, when the pattern is clear
        self.id = check.id
        self.api = check.api
        self.spec = check.spec
        self.expected = check.expected
        self.verdict = verdict
        self.got = got

    def to_dict(self):
        out = {"check": self.id, "api": self.api, "spec": self.spec, "expected": self.expected,
               "got": self.got, "result": self.verdict}
        if self.hint:
            out["likely_cause"] = self.hint
        return out


# --- the checks ---------------------------------------------------------------------------------------------
def parse_api(text):
    """'node/v1.3' -> ('node', 'v1.3'); ValueError for anything else."""
    name, sep, ver = text.strip().strip("/").partition("/")
    if not sep or not name.isalpha() or not name.islower() or not ver.startswith("v") or \
            not all(p.isdigit() for p in ver[1:].split(".")) or len(text) > 64:
        raise ValueError("API %r: use NAME/vMAJOR.MINOR, e.g. node/v1.3" % text[:64])
    return name, ver


def _bearer(token):
    return [("Authorization", "Bearer " + token)]


def _ws_headers():
    key = base64.b64encode(os.urandom(16)).decode()  # RFC 6455 §4.1: a fresh nonce per handshake
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13")]


def api_checks(api, ver, mint):
    """The checks for one API. `mint(**claims)` signs with the probe's published key;
    mint.none / mint.forged / mint.unseen give the special tokens (see probe.issuer.Minter)."""
    base = "/x-nmos/%s/%s" % (api, ver)
    read, (wmethod, wpath) = API_PATHS.get(api, DEFAULT_PATHS)
    full = {"scope": api, "x-nmos-" + api: {"read": ["*"]}}
    rq = lambda headers=(), path=base, method="GET", body=None: Request(method, path, headers, body)  # noqa: E731
    now = mint.now
    c = []

    def add(cid, spec, expected, request, judge, needs=None):
        c.append(Check(cid, api, spec, expected, request, judge, needs))

    add("valid-token", "IS-10 RS-21, RS-31", "2xx", rq(_bearer(mint(**full))), judge_ok())
    add("valid-scope-only", "IS-10 RS-31", "2xx", rq(_bearer(mint(scope=api))), judge_ok())
    add("no-token", "IS-10 RS-22, RS-23", "401, no error", rq(), judge_error(401, None))
    add("malformed-header", "RFC 6750 §3.1, IS-10 §8", "400 invalid_request", rq([("Authorization", "Bearer")]),
        _judge_malformed)
    add("bad-signature", "IS-10 RS-08, RS-12", "401 invalid_token", rq(_bearer(mint.forged(**full))),
        judge_error(401, "invalid_token"))
    add("alg-none", "IS-10 RS-12", "401 invalid_token", rq(_bearer(mint.none(**full))),
        judge_error(401, "invalid_token"))
    add("expired", "IS-10 RS-13", "401 invalid_token",
        rq(_bearer(mint(iat=now - 7200, exp=now - 3600, **full))), judge_error(401, "invalid_token"))
    add("not-yet-valid", "IS-10 RS-14", "401 invalid_token",
        rq(_bearer(mint(nbf=now + 3600, exp=now + 4200, **full))), judge_error(401, "invalid_token"))
    add("wrong-audience", "IS-10 RS-15, RS-25; BCP-A-03", "403 insufficient_scope",
        rq(_bearer(mint(aud=[WRONG_AUDIENCE], **full))), judge_error(403, "insufficient_scope"))
    add("wrong-scope", "IS-10 RS-24", "403 insufficient_scope",
        rq(_bearer(mint(scope="nonsense", **{"x-nmos-nonsense": {"read": ["*"]}}))),
        judge_error(403, "insufficient_scope"))
    add("missing-claim", "IS-10 RS-31", "403 insufficient_scope",
        rq(_bearer(mint(scope=api)), path=base + "/" + read), judge_error(403, "insufficient_scope"))
    add("read-only-write", "IS-10 RS-33", "403 insufficient_scope",
        rq(_bearer(mint(**full)) + [("Content-Type", "application/json")], path=base + "/" + wpath,
           method=wmethod, body=b"{}"), judge_error(403, "insufficient_scope"))
    add("query-token-plain-get", "IS-10 RS-40 (SHOULD)", "refused (query token only on WebSocket)",
        rq(path=base + "?access_token=" + mint(**full)), judge_query_plain)
    add("preflight", "IS-10 RS-29, GEN-04, GEN-05", "200, allows Authorization",
        rq([("Origin", ORIGIN), ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization")], method="OPTIONS"), judge_preflight)
    add("unseen-key", "IS-10 RS-06, RS-07", "503 + Retry-After then 2xx",
        rq(_bearer(mint.unseen(**full))), judge_new_key, needs="new_key")
    return c


def websocket_checks(path, mint, apis):
    """RS-37..RS-39 (and BCP-E-01 / BCP-Q-02 for IS-07 and Query sockets): token in the query."""
    claims = {"scope": " ".join(a for a, _ in apis)}
    for a, _ in apis:
        claims["x-nmos-" + a] = {"read": ["*"]}
    sep = "&" if "?" in path else "?"
    now = mint.now
    return [
        Check("ws-valid-query-token", path, "IS-10 RS-37, RS-38", "101",
              Request("GET", path + sep + "access_token=" + mint(**claims), _ws_headers()), judge_upgrade),
        Check("ws-no-token", path, "IS-10 RS-39", "401, no error", Request("GET", path, _ws_headers()),
              judge_error(401, None)),
        Check("ws-expired-query-token", path, "IS-10 RS-39", "401 invalid_token",
              Request("GET", path + sep + "access_token=" + mint(iat=now - 7200, exp=now - 3600, **claims),
                      _ws_headers()), judge_error(401, "invalid_token")),
    ]


def node_checks():
    """Checks that are not per API: the token-free paths (RS-30, RS-31)."""
    return [Check("public-root", "-", "IS-10 RS-31", "no token asked", Request("GET", "/"), judge_public),
            Check("public-x-nmos", "-", "IS-10 RS-31", "no token asked", Request("GET", "/x-nmos"), judge_public)]


def build_checks(apis, mint, ws_paths=()):
    out = node_checks()
    for api, ver in apis:
        out.extend(api_checks(api, ver, mint))
    for path in ws_paths:
        out.extend(websocket_checks(path, mint, apis))
    return out


# --- reporting ------------------------------------------------------------------------------------------------
def summary(results):
    n = {PASS: 0, FAIL: 0, WARN: 0}
    for r in results:
        n[r.verdict] += 1
    return n


def summary_line(results):
    n = summary(results)
    return "%d passed, %d failed, %d warnings" % (n[PASS], n[FAIL], n[WARN])


def unprotected_apis(results):
    """APIs that served a request with no token or a forged one (2xx): not protected at all,
    e.g. `protect --enforce off` (observe mode, issue 19 §4) or no IS-10 in front of the Node."""
    out = []
    for r in results:
        if r.id in ("no-token", "bad-signature") and r.got[:1] == "2" and r.api not in out:
            out.append(r.api)
    return out


def unprotected_line(apis):
    return ("THE NODE IS NOT PROTECTED: %s served requests without a valid token (observe mode, "
            "protect --enforce off, or no authorization at all)" % ", ".join(apis)) if apis else ""


def format_table(results):
    rows = [("check", "api", "spec", "expected", "got", "result")]
    rows += [(r.id, r.api, r.spec, r.expected, r.got, r.verdict.upper()) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        lines.append("  ".join(row[i].ljust(widths[i]) for i in range(5)) + "  " + row[5])
    hints = []  # one paragraph per distinct cause, naming the checks it explains
    for r in results:
        if r.hint and r.verdict != PASS:
            for h in hints:
                if h[0] == r.hint:
                    h[1].append(r.id)
                    break
            else:
                hints.append((r.hint, [r.id]))
    out = "\n".join(lines) + "\n"
    for hint, ids in hints:
        out += "\nlikely cause (%s): %s\n" % (", ".join(sorted(set(ids))), hint)
    loud = unprotected_line(unprotected_apis(results))
    return out + ("\n" if hints else "") + summary_line(results) + "\n" + (loud + "\n" if loud else "")
