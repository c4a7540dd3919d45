"""Peers for the `attach` tests: `as serve` (client_support.ServeProc), token-checking Registries
(the demo's StandinRegistry on our HTTPServer over TLS, in a thread, keys from the AS through our
KeyStore), TLS-only Registries for the IPMX profile (TlsRegistryPeer: HTTPS, or mutual TLS with
client certificates required), the `attach` process itself, and a plain-HTTP Node client.
Stopped by PID or handle."""

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
from nmosauth_lite.aio.tlsutil import make_test_pki, peer_cert_names, server_context  # noqa: E402
from nmosauth_lite.demo.registry import StandinRegistry  # noqa: E402
from nmosauth_lite.validator import TokenValidator  # noqa: E402

DOMAIN = "attach.test"
REG = "/x-nmos/registration/v1.3"
NODE_ID = "3b8be755-08ff-452b-b217-c9151eb21193"
DEVICE_ID = "58f6b536-ca4c-43fd-880a-9df2501fc125"
START_TIMEOUT = 30.0
MAX_REGISTRY_BODY = 256 * 1024


def advert(instance, port, pri, auth="true", proto="https", vers="v1.2,v1.3"):
    """dnsmasq lines advertising a Registration API `instance` in DOMAIN on 127.0.0.1:`port`."""
    name = "%s._nmos-register._tcp.%s" % (instance, DOMAIN)
    return ["ptr-record=_nmos-register._tcp.%s,%s" % (DOMAIN, name),
            "srv-host=%s,%s.%s,%d,0,0" % (name, instance, DOMAIN, port),
            'txt-record=%s,"api_proto=%s","api_ver=%s","pri=%d","api_auth=%s"' % (name, proto, vers, pri, auth),
            "host-record=%s.%s,127.0.0.1" % (instance, DOMAIN)]


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


class TlsOnlyRegistry(StandinRegistry):
    """The demo Registry's IS-04 routes with no token check: an IPMX Registry (TR-10-SEC SEC-75).
    The owner of a Node is the CN of the client certificate that registered it (RAP 2, SEC-79),
    or "anyone" without one (RAP 1, SEC-78). `authorization` records what arrived (never a token)."""

    def __init__(self):
        self.realm = "registry"
        self.resources, self.owner, self.heartbeats = {}, {}, {}
        self.seen, self.authorization, self.faults, self.clients = [], [], [], []

    async def _handle(self, request):
        self.authorization.append(request.header("authorization"))
        names = peer_cert_names(request.peer_cert)
        client = names[0] if names else "anyone"
        self.clients.append(client)
        body = await request.read(MAX_REGISTRY_BODY) if request.has_body else b""
        resp = self._route(request.method, request.path.rstrip("/"), body, client)
        self.seen.append((request.method, request.path, resp.status, client))
        return resp


class TlsRegistryPeer:
    """A TlsOnlyRegistry on 127.0.0.1 over TLS: `client_ca` None serves anyone (RAP 1); a CA file
    makes client certificates signed by it required (RAP 2). `.reg`, `.url` as RegistryPeer."""

    def __init__(self, pki, client_ca=None):
        self.reg = TlsOnlyRegistry()
        ctx = server_context(pki.cert, pki.key, ca_file=client_ca, client_cert="required" if client_ca else "none")
        self.thread = ServerThread(self.reg, ssl=ctx)
        self.thread.__enter__()
        self.port = self.thread.port
        self.url = "https://localhost:%d" % self.port

    def stop(self):
        if self.thread is not None:
            self.thread.__exit__(None, None, None)
            self.thread = None


class OpenSSLRegistryPeer:
    """A Registration API stand-in on the stdlib's blocking http.server and ssl module, mutual TLS
    required: OpenSSL here sends its alert (unknown_ca, certificate_required) when it refuses a
    client certificate, and then reads what the client sent before closing (a lingering close, as nginx does) so that no TCP reset overtakes the alert.
    Answers 201 to POST resource and 200 to the rest; `.seen` is [(method, path, authorization, cn)]."""

    def __init__(self, pki, client_ca):
        import http.server
        import socket
        import ssl
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                cert = self.connection.getpeercert()
                names = peer_cert_names(cert)
                seen.append((self.command, self.path, self.headers.get("authorization"), names[0] if names else None))
                body = b"{}"
                self.send_response(201 if self.path.endswith("/resource") else 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                request.settimeout(10)
                try:
                    request.do_handshake()  # in the connection's thread, not in accept()
                except OSError:  # ssl.SSLError included: the alert is sent; read the rest, then close
                    try:
                        socket.socket.shutdown(request, socket.SHUT_WR)
                        socket.socket.settimeout(request, 2)
                        while socket.socket.recv(request, 65536):
                            pass
                    except OSError:
                        pass
                    return
                super().finish_request(request, client_address)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.cert, pki.key)
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.server.server_address[1]
        self.url = "https://localhost:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(10)
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


def ipmx_args(ca, *extra):
    """An attach command line for the IPMX profile: no authorization server, no state (SEC-04)."""
    return ["--profile", "ipmx", "--ca", ca, "--listen", "127.0.0.1:0", "--timeout", "20"] + list(extra)
