"""Judging a Node's answers for `nmosauth-lite probe`: verdicts, what the Node said, and why.

A judge takes the answers to one check's request and returns `(verdict, got)`, or Retry(seconds)
when the answer asks to be retried (503 + Retry-After, IS-10 RS-07). `got` quotes what the Node
said: status, `error` and `error_description` from `WWW-Authenticate` (RFC 6750 §3, RS-26).
`diagnose(check_id, answer, context)` names the likely cause of a failure and its fix where the
pattern is clear (untrusted issuer, clock skew, audience configuration). No I/O.
"""

import json

from .challenge import parse_challenge, tool_reads_error

# checks whose token is good (a pass needs 2xx / 101), and what each kind of bad token must not get
GOOD_TOKEN = ("valid-token", "valid-scope-only", "unseen-key", "ws-valid-query-token")
BAD_TIME = ("expired", "not-yet-valid", "ws-expired-query-token")
BAD_SIGNATURE = ("bad-signature", "alg-none")

PASS, FAIL, WARN = "pass", "fail", "warn"
MAX_SAID = 120  # characters of a Node's error_description quoted in a result

MAX_ATTEMPTS = 4  # a 503 + Retry-After is retried this many times in all
MAX_RETRY_WAIT = 10  # seconds: longer Retry-After values are cut to this


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


# --- judging ------------------------------------------------------------------------------------------
def _verdict(fails, warns):
    return FAIL if fails else WARN if warns else PASS


def said(a):
    """(error, error_description) of the Node's Bearer challenge: "" when absent, "?" unparsable.
    The description is cut to MAX_SAID characters and kept printable (it is the Node's text)."""
    www = a.header("www-authenticate")
    if not www:
        return "", ""
    try:
        params = parse_challenge(www)[1]
    except ValueError:
        return "?", ""
    desc = "".join(c if " " <= c <= "~" else "?" for c in (params.get("error_description") or "")[:MAX_SAID])
    return params.get("error") or "", desc


def _got(a, notes):
    err, desc = said(a)
    text = str(a.status) + (" error=" + err if err else "") + (' ("%s")' % desc if desc else "")
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


def _judge_malformed(answers):
    # An empty Bearer value cannot be parsed at all: 400 invalid_request (RFC 6750 §3.1). The IS-10
    # §8 table also allows 401 invalid_token for a malformed token: accepted with a warning.
    a = answers[-1]
    if a.status == 401:
        v, got = judge_error(401, "invalid_token")(answers)
        return (WARN if v == PASS else v), got + ("; 401 allowed by IS-10 §8, 400 expected" if v == PASS else "")
    return judge_error(400, "invalid_request")(answers)




# --- why it failed ----------------------------------------------------------------------------------------
def diagnose(check_id, a, context=None):
    """The likely cause of a failed or warned check and its fix, or None when no pattern is clear.

    `a`: the last Answer; `context`: {"issuer", "ca_file", "jwks_file", "audience"} of the run.
    Read from the status and what the Node said (error, error_description: RFC 6750 §3)."""
    ctx = {"issuer": "the probe's issuer", "ca_file": "its ca.pem", "jwks_file": "its jwks.json",
           "audience": "the probe's audience"}
    ctx.update(dict((k, v) for k, v in (context or {}).items() if v))
    err, desc = said(a)
    d = desc.lower()
    ok = 200 <= a.status < 300 or a.status == 101
    if check_id in GOOD_TOKEN and not ok:
        if a.status == 401 and "issuer" in d:
            return ("the Node does not trust the probe's issuer %(issuer)s: add it to the Node's trusted "
                    "issuers (e.g. protect --issuer %(issuer)s --ca %(ca_file)s, or --jwks %(jwks_file)s) "
                    "and run probe again (IS-10 RS-42)" % ctx)
        if a.status == 401 and ("expired" in d or "not yet valid" in d or "iat" in d or "nbf" in d):
            return ("the Node's clock and this machine's disagree (a fresh token was judged %s): synchronize "
                    "both with NTP (`nmosauth-lite doctor` shows the clock); a larger --leeway only hides it "
                    "(IS-10 RS-13, RS-14)" % (desc or "out of its validity"))
        if check_id == "unseen-key" and a.status == 401 and "issuer" not in d:
            return ("the Node did not fetch %(issuer)s's keys again when a token named a new kid: with a fixed "
                    "--jwks file it cannot (trust the issuer URL instead), else its fetch rate limit held the "
                    "fetch back (IS-10 RS-06, RS-10)" % ctx)
        if a.status == 401 and ("key" in d or "signature" in d):
            return ("the Node trusts the issuer but does not hold its current key: it cannot fetch "
                    "%(issuer)s's JWKS (DNS, routing, --ca) or reads a stale --jwks file; check with "
                    "`nmosauth-lite jwks refresh --issuer %(issuer)s` on the Node (IS-10 RS-06)" % ctx)
        if a.status == 401 and not err:
            return ("the Node saw no token: something in front of it drops the Authorization header, "
                    "or it reads tokens from elsewhere (IS-10 RS-21)")
        if a.status == 403 and "audience" in d:
            return ("the Node's audience setting does not match the token's aud %(audience)s: set the Node's "
                    "audience (protect --audience) to its host name as clients use it, or run probe with "
                    "--audience NAME (IS-10 RS-15, BCP-003-02 BCP-A-03)" % ctx)
        if a.status == 403:
            return ("the Node refuses the probe's x-nmos claims for this API: its permission rules or API "
                    "paths differ from IS-10's (RS-24, RS-31)")
        if a.status == 503:
            return ("the Node is still fetching the probe issuer's keys: can it reach %(issuer)s "
                    "(DNS, routing, the CA in its --ca)? (IS-10 RS-07)" % ctx)
        return None
    if check_id in BAD_TIME and ok:
        return ("the Node accepts tokens outside their validity: its leeway is too large or it does not check "
                "exp/nbf (IS-10 RS-13, RS-14)")
    if check_id in BAD_SIGNATURE and ok:
        return "the Node does not verify token signatures: a serious fault (IS-10 RS-08, RS-12)"
    if check_id == "wrong-audience" and ok:
        return ("the Node does not check the token's aud, or its audience is a wildcard that matches anything: "
                "configure its host name (IS-10 RS-15, RS-25)")
    return None
