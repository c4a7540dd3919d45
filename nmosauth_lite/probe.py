"""IS-10 / BCP-003-02 resource-server conformance checks, as data (what `nmosauth-lite probe` sends).

Each Check is a request to send plus a judge: `judge(answers) -> (verdict, got)` or Retry(seconds)
when the answer asks to be retried (503 + Retry-After, IS-10 RS-07). Judges read status,
`WWW-Authenticate` (RFC 7235 §4.1 syntax, RFC 6750 §3 error codes, the layout the AMWA tool
parses: RS-26), the NMOS error JSON and CORS headers (RS-27). No I/O: tokens come from a minter
handed in, the asyncio runner (probe_run) sends the requests. Leaves out registry client-id
binding (BCP-R-*) and IS-07 subscription filtering (BCP-E-03): they need API-specific writes.
"""

import base64
import json
import os

from .probe_challenge import parse_challenge, tool_reads_error  # noqa: F401 (part of the API)

PASS, FAIL, WARN = "pass", "fail", "warn"
MAX_ATTEMPTS = 4  # a 503 + Retry-After is retried this many times in all
MAX_RETRY_WAIT = 10  # seconds: longer Retry-After values are cut to this
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


class Answer:
    """What came back: status, headers as a dict of lower-case name -> value (repeats joined), body."""

    def __init__(self, status, headers, body=b""):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)


class Retry:
    def __init__(self, delay):
        self.delay = delay


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
    def __init__(self, check, verdict, got):
        self.id = check.id
        self.api = check.api
        self.spec = check.spec
        self.expected = check.expected
        self.verdict = verdict
        self.got = got

    def to_dict(self):
        return {"check": self.id, "api": self.api, "spec": self.spec, "expected": self.expected,
                "got": self.got, "result": self.verdict}


# --- judging ------------------------------------------------------------------------------------------
def _verdict(fails, warns):
    return FAIL if fails else WARN if warns else PASS


def _got(a, notes):
    www = a.header("www-authenticate")
    err = ""
    if www:
        try:
            err = parse_challenge(www)[1].get("error") or ""
        except ValueError:
            err = "?"
    text = str(a.status) + (" error=" + err if err else "")
    return text + ("; " + "; ".join(notes) if notes else "")


def _check_error_body(a, fails):
    """RS-27: NMOS error JSON with application/json, CORS on error answers too."""
    ctype = (a.header("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        fails.append("Content-Type %s, not application/json (GEN-03)" % (ctype or "missing"))
    try:
        doc = json.loads(a.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    if not (isinstance(doc, dict) and doc.get("code") == a.status and type(doc.get("code")) is int
            and isinstance(doc.get("error"), str) and (doc.get("debug") is None or isinstance(doc.get("debug"), str))):
        fails.append("body is not the NMOS error JSON {code, error, debug}")
    if not a.header("access-control-allow-origin"):
        fails.append("no Access-Control-Allow-Origin")


def judge_error(status, error):
    """A deny answer: `status`, Bearer challenge, error code `error` (None: no error attribute)."""

    def judge(answers):
        a = answers[-1]
        fails, warns = [], []
        if a.status != status:
            return FAIL, _got(a, ["expected %d" % status])
        www = a.header("www-authenticate")
        if not www:
            fails.append("no WWW-Authenticate (RS-22)")
        else:
            try:
                scheme, params = parse_challenge(www)
                if scheme.lower() != "bearer":
                    fails.append("scheme %s, not Bearer" % scheme[:20])
                got = params.get("error")
                if error is None and got is not None:
                    fails.append("error attribute on a request without credentials (RS-23)")
                elif error is not None and got != error:
                    fails.append("error=%s, expected %s" % ((got or "missing")[:40], error))
                elif error is not None and not tool_reads_error(www, error):
                    warns.append("layout the AMWA tool misreads (RS-26)")
            except ValueError as e:
                fails.append("WWW-Authenticate unparsable: %s" % e)
        _check_error_body(a, fails)
        return _verdict(fails, warns), _got(a, fails + warns)
    return judge


def judge_ok(retry_ok=True):
    """2xx, with CORS (GEN-05); a 503 + Retry-After is waited out (RS-07) when `retry_ok`."""

    def judge(answers):
        a = answers[-1]
        if a.status == 503 and retry_ok and len(answers) < MAX_ATTEMPTS:
            delay = _retry_after(a)
            if delay is not None:
                return Retry(delay)
        notes = ["after %d x 503" % (len(answers) - 1)] if len(answers) > 1 else []
        if not 200 <= a.status < 300:
            return FAIL, _got(a, notes + ["expected 2xx"])
        warns = [] if a.header("access-control-allow-origin") else ["no Access-Control-Allow-Origin"]
        return _verdict([], warns), _got(a, notes + warns)
    return judge


def _retry_after(a):
    v = (a.header("retry-after") or "").strip()
    if not v.isdigit() or len(v) > 6:
        return None
    return min(int(v), MAX_RETRY_WAIT)


def judge_new_key(answers):
    """RS-06/RS-07: an unseen key of a trusted issuer is fetched: 503 + Retry-After, then 2xx (at once: warning).
    401 is what the AMWA tool accepts with a warning (no fetch, or fetches rate-limited: RS-10)."""
    a = answers[-1]
    if a.status == 503:
        delay = _retry_after(a)
        if delay is None:
            return FAIL, _got(a, ["503 without an integer Retry-After (RS-07)"])
        if len(answers) < MAX_ATTEMPTS:
            return Retry(delay)
        return FAIL, _got(a, ["still 503 after %d tries" % len(answers)])
    if 200 <= a.status < 300:
        if len(answers) > 1:
            return PASS, _got(a, ["after 503 + Retry-After"])
        # IS-10 allows fetching before answering, but the AMWA testing tool's "No Matching Public
        # Keys" test fails a 2xx here ("expected 401 or 503"): warn, as protect now answers 503 first
        return WARN, _got(a, ["fetched at once: the AMWA tool expects 401 or 503 first"])
    if a.status == 401 and len(answers) == 1:
        return WARN, _got(a, ["no fetch of the new key (RS-06), or the fetch rate limit (RS-10)"])
    return FAIL, _got(a, ["expected 503 + Retry-After, then 2xx"])


def judge_preflight(answers):
    """RS-29, GEN-04, GEN-05: OPTIONS without a token is 200 and allows Authorization.

    Exactly 200: the NMOS RAMLs give OPTIONS 200, and the AMWA testing tool fails a 204
    ("Incorrect response code: 204", IS-05-01 auto tests)."""
    a = answers[-1]
    fails = []
    if a.status != 200:
        fails.append("expected 200 (the NMOS RAMLs and the AMWA tool: not 204)")
    allow = [h.strip().lower() for h in (a.header("access-control-allow-headers") or "").split(",")]
    if "authorization" not in allow and "*" not in allow:
        fails.append("Authorization not in Access-Control-Allow-Headers")
    if not a.header("access-control-allow-origin"):
        fails.append("no Access-Control-Allow-Origin")
    return _verdict(fails, []), _got(a, fails)


def judge_public(answers):
    """RS-30/RS-31: / and /x-nmos need no token: any answer but 401/403 (a Node may not serve /)."""
    a = answers[-1]
    if a.status in (401, 403):
        return FAIL, _got(a, ["a token was demanded"])
    if a.status >= 500:
        return FAIL, _got(a, ["server error"])
    return PASS, _got(a, [] if a.status < 300 else ["not served, no token asked"])


def judge_upgrade(answers):
    a = answers[-1]
    if a.status != 101:
        return FAIL, _got(a, ["expected 101 Switching Protocols"])
    return PASS, "101"


def judge_query_plain(answers):
    """RS-40 (SHOULD): access_token in the query counts only on a WebSocket handshake."""
    a = answers[-1]
    if 200 <= a.status < 300:
        return WARN, _got(a, ["query token accepted outside a WebSocket handshake"])
    return PASS, _got(a, [])


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
    mint.none / mint.forged / mint.unseen give the special tokens (see probe_issuer.Minter)."""
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


def _judge_malformed(answers):
    # An empty Bearer value cannot be parsed at all: 400 invalid_request (RFC 6750 §3.1). The IS-10
    # §8 table also allows 401 invalid_token for a malformed token: accepted with a warning.
    a = answers[-1]
    if a.status == 401:
        v, got = judge_error(401, "invalid_token")(answers)
        return (WARN if v == PASS else v), got + ("; 401 allowed by IS-10 §8, 400 expected" if v == PASS else "")
    return judge_error(400, "invalid_request")(answers)


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
    loud = unprotected_line(unprotected_apis(results))
    return "\n".join(lines) + "\n" + summary_line(results) + "\n" + (loud + "\n" if loud else "")
