"""`nmosauth-lite probe`: IS-10 / BCP-003-02 conformance checks of a resource server (a Node).

One package, four parts: `checks` (the requests to send, as data), `judges` (verdicts, what the
Node said, and the likely cause of a failure), `challenge` (`WWW-Authenticate` as the probe reads
it, RFC 7235 §4.1, IS-10 RS-26), `issuer` (the probe's short-lived RS512 issuer) and `run` (the
asyncio runner over verified TLS). Off-device only: the firmware bundle leaves this package out.
The names below are the ones `from nmosauth_lite.probe import ...` always gave.
"""

from .checks import (API_PATHS, DEFAULT_PATHS, NIL, ORIGIN, WRONG_AUDIENCE, Check, Request, Result,  # noqa: F401
                     api_checks, build_checks, format_table, node_checks, parse_api, summary, summary_line,
                     unprotected_apis, unprotected_line, websocket_checks)
from .judges import (FAIL, MAX_ATTEMPTS, MAX_RETRY_WAIT, PASS, WARN, Answer, Retry, diagnose,  # noqa: F401
                     judge_error, judge_new_key, judge_ok, judge_preflight, judge_public, judge_query_plain,
                     judge_upgrade, said)
from .challenge import parse_challenge, tool_reads_error  # noqa: F401
