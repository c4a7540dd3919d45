"""A summary of `protect`'s audit log: which clients, APIs and methods were (or would have been)
refused, and why (issue 19 §4: observe before enforcing).

Reads the JSON lines the guard writes (guard.Guard._finish: time, method, path, status, reason,
client_id, token hash, outcome, peer), one at a time, in constant memory: a line longer than
MAX_LINE is skipped unread, every table keeps at most MAX_KEYS entries (the rest are counted
under OTHER), every string is cut to MAX_FIELD characters. Lines that are not audit records
(other log lines when the audit went to stderr, broken JSON, wrong types) are counted, never
fatal. CPython only (not a core module).
"""

import json
import math

MAX_LINE = 16 * 1024  # an audit record is a few hundred bytes; a path is at most 8 KiB (http11)
MAX_KEYS = 1000  # entries per table: clients, reasons, API x method
MAX_FIELD = 200  # characters kept of any string field
OTHER = "(other)"
NO_TOKEN = "(no token)"
BAD_TOKEN = "(invalid token)"  # a 400/401 token: its claims are never read
OUTCOMES = ("allow", "deny", "would_deny")
REFUSED = ("deny", "would_deny")
READ_SIZE = 65536


def _text(value, default="-"):
    if not isinstance(value, str) or not value:
        return default
    value = value[:MAX_FIELD]
    # keep the report on one line per entry: no control characters from a hostile path
    return "".join(c if c.isprintable() else "?" for c in value)


def api_of(path):
    """'/x-nmos/node/v1.3/self' -> 'node'; other paths -> '-' (the record holds the raw path)."""
    if not path.startswith("/x-nmos/"):
        return "-"
    return _text(path[8:].split("/", 1)[0].split("?", 1)[0])


class _Table:
    """Counts per key, bounded: past MAX_KEYS keys, new ones are counted under OTHER."""

    def __init__(self):
        self.counts = {}

    def add(self, key, n=1):
        if key not in self.counts and len(self.counts) >= MAX_KEYS:
            key = OTHER
        self.counts[key] = self.counts.get(key, 0) + n

    def top(self, n):
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]


class AuditReport:
    def __init__(self):
        self.lines = 0
        self.records = 0
        self.malformed = 0  # JSON objects that are not audit records, or broken JSON
        self.skipped = 0  # not JSON at all (other log lines) or longer than MAX_LINE
        self.first = None
        self.last = None
        self.outcomes = dict((o, 0) for o in OUTCOMES)
        self.reasons = _Table()  # (status, reason) of refusals
        self.clients = _Table()  # (peer, client) of refusals
        self.client_reasons = {}  # (peer, client) -> _Table of (status, reason)
        self.apis = _Table()  # (api, method) of refusals

    # --- input ---------------------------------------------------------------------------------
    def read(self, stream):
        """Feed every line of a binary stream (bounded per line)."""
        for line in iter_lines(stream):
            if line is None:
                self.lines += 1
                self.skipped += 1
            else:
                self.add_line(line)
        return self

    def add_line(self, line):
        self.lines += 1
        if isinstance(line, bytes):
            if len(line) > MAX_LINE:
                self.skipped += 1
                return
            line = line.decode("utf-8", "replace")
        elif len(line) > MAX_LINE:
            self.skipped += 1
            return
        line = line.strip()
        if not line.startswith("{"):
            self.skipped += 1  # a log line beside the records (--audit -), or a blank one
            return
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            self.malformed += 1
            return
        if not self.add_record(rec):
            self.malformed += 1

    def add_record(self, rec):
        """Count one record; False (nothing counted) when it is not an audit record."""
        if not isinstance(rec, dict):
            return False
        status, method, path = rec.get("status"), rec.get("method"), rec.get("path")
        if type(status) is not int or not isinstance(method, str) or not isinstance(path, str):
            return False
        outcome = rec.get("outcome")
        if outcome not in OUTCOMES:  # records written before observe mode existed
            outcome = "allow" if status == 200 else "deny"
        t = rec.get("time")
        if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
            self.first = t if self.first is None else min(self.first, t)
            self.last = t if self.last is None else max(self.last, t)
        self.records += 1
        self.outcomes[outcome] += 1
        if outcome not in REFUSED:
            return True
        why = (status, _text(rec.get("reason")))
        self.reasons.add(why)
        who = (_text(rec.get("peer")), self._client(rec))
        self.clients.add(who)
        reasons = self.client_reasons.get(who)
        if reasons is None:
            if len(self.client_reasons) >= MAX_KEYS:
                who = (OTHER, OTHER)
                reasons = self.client_reasons.setdefault(who, _Table())
            else:
                reasons = self.client_reasons[who] = _Table()
        reasons.add(why)
        self.apis.add((api_of(path), _text(method)[:16]))
        return True

    @staticmethod
    def _client(rec):
        cid = rec.get("client_id")
        if isinstance(cid, str) and cid:
            return _text(cid)
        return BAD_TOKEN if rec.get("token") else NO_TOKEN

    # --- output --------------------------------------------------------------------------------
    def to_dict(self, top=20):
        refused = self.outcomes["deny"] + self.outcomes["would_deny"]
        return {
            "lines": self.lines, "records": self.records, "malformed": self.malformed, "skipped": self.skipped,
            "first": self.first, "last": self.last, "outcomes": dict(self.outcomes), "refusals": refused,
            "reasons": [{"status": s, "reason": r, "count": n} for (s, r), n in _keyed(self.reasons.top(top))],
            "clients": [{"peer": p, "client": c, "count": n,
                         "reasons": [{"status": s, "reason": r, "count": k}
                                     for (s, r), k in _keyed(self.client_reasons[(p, c)].top(5))]
                         if (p, c) in self.client_reasons else []}
                        for (p, c), n in _keyed(self.clients.top(top))],
            "apis": [{"api": a, "method": m, "count": n} for (a, m), n in _keyed(self.apis.top(top))],
        }

    def text(self, top=20):
        d = self.to_dict(top)
        o = d["outcomes"]
        out = ["records %d (lines %d, malformed %d, skipped %d)%s" % (
            d["records"], d["lines"], d["malformed"], d["skipped"],
            "" if d["first"] is None else ", %s .. %s" % (_utc(d["first"]), _utc(d["last"])))]
        out.append("outcomes: allow %d, deny %d, would_deny %d" % (o["allow"], o["deny"], o["would_deny"]))
        if o["would_deny"]:
            out.append("%d request(s) were forwarded in observe mode that enforcing would refuse: fix these "
                       "clients before turning enforcement on" % o["would_deny"])
        if not d["refusals"]:
            out.append("no refusals")
            return "\n".join(out) + "\n"
        out.append("")
        out.append("refusals by reason")
        for r in d["reasons"]:
            out.append("  %7d  %s %s" % (r["count"], r["status"], r["reason"]))
        out.append("")
        out.append("refusals by client (address, client_id)")
        for c in d["clients"]:
            why = "; ".join("%d x %s %s" % (r["count"], r["status"], r["reason"]) for r in c["reasons"])
            out.append("  %7d  %-39s %-36s %s" % (c["count"], c["peer"], c["client"], why))
        out.append("")
        out.append("refusals by API and method")
        for a in d["apis"]:
            out.append("  %7d  %-20s %s" % (a["count"], a["api"], a["method"]))
        return "\n".join(out) + "\n"


def _keyed(items):
    """Table rows with OTHER keys shaped like the rest: (OTHER, OTHER)."""
    return [((OTHER, OTHER) if k == OTHER else k, n) for k, n in items]


def _utc(ts):
    import datetime

    try:
        return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "?"


def iter_lines(stream):
    """Lines of a binary stream; None for a line longer than MAX_LINE (its rest is read and dropped)."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while True:  # drop the rest of an over-long line without holding it
                rest = stream.readline(READ_SIZE)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line
