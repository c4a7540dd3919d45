"""`nmosauth-lite demo --node-api HOST:PORT` (issue 22): the demo's sample IS-04 Node API on its own, plain
HTTP, for a reader who has no Node at hand to put `protect` in front of. A real process on loopback,
stopped by its PID."""

import json
import os
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_sample_node_api_serves_alone_until_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "demo", "--node-api", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, proc.stderr.read()
        info = json.loads(proc.stdout.readline())
        assert info["node_api"] == "http://%s/x-nmos/node/v1.3" % info["listen"]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(info["node_api"] + "/self", timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["label"] == "nmosauth-lite demo node"
        req = urllib.request.Request(info["node_api"] + "/devices", method="DELETE")
        with opener.open(req, timeout=10) as r:  # it knows nothing of authorization: protect's job
            assert r.status == 200
        try:
            opener.open("http://%s/x-nmos/nothing" % info["listen"], timeout=10)
            raise AssertionError("404 expected")
        except urllib.error.HTTPError as e:
            assert e.code == 404 and json.loads(e.read())["code"] == 404
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert "Traceback" not in err


def test_a_bad_listen_address_is_one_line_and_exit_2():
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "demo", "--node-api", "nowhere"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert r.returncode == 2 and "HOST:PORT" in r.stderr and "Traceback" not in r.stderr
