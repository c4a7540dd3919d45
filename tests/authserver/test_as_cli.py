"""`nmosauth-lite as ...` as real processes: serve prints one JSON line, works with zero configuration,
is administered by the other subcommands while it runs, and exits cleanly on SIGTERM and SIGINT."""

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    return env


def _cli(state, *args, stdin=None, check=True):
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as"] + list(args) + ["--state-dir", state],
                       input=stdin, capture_output=True, text=True, env=_env(), timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


class Serve:
    """`as serve` in a subprocess; stopped by PID."""

    def __init__(self, state, *extra):
        self.state = state
        self.log_path = os.path.join(os.path.dirname(state), "serve-%d.log" % time.monotonic_ns())
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "as", "serve", "--state-dir", state]
                                     + list(extra), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                     env=_env(), text=True)
        log.close()

    def ready(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        assert line, "no ready line; log:\n" + self.log()
        return json.loads(line)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)  # our child, by its PID
        return self.proc.wait(STOP_TIMEOUT)

    def cleanup(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc.stdout.close()


@pytest.fixture()
def serve(tmp_path):
    started = []

    def start(*extra, state=None):
        s = Serve(state or str(tmp_path / "state"), "--listen", "127.0.0.1:0", *extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.cleanup()


def _session(ca_file):
    h = requests.Session()
    h.trust_env = False
    h.verify = ca_file
    return h


def test_serve_from_nothing_then_administer_and_stop(serve, tmp_path):
    s = serve()
    info = s.ready()
    assert set(info) == {"issuer", "ca_file", "listen"}
    host, port = info["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and info["issuer"] == "https://localhost:%s/x-nmos/auth/v1.0" % port
    state = s.state
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(state, "authserver.db")).st_mode) == 0o600
    key_files = [os.path.join(os.path.dirname(info["ca_file"]), n) for n in ("server.key", "ca.key")]
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in key_files)
    h = _session(info["ca_file"])
    md = h.get("https://localhost:%s/.well-known/oauth-authorization-server/x-nmos/auth/v1.0" % port,
               timeout=10).json()
    assert md["issuer"] == info["issuer"]

    client = json.loads(_cli(state, "client", "add", "--name", "N", "--grant", "client_credentials", "--scope",
                             "registration", "--auth", "client_secret_basic").stdout)
    assert client["client_secret"] and len(client["client_id"]) >= 20
    r = h.post(md["token_endpoint"], data={"grant_type": "client_credentials"},
               auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert r.status_code == 200, r.text
    listed = json.loads(_cli(state, "client", "list").stdout)
    assert [c["client_id"] for c in listed] == [client["client_id"]] and "client_secret" not in listed[0]

    (kid,) = [k["kid"] for k in h.get(md["jwks_uri"], timeout=10).json()["keys"]]
    new = json.loads(_cli(state, "keys", "rotate").stdout)["kid"]
    assert {k["kid"] for k in h.get(md["jwks_uri"], timeout=10).json()["keys"]} == {kid, new}
    _cli(state, "keys", "withdraw", new)
    assert [k["kid"] for k in h.get(md["jwks_uri"], timeout=10).json()["keys"]] == [kid]

    added = json.loads(_cli(state, "user", "add", "alice", "--password-stdin", stdin="a long password\n").stdout)
    assert added["user"] == "alice" and "long" not in json.dumps(added)  # says what it did, never the password
    assert json.loads(_cli(state, "user", "list").stdout)[0]["username"] == "alice"
    removed = json.loads(_cli(state, "client", "remove", client["client_id"]).stdout)  # issue 22: says what it did
    assert removed["removed"] == client["client_id"] and removed["refresh_tokens"] == "revoked"
    assert removed["was"] == "active" and removed["client_name"]
    r = h.post(md["token_endpoint"], data={"grant_type": "client_credentials"},
               auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert r.status_code == 401
    h.close()

    assert s.signal(signal.SIGTERM) == 0
    out = s.proc.stdout.read()
    assert out == ""  # exactly one line on stdout, ever
    assert "shutting down" in s.log()
    assert "Traceback" not in s.log()


def test_pending_registration_is_approved_with_the_cli(serve):
    s = serve()
    info = s.ready()
    h = _session(info["ca_file"])
    body = h.post(info["issuer"] + "/register", json={"client_name": "Acme 1", "scope": "registration",
                                                     "grant_types": ["client_credentials"]}, timeout=10).json()
    token = {"grant_type": "client_credentials"}
    auth = (body["client_id"], body["client_secret"])
    assert h.post(info["issuer"] + "/token", data=token, auth=auth, timeout=10).json()["error"] == "unauthorized_client"
    listed = json.loads(_cli(s.state, "client", "list").stdout)
    assert listed[0]["status"] == "pending"
    approved = json.loads(_cli(s.state, "client", "approve", body["client_id"]).stdout)  # issue 22: says so
    assert approved["approved"] == body["client_id"] and approved["status"] == "active"
    assert approved["client_name"] == "Acme 1" and approved["approved_by"] == "operator"
    assert h.post(info["issuer"] + "/token", data=token, auth=auth, timeout=10).status_code == 200
    assert _cli(s.state, "client", "approve", body["client_id"], check=False).returncode == 1
    iat = json.loads(_cli(s.state, "client", "iat", "--scope", "registration", "--ttl", "600").stdout)
    r = h.post(info["issuer"] + "/register", json={"client_name": "Acme 2", "scope": "registration",
                                                   "grant_types": ["client_credentials"]},
               headers={"Authorization": "Bearer " + iat["initial_access_token"]}, timeout=10)
    assert r.status_code == 201
    assert h.post(info["issuer"] + "/token", data=token, auth=(r.json()["client_id"], r.json()["client_secret"]),
                  timeout=10).status_code == 200
    h.close()
    assert s.signal(signal.SIGINT) == 0


def test_restart_keeps_the_ca_and_clients(serve, tmp_path):
    s = serve()
    first = s.ready()
    client = json.loads(_cli(s.state, "client", "add", "--name", "N", "--grant", "client_credentials",
                             "--scope", "registration").stdout)
    assert s.signal(signal.SIGTERM) == 0
    with open(first["ca_file"]) as f:
        ca = f.read()
    s2 = serve(state=s.state)
    second = s2.ready()
    with open(second["ca_file"]) as f:
        assert f.read() == ca  # clients keep trusting the same local CA
    h = _session(second["ca_file"])
    r = h.post(second["issuer"] + "/token", data={"grant_type": "client_credentials"},
               auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert r.status_code == 200
    h.close()
    assert s2.signal(signal.SIGTERM) == 0


def test_port_in_use_is_a_one_line_configuration_error(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        port = sock.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "serve", "--listen", "127.0.0.1:%d" % port,
                            "--state-dir", str(tmp_path / "s"), "--log-level", "ERROR"], capture_output=True,
                           text=True, env=_env(), timeout=60)
    finally:
        sock.close()
    assert r.returncode == 2 and r.stdout == ""
    assert "cannot listen" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_config_is_exit_2(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[authserver.tokens]\nlifetime = 7200\n")
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "serve", "--config", str(cfg),
                        "--state-dir", str(tmp_path / "s")], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 2 and "TOK-07" in r.stderr


def test_client_add_refuses_bad_scope_for_client_credentials(tmp_path):
    r = _cli(str(tmp_path / "s"), "client", "add", "--name", "N", "--grant", "client_credentials", "--scope",
             "connection", check=False)
    assert r.returncode == 2 and "client_credentials" in r.stderr


def test_zone_records(tmp_path):
    r = _cli(str(tmp_path / "s"), "zone", "--domain", "studio.example.com", "--host", "auth", "--port", "8443",
             "--address", "192.0.2.10", "--pri", "10")
    assert "auth._nmos-auth._tcp" not in r.stdout
    assert 'nmosauth-lite._nmos-auth._tcp 3600 IN TXT "api_proto=https" "api_ver=v1.0" ' \
           '"api_selector=x-nmos/auth/v1.0" "pri=10"' in r.stdout
    assert "srv-host=nmosauth-lite._nmos-auth._tcp.studio.example.com,auth.studio.example.com,8443,10,0" in r.stdout


def test_serve_two_certificates_hsts_bare_metadata_and_access_log(serve, tmp_path):
    """Issue 19 §2-3: `as serve --cert/--key` twice (RSA and ECDSA, picked per client), HSTS on every
    answer (BCP-003-01; --hsts-max-age), the RFC 8414 metadata also at the bare well-known path (the
    reference C++ Node asks there after a key rotation), and one INFO line per answer without secrets."""
    import http.client

    from tls_helpers import make_rsa_leaf, one_kind_client, peer_key_kind
    from nmosauth_lite.aio.tlsutil import make_test_pki

    pki = make_test_pki(str(tmp_path / "pki"), dns_names=["localhost"])
    rsa_cert, rsa_key = make_rsa_leaf(pki, "as-rsa", dns_names=("localhost",))
    s = serve("--cert", pki.cert, "--key", pki.key, "--cert", rsa_cert, "--key", rsa_key)
    info = s.ready()
    port = int(info["listen"].rsplit(":", 1)[1])

    def get(path, kind):
        conn = http.client.HTTPSConnection("localhost", port, context=one_kind_client(pki, kind), timeout=10)
        try:
            conn.connect()
            got = peer_key_kind(conn.sock)
            conn.request("GET", path)
            r = conn.getresponse()
            return got, r.status, r.headers, r.read()
        finally:
            conn.close()
    for kind in ("RSA", "EC"):
        got, status, h, body = get("/.well-known/oauth-authorization-server", kind)
        assert (got, status) == (kind, 200)
        assert json.loads(body)["issuer"] == info["issuer"]  # the bare path: the same document
        assert h["Strict-Transport-Security"] == "max-age=31536000"
    got, status, h, _ = get("/.well-known/oauth-authorization-server/x-nmos/auth/v1.0", "EC")
    assert status == 200 and h["Strict-Transport-Security"] == "max-age=31536000"
    _, status, h, _ = get("/nowhere?code=secret-code-value", "EC")
    assert status == 404 and h["Strict-Transport-Security"] == "max-age=31536000"
    deadline = time.monotonic() + 10
    while "GET /nowhere 404 127.0.0.1" not in s.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = s.log()
    assert "GET /.well-known/oauth-authorization-server 200 127.0.0.1" in log
    assert "GET /nowhere 404 127.0.0.1" in log and "secret-code-value" not in log  # never the query
    assert s.signal(signal.SIGTERM) == 0

    s = serve("--hsts-max-age", "0", state=str(tmp_path / "state2"))
    info = s.ready()
    r = _session(info["ca_file"]).get(info["issuer"].replace("/x-nmos/auth/v1.0", "") +
                                      "/.well-known/oauth-authorization-server", timeout=10)
    assert r.status_code == 200 and "Strict-Transport-Security" not in r.headers
