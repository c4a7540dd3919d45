"""`make run`'s set-up step says what it is doing (issue 22 §4): one line before each long step,
naming what pip installs, instead of a silent minute. The real Makefile rule runs; `python3 -m venv`
and pip are stand-ins (a test must not download packages), everything else is real."""

import os
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_setup_rule_announces_each_step_and_the_packages_it_installs(tmp_path):
    venv = tmp_path / "venv"
    log = tmp_path / "pip.log"
    py = tmp_path / "python3"
    # the interpreter runs for real, except `-m venv`, which makes a venv whose pip only logs its arguments
    py.write_text('#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n  mkdir -p "$3/bin"\n'
                  '  printf \'#!/bin/sh\\necho "$@" >> %s\\n\' > "$3/bin/pip"\n  chmod +x "$3/bin/pip"\n'
                  '  exit 0\nfi\nexec %s "$@"\n' % (log, sys.executable))
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    stamp = venv / ".installed"
    r = subprocess.run(["make", "--no-print-directory", "PY=%s" % py, "VENV=%s" % venv, "STAMP=%s" % stamp,
                        str(stamp)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("make: ")]
    assert lines[0].startswith("make: setting up %s" % venv)
    assert any("[1/2] creating the virtual environment" in ln for ln in lines)
    assert any("[2/2] pip is downloading and installing nmosauth-lite" in ln for ln in lines)
    named = [ln for ln in lines if "cryptography" in ln]
    assert named and all(p in named[0] for p in ("pytest", "hypothesis", "aiohttp"))
    assert lines[-1] == "make: %s is ready (%s/bin/nmosauth-lite)" % (venv, venv)
    assert "-e .[test]" in log.read_text() and stamp.exists()
