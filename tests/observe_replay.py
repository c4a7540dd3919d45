"""A pytest plugin (`-p observe_replay`) that replays every request an attack corpus decides
through two Guards over the same validator: one enforcing, one in observe mode (`enforce="off"`,
issue 19 §4), and records whether observe mode let each one through and audited every refusal
the enforcing guard made, with the same status and reason. Results go to the JSON file named by
NMOSAUTH_OBSERVE_OUT at the end of the session (tests/test_attacks_observe.py reads it).
"""

import json
import os

from nmosauth_lite import validator as _validator
from nmosauth_lite.guard import Guard

_ORIG_CHECK = _validator.TokenValidator.check
_ORIG_HEADER = _validator.TokenValidator.check_header
STATS = {"requests": 0, "refusals": 0, "forwarded": 0, "would_deny_audited": 0, "mismatches": []}
_BUSY = []


def _replay(v, headers, method, path, now):
    if _BUSY or not isinstance(method, str) or not isinstance(path, str):
        return
    _BUSY.append(1)  # the guards call the validator again: never replay those calls
    try:
        enforced, observed = [], []
        e = Guard(v, audit=enforced.append).check(method, path, headers, now, "192.0.2.1")
        o = Guard(v, audit=observed.append, enforce="off").check(method, path, headers, now, "192.0.2.1")
    except BaseException as exc:  # noqa: B036 - the guard must never raise for client input
        STATS["mismatches"].append("%s %s: raised %s" % (method, path[:60], type(exc).__name__))
        return
    finally:
        _BUSY.pop()
    STATS["requests"] += 1
    refused = e.answer is not None
    if o.answer is None:
        STATS["forwarded"] += 1
    if not refused:
        return
    STATS["refusals"] += 1
    ok = (o.answer is None and o.would_deny and len(observed) == len(enforced) == 1
          and observed[0]["outcome"] == "would_deny" and enforced[0]["outcome"] == "deny"
          and (observed[0]["status"], observed[0]["reason"]) == (enforced[0]["status"], enforced[0]["reason"]))
    if ok:
        STATS["would_deny_audited"] += 1
    else:
        STATS["mismatches"].append("%s %s: enforcing %s %r, observing %r" % (
            method, path[:60], e.decision.status, e.decision.reason, observed[-1:] and observed[-1]["outcome"]))


def _check(self, token, method="GET", path="/", now=None):
    d = _ORIG_CHECK(self, token, method, path, now)
    if isinstance(token, str) and token and method != "OPTIONS":
        _replay(self, {"authorization": "Bearer " + token}, method, path, now)
    elif token is None and method != "OPTIONS":
        _replay(self, {}, method, path, now)
    return d


def _check_header(self, value, method="GET", path="/", now=None):
    d = _ORIG_HEADER(self, value, method, path, now)
    if isinstance(value, str) and method != "OPTIONS":
        _replay(self, {"authorization": value}, method, path, now)
    return d


def pytest_configure(config):
    _validator.TokenValidator.check = _check
    _validator.TokenValidator.check_header = _check_header


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("NMOSAUTH_OBSERVE_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(dict(STATS, exitstatus=int(exitstatus)), f)
