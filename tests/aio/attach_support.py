"""Peers for the `attach` tests: `as serve` (client_support.ServeProc), token-checking Registries
(the demo's StandinRegistry on our HTTPServer over TLS, in a thread, keys from the AS through our
KeyStore), the `attach` process itself, and a plain-HTTP Node client. Stopped by PID or handle."""

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for p in (TESTS, os.path.join(TESTS, "client"), os.path.join(TESTS, "authserver")):
    if p not in sys.path:
        sys.path.insert(0, p)

from client_support import ServeProc, env  # noqa: E402,F401
from procs import stop_child  # noqa: E402
from tls_helpers import ServerThread  # noqa: E402

from nmosauth_lite.aio.keystore import KeyStore  # noqa: E402
from nmosauth_lite.aio.tlsutil import make_test_pki, server_context  # noqa: E402
from nmosauth_lite.demo.registry import StandinRegistry  # noqa: E402
from nmosauth_lite.validator import TokenValidator  # noqa: E402

DOMAIN = "attach.test"
REG = "/x-nmos/registration/v1.3"
NODE_ID = "3b8be755-08ff-452b-b217-c9151eb21193"
DEVICE_ID = "58f6b536-ca4c-43fd-880a-9df2501fc125"
START_TIMEOUT = 30.0


def registry_pki(directory):
    """One certificate for localhost and every registry name the tests advertise."""
    return make_test_pki(str(directory), dns_names=("localhost", "reg1." + DOMAIN, "reg2." + DOMAIN,
                                                     "reg3." + DOMAIN), ip_addresses=("127.0.0.1",))


def bundle(path, *files):
    with open(path, "wb") as out:
        for f in files:
            with open(f, "rb") as src:
                out.write(src.read())
    return str(path)


class RegistryPeer:
    """A token-checking IS-04 Registration API on 127.0.0.1 over TLS; `.reg` is the StandinRegistry
    (its `seen`, `authorization`, `faults`, `heartbeats`), `.url` its https://localhost:port."""

    def __init__(self, tmp, pki, issuer, as_ca, realm="localhost"):
        self._holder = {}
        self.thread = ServerThread(lambda req: self._holder["reg"](req), ssl=server_context(pki.cert, pki.key))
        self.thread.__enter__()
        self.port = self.thread.port
        self.url = "https://localhost:%d" % self.port

        async def build():
            store = KeyStore([issuer], state_dir=str(tmp), ca_file=as_ca)
            await store.refresh()
            self._store = store
            aud = ["localhost", "reg1." + DOMAIN, "reg2." + DOMAIN, "reg3." + DOMAIN]
            return StandinRegistry(TokenValidator(keys=store, audience=aud), realm)

        try:
            self.reg = self._holder["reg"] = self.thread.call(build())
        except BaseException:
            self.thread.__exit__(None, None, None)
            raise

    def stop(self):
        if self.thread is not None:
            try:
                self.thread.call(self._store.close())
            finally:
                self.thread.__exit__(None, None, None)
                self.thread = None


class Attach:
    """`python -m nmosauth_lite attach ...` as a child process; its ready line parsed."""

    def __init__(self, tmp, name, args):
        self.err_path = os.path.join(str(tmp), name + ".stderr")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "attach"] + [str(a) for a in args],
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env())
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
            line = self.proc.stdout.readline() if ready else b""
            if not line:
                raise AssertionError("attach did not start: " + self.stderr()[-3000:])
            self.info = json.loads(line)
            listen = self.info["listen"]
            self.port = None if listen.startswith("unix:") else int(listen.rsplit(":", 1)[1])
        except BaseException:
            self.stop()
            raise

    def stderr(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def terminate(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc.stdout.close()

    def stop(self):
        stop_child(self.proc)
        if not self.proc.stdout.closed:
            self.proc.stdout.close()


def base_args(tmp, srv, ca_bundle, *extra):
    """An attach command line for the AS `srv`: its own state and sealing key under `tmp`."""
    return ["--issuer", srv.issuer, "--ca", ca_bundle, "--state-dir", os.path.join(str(tmp), "state"),
            "--key-file", os.path.join(str(tmp), "keys", "client.key"), "--initial-token", srv.iat(),
            "--name", "ACME Encoder-7 SN-%s" % os.path.basename(str(tmp)), "--listen", "127.0.0.1:0",
            "--timeout", "20"] + list(extra)


def node_call(port, method, path, doc=None, headers=(), body=None):
    """What a Node without IS-10 code sends: plain HTTP to attach on loopback. (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if doc is not None:
            body = json.dumps(doc).encode()
            headers = list(headers) + [("Content-Type", "application/json")]
        conn.request(method, path, body=body, headers=dict(headers))
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def raw_call(port, data, timeout=15):
    """Send raw bytes, read until the server closes; (status or None, whole answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                piece = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not piece:
                break
            chunks.append(piece)
    finally:
        s.close()
    out = b"".join(chunks)
    parts = out.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None), out


def node_doc(node_id=NODE_ID):
    return {"type": "node", "data": {"id": node_id, "version": "1700000000:0", "label": "attach test node",
                                     "description": "", "tags": {}, "href": "http://127.0.0.1:1/", "hostname": "n",
                                     "caps": {}, "services": [], "clocks": [], "interfaces": [],
                                     "api": {"versions": ["v1.3"], "endpoints": []}}}


def device_doc():
    return {"type": "device", "data": {"id": DEVICE_ID, "version": "1700000000:0", "label": "d", "description": "",
                                       "tags": {}, "type": "urn:x-nmos:device:generic", "node_id": NODE_ID,
                                       "senders": [], "receivers": [], "controls": []}}
