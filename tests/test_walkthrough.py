"""The README's walkthrough "Protect your Node in ten minutes", run verbatim (issue 22, "Done when").

A script that knows only the README: it takes the walkthrough's shell blocks in order and types each
command into one bash session in a fresh directory (the clone's `.venv` linked in, as `make run`
leaves it), exactly as a reader would. After a command ending in `&` it waits for that server's ready
line, as the README tells the reader to; after any other command it checks the exit status. Then it
holds the answers to what the README promises: the lab authorization server, a certificate, `protect`
in front of the sample plain-HTTP Node, a Node-API token, 401/200/403 (IS-10 RS-22/RS-23, RS-21,
RS-33) and a passing `probe` run. The Python example of docs/client.md marked for the walkthrough's
lab runs against the same lab before it is stopped. Real processes, real TLS, loopback only, ports
chosen free; the session's process group (our own child's) is stopped at the end.
"""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from test_readme_commands import WALKTHROUGH, readme_commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_TIMEOUT = 120.0  # one command or one server start; generous for a loaded 2-core machine
DONE = "__walkthrough_step_done__"
READY_MARKERS = ("{", "serving until interrupted")  # the JSON ready lines; the probe issuer's last line
LAB_EXAMPLE = "<!-- example: runs in the walkthrough's lab"


def walkthrough_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    a = text.index(WALKTHROUGH)
    b = text.find("\n## ", a + len(WALKTHROUGH))
    return readme_commands(text[a:b if b >= 0 else len(text)])


def lab_examples():
    """Python blocks of README.md and docs/*.md marked to run in the walkthrough's lab."""
    out = []
    pages = [os.path.join(ROOT, "README.md")] + [os.path.join(ROOT, "docs", n)
                                                 for n in sorted(os.listdir(os.path.join(ROOT, "docs")))
                                                 if n.endswith(".md")]
    for page in pages:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(re.escape(LAB_EXAMPLE) + r".*?-->\n```python\n(.*?)```", text, re.S):
            out.append((os.path.relpath(page, ROOT), m.group(1)))
    return out


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Session:
    """One bash, fed line by line; its stdout read by a thread into a queue."""

    def __init__(self, cwd, env, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
                                     start_new_session=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next(self, deadline, what):
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        assert line is not None, "%s: no answer in time; output so far:\n%s" % (what, "\n".join(self.seen[-40:]))
        return line

    def run(self, command):
        """Type one README command; returns its stdout lines (a background server: up to its ready line)."""
        self.proc.stdin.write(command + "\n")
        background = command.rstrip().endswith("&")
        if not background:
            self.proc.stdin.write("echo %s $?\n" % DONE)
        self.proc.stdin.flush()
        deadline = time.monotonic() + STEP_TIMEOUT
        out = []
        while True:
            line = self._next(deadline, command)
            self.seen.append(line)
            if background:
                out.append(line)
                if line.startswith(READY_MARKERS[0]) or READY_MARKERS[1] in line:
                    return out, 0
            elif line.startswith(DONE):
                return out, int(line.split()[1])
            else:
                out.append(line)

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:  # anything the walkthrough left running: our own child's session, by its id
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def test_the_walkthrough_has_the_steps_the_issue_asks_for():
    cmds = walkthrough_commands()
    joined = "\n".join(cmds)
    for needle in ("as serve --lab", "certs make", "demo --node-api", "nmosauth-lite protect", "as token",
                   "curl", "nmosauth-lite probe https://"):
        assert needle in joined, needle
    assert lab_examples(), "the TokenManager example of docs/client.md is marked to run in the lab"


@pytest.mark.skipif(not shutil.which("curl") or not shutil.which("bash"), reason="the walkthrough uses curl and bash")
@pytest.mark.timeout(900)
def test_a_reader_following_only_the_readme_protects_a_node(tmp_path):
    venv = sys.prefix
    if not os.path.exists(os.path.join(venv, "bin", "activate")):
        pytest.skip("not running from a venv (make run makes .venv)")
    clone = tmp_path / "clone"
    clone.mkdir()
    os.symlink(venv, clone / ".venv")  # what `make run` leaves in a fresh clone
    as_port, node_port, tls_port, probe_port = free_ports(4)
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY",
                                                            "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HOME=str(tmp_path), AS_PORT=str(as_port), NODE_PORT=str(node_port), TLS_PORT=str(tls_port),
               PROBE_PORT=str(probe_port), LC_ALL="C.UTF-8")
    s = Session(str(clone), env, str(tmp_path / "stderr.log"))
    codes, probe_out = [], []
    try:
        cmds = walkthrough_commands()
        last = len(cmds) - 1
        for i, cmd in enumerate(cmds):
            if i == last:  # before the lab is stopped: the Python example that runs in it
                run_lab_examples(clone, tmp_path, as_port, tls_port)
            out, rc = s.run(cmd)
            assert rc == 0, (cmd, rc, out, open(tmp_path / "stderr.log").read()[-4000:])
            if cmd.startswith("curl"):
                codes.append(out[-1])
            if cmd.startswith("nmosauth-lite probe https://"):
                probe_out = out
            if cmd.startswith("nmosauth-lite certs make"):
                doc = json.loads("\n".join(out))
                assert os.stat(doc["key_file"]).st_mode & 0o777 == 0o600
    finally:
        s.stop()
    errors = open(tmp_path / "stderr.log").read()
    assert codes == ["401", "200", "403"], errors[-4000:]
    assert probe_out and probe_out[-1] == "17 passed, 0 failed, 0 warnings", "\n".join(probe_out)
    assert "LAB MODE" in errors  # the lab server said so
    assert "Traceback" not in errors


def run_lab_examples(clone, tmp_path, as_port, tls_port):
    env = dict(os.environ, ISSUER="https://localhost:%d/x-nmos/auth/v1.0" % as_port, CA="lab/certs/ca.pem",
               NODE="https://localhost:%d/x-nmos/node/v1.3/self" % tls_port)
    env.pop("STATE_DIRECTORY", None)
    iat = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "client", "iat", "--state-dir", "lab/as",
                          "--scope", "node"], cwd=str(clone), env=env, capture_output=True, text=True, timeout=120)
    assert iat.returncode == 0, iat.stderr
    env["IAT"] = json.loads(iat.stdout)["initial_access_token"]
    for page, code in lab_examples():
        path = tmp_path / "example.py"
        path.write_text(code)
        r = subprocess.run([sys.executable, str(path)], cwd=str(clone), env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, (page, r.stdout, r.stderr)
        assert r.stdout.startswith("200 "), (page, r.stdout)
