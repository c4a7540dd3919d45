"""README.md's aiohttp example runs as written (issue 20 "Done when": an aiohttp Node protected in
five lines). tests/test_readme_commands.py runs the README's shell blocks only; this takes the
Python block that uses nmos_auth_middleware, runs it in a child process (its `web.run_app` given
a socket bound to an ephemeral loopback port instead of 8080), and talks to it."""

import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

from minting import Minter
from procs import stop_child

pytest.importorskip("aiohttp")
from adapter_servers import send_raw  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = """import socket, sys
from aiohttp import web
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
original = web.run_app
web.run_app = lambda app, **kw: original(app, sock=sock, print=None)
with open(sys.argv[1]) as f:
    exec(compile(f.read(), "README.md (aiohttp example)", "exec"), {"__name__": "__main__"})
"""


def readme_block():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    found = [b for b in blocks if "nmos_auth_middleware" in b]
    assert len(found) == 1, "README.md must hold one aiohttp example"
    return found[0]


def test_the_five_protection_lines_are_marked():
    marked = [line for line in readme_block().splitlines() if re.search(r"# [1-5]$", line)]
    assert len(marked) == 5


def test_the_readme_aiohttp_example_protects_a_node(tmp_path):
    m = Minter()
    (tmp_path / "keys.json").write_text(json.dumps(m.jwks))
    (tmp_path / "example.py").write_text(readme_block())
    (tmp_path / "runner.py").write_text(RUNNER)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "example.py")],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the example did not start"
        port = int(proc.stdout.readline())
        now = int(time.time())
        t = m.token("RS512", claims=m.claims(iat=now - 10, exp=now + 600, aud=["node-1.studio.example.com"]))
        deadline = time.monotonic() + 20
        while True:  # the socket is bound before run_app listens on it
            try:
                status, _, body = send_raw(port, "GET", "/x-nmos/node/v1.3/self", [("Authorization", "Bearer " + t)])
                break
            except ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert status == 200 and json.loads(body) == {"client": "test-client-0123456789abcdef"}
        status, headers, _ = send_raw(port, "GET", "/x-nmos/node/v1.3/self")
        assert status == 401 and headers["www-authenticate"] == 'Bearer realm="node-1.studio.example.com"'
    finally:
        stop_child(proc, 10)
        proc.stdout.close()
        proc.stderr.close()
