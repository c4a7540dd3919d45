"""The attack corpus in observe mode (issue 19 §4): tests/test_attacks.py and its friends
(test_validator.py, test_pyjwt_diff.py) run as they are, and
every request it decides is replayed through an enforcing and an observing Guard over the same
validator (tests/observe_replay.py). Observe mode must forward every one of them and audit
every refusal the enforcing guard made as would_deny, with the same status and reason."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_attack_corpus_in_observe_mode_forwards_everything_and_records_every_refusal(tmp_path):
    out = tmp_path / "observe.json"
    env = dict(os.environ, NMOSAUTH_OBSERVE_OUT=str(out), PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "observe_replay",
                        os.path.join(HERE, "test_attacks.py"), os.path.join(HERE, "test_validator.py"),
                        os.path.join(HERE, "test_pyjwt_diff.py")], cwd=ROOT, env=env, capture_output=True, timeout=110)
    assert r.returncode == 0, r.stdout.decode()[-3000:]  # the corpus itself still passes
    stats = json.loads(out.read_text())
    assert stats["mismatches"] == [], stats["mismatches"][:20]
    assert stats["requests"] == stats["forwarded"]  # observe mode forwards everything
    assert stats["refusals"] == stats["would_deny_audited"]  # and records every refusal
    assert stats["refusals"] >= 1000, stats  # the corpus is a corpus of attacks (about 2,000 refusals)
