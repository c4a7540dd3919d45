"""`nmosauth-lite probe` as a user runs it (issue 14 item 1): the issuer set up from a fresh state
directory (local CA, RS512 key 0600, JWKS file, RFC 8414 metadata over verified TLS), a real
`protect` subprocess trusting it in front of the demo Node API, the exit codes and both outputs."""

import asyncio
import json
import os
import select
import signal
import stat
import subprocess
import sys
import time

import pytest

from tls_helpers import ServerThread, pki, server_ssl  # noqa: F401
from nmosauth_lite.aio.client import HTTPClient
from nmosauth_lite.demo import node_api

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = "node.test"


class Child:
    """`python -m nmosauth_lite ...` whose first stdout line is JSON; killed by PID at the end."""

    def __init__(self, args, tmp, name):
        self.err_path = os.path.join(str(tmp), name + ".stderr")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite"] + args, cwd=REPO,
                                         stdout=subprocess.PIPE, stderr=err)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], 30)
            line = self.proc.stdout.readline() if ready else b""
            if not line:
                raise AssertionError("%s did not start: %s" % (name, open(self.err_path).read()[-2000:]))
            self.info = json.loads(line)
        except BaseException:
            self.kill()
            raise

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        self.proc.stdout.close()
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()


def wait_for_text(path, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            if text in f.read():
                return
        time.sleep(0.05)
    raise AssertionError("%r never appeared in %s" % (text, path))


def probe(args, timeout=120):
    return subprocess.run([sys.executable, "-m", "nmosauth_lite", "probe"] + args, cwd=REPO,
                          capture_output=True, timeout=timeout)


def fetch(url, ca):
    async def go():
        async with HTTPClient(ca_file=ca) as c:
            return await c.get_json(url)
    return asyncio.run(asyncio.wait_for(go(), 20))


@pytest.fixture()
def demo_node():
    holder = {}
    with ServerThread(lambda r: holder["router"](r)) as srv:
        holder["router"] = node_api.router(NODE, srv.port)
        yield srv


def test_issuer_from_a_fresh_state_dir_then_a_full_run_against_protect(tmp_path, pki, demo_node):
    state = str(tmp_path / "fresh")
    issuer = Child(["probe", "--issuer-only", "--json", "--state-dir", state, "--listen", "127.0.0.1:0"],
                   tmp_path, "issuer")
    try:
        url, ca, jwks_file = issuer.info["issuer"], issuer.info["ca_file"], issuer.info["jwks_file"]
        port = int(url.rsplit(":", 1)[1])
        assert url == "https://127.0.0.1:%d" % port
        d = os.path.join(state, "probe")
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(os.path.join(d, "issuer-key.pem")).st_mode) == 0o600  # secret at rest
        # RFC 8414 metadata and the JWKS over TLS verified against the printed CA (IS-10 RS-42)
        meta = fetch(url + "/.well-known/oauth-authorization-server", ca)
        assert meta["issuer"] == url and meta["jwks_uri"] == url + "/jwks"
        served = fetch(meta["jwks_uri"], ca)
        with open(jwks_file) as f:
            assert json.load(f) == served
        assert [(k["kty"], k["alg"], k["use"]) for k in served["keys"]] == [("RSA", "RS512", "sig")]
        node = Child(["protect", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:%d" % demo_node.port,
                      "--audience", NODE, "--issuer", url, "--ca", ca, "--cert", pki.cert, "--key", pki.key,
                      "--state-dir", str(tmp_path / "node"), "--audit", "off"], tmp_path, "protect")
        wait_for_text(node.err_path, "new key")  # protect fetched key a before the issuer goes
    finally:
        assert issuer.terminate() == 0
    try:
        node_port = int(node.info["listen"].rsplit(":", 1)[1])
        r = probe(["https://%s:%d" % (NODE, node_port), "--connect", "127.0.0.1", "--ca", pki.ca_cert,
                   "--api", "node/v1.3", "--state-dir", state, "--listen", "127.0.0.1:%d" % port, "--json"])
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
        doc = json.loads(r.stdout)
        assert (doc["passed"], doc["failed"], doc["warnings"]) == (17, 0, 0), r.stdout.decode()
        assert doc["summary"] == "17 passed, 0 failed, 0 warnings" and doc["unprotected"] == []
        assert all(set(x) == {"check", "api", "spec", "expected", "got", "result"} for x in doc["results"])
        assert "issuer URL" in r.stderr.decode()  # the trust text goes to stderr with --json
        # Again in text mode: the key kept in the state dir is still trusted; the new unseen key meets
        # the Node's on-demand fetch rate limit (IS-10 RS-10): a warning, and exit 0 still.
        r = probe(["https://%s:%d" % (NODE, node_port), "--connect", "127.0.0.1", "--ca", pki.ca_cert,
                   "--api", "node/v1.3", "--state-dir", state, "--listen", "127.0.0.1:%d" % port])
        out = r.stdout.decode()
        assert r.returncode == 0, out + r.stderr.decode()
        assert out.rstrip().endswith("16 passed, 0 failed, 1 warnings"), out
        assert "unseen-key" in out and "WARN" in out and "check" in out.splitlines()[-22]
        # issue 22 item 5: what the Node said, and the likely cause, under the table
        assert '("signature not verified by any trusted key")' in out
        assert "likely cause (unseen-key): the Node did not fetch" in out and "RS-10" in out
    finally:
        node.kill()


def test_a_node_without_authorization_fails_and_exits_1(tmp_path, pki):
    holder = {}
    with ServerThread(lambda r: holder["router"](r), ssl=server_ssl(pki)) as srv:
        holder["router"] = node_api.router(NODE, srv.port)
        r = probe(["https://%s:%d" % (NODE, srv.port), "--connect", "127.0.0.1", "--ca", pki.ca_cert,
                   "--api", "node/v1.3", "--state-dir", str(tmp_path / "s"), "--json"])
    assert r.returncode == 1, r.stderr.decode()
    doc = json.loads(r.stdout)
    failed = set(x["check"] for x in doc["results"] if x["result"] == "fail")
    assert {"no-token", "expired", "alg-none", "wrong-audience", "read-only-write"} <= failed
    # said loudly, as for `protect --enforce off` (issue 19 §4): the outside view is the same
    assert doc["unprotected"] == ["node"] and "THE NODE IS NOT PROTECTED: node" in r.stderr.decode()


@pytest.mark.parametrize("args", [[], ["https://n.test"], ["http://n.test", "--api", "node/v1.3"],
                                  ["https://n.test", "--api", "node"], ["--issuer-only", "--listen", "nowhere"]])
def test_usage_errors_exit_2_with_one_line(tmp_path, args):
    r = probe(args + ["--state-dir", str(tmp_path)], timeout=60)
    assert r.returncode == 2, r.stderr.decode()
    assert b"Traceback" not in r.stderr and r.stderr.strip().count(b"\n") == 0
