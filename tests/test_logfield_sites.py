"""Issue 11 §3 log forging: the places that write log lines use nmosauth_lite.logfield.

protect's audit file (one JSON line per guard decision) and the AS audit log line stay one
line of log-safe text whatever a client put in a field, and the JSON keeps its value.
"""

import json
import logging
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.commands.protect import AuditLog

FORGERS = "\r\n\x00\x1b\x7f\x85\x9b\u2028\u2029\u202e\u200b\ufeff"
_text = st.text(alphabet=st.one_of(st.sampled_from(list(FORGERS) + ["a", "\\", '"']), st.characters()), max_size=40)


def _log_safe(line):
    return all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in line)


@settings(max_examples=150, deadline=None)
@given(_text, _text)
def test_protect_audit_lines_are_log_safe_json(tmp_path_factory, path, sub):
    target = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    log = AuditLog(str(target))
    record = {"method": "GET", "path": path, "sub": sub, "reason": "x" + FORGERS}
    log(record)
    log.close()
    text = target.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1 and _log_safe(text[:-1])
    assert json.loads(text) == record


def test_as_audit_log_line_escapes_client_chosen_fields(tmp_path, caplog):
    from nmosauth_lite.authserver.store import Store

    caplog.set_level(logging.INFO, logger="nmosauth_lite.authserver.audit")
    store = Store(str(tmp_path / "as.db"))
    try:
        store.audit("authorize.login_failed", 1, client_id="c\n1", actor="bob" + FORGERS, client_name="n" + FORGERS)
        assert store.audit_entries(1)[0]["actor"] == "bob" + FORGERS  # the database keeps the exact value
    finally:
        store.close()
    (line,) = [r.getMessage() for r in caplog.records]
    assert _log_safe(line) and len(line.splitlines()) == 1
    assert "client=c\\x0a1 actor=bob\\x0d\\x0a\\x00\\x1b\\x7f" in line
