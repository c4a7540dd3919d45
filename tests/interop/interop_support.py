"""Third-party authorization servers for the interop tests, installed from a registry and run on
loopback: panva's oidc-provider (OpenID Certified, npm; pinned in tools/interop/package-lock.json,
installed by tools/interop/install.sh) under node. Each server is started by PID and stopped by PID;
the only reason to skip is a missing `node` (CI has it: tools/sysdeps.sh)."""

import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import threading
import urllib.parse
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
TOOLS = os.path.join(ROOT, "tools", "interop")
for p in (TESTS, os.path.join(TESTS, "client"), os.path.join(TESTS, "authserver")):
    if p not in sys.path:
        sys.path.insert(0, p)

from procs import stop_child  # noqa: E402

INSTALL_TIMEOUT = 300
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
SCOPES = ["registration", "query", "node", "connection", "events", "channelmapping"]
AUDIENCE = "https://*.example.com"  # IS-10 TOK: a wildcard name, here in its URI form
RESOURCE = "https://nmos.example.com"  # RFC 8707 resource indicator the provider's defaultResource names


def node_missing():
    return shutil.which("node") is None


def install():
    """npm ci of the pinned packages when missing (tools/interop/install.sh); raises on failure."""
    r = subprocess.run(["sh", os.path.join(TOOLS, "install.sh")], capture_output=True, text=True,
                       timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("tools/interop/install.sh failed (%d): %s" % (r.returncode, r.stderr[-2000:]))


def provider_version():
    with open(os.path.join(TOOLS, "node_modules", "oidc-provider", "package.json")) as f:
        return json.load(f)["version"]


def _b64(n, size=None):
    import base64

    raw = n.to_bytes(size or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def signing_keys():
    """Private JWKs for the provider: RSA 2048 (RS512, RS256), P-256 (ES256) and P-521 (ES512)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    r = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    e = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    e5 = ec.generate_private_key(ec.SECP521R1()).private_numbers()
    return [{"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": _b64(r.public_numbers.n), "e": _b64(r.public_numbers.e),
             "d": _b64(r.d), "p": _b64(r.p), "q": _b64(r.q), "dp": _b64(r.dmp1), "dq": _b64(r.dmq1),
             "qi": _b64(r.iqmp)},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256", "x": _b64(e.public_numbers.x, 32),
             "y": _b64(e.public_numbers.y, 32), "d": _b64(e.private_value, 32)},
            {"kty": "EC", "kid": "ec-521", "use": "sig", "crv": "P-521", "x": _b64(e5.public_numbers.x, 66),
             "y": _b64(e5.public_numbers.y, 66), "d": _b64(e5.private_value, 66)}]


class OidcProvider:
    """`node tools/interop/oidc_provider.mjs` with a config file; issuer https://localhost:<port>."""

    def __init__(self, workdir, pki, *, alg="RS512", iat="interop-iat", response_types=("code",), token_ttl=60,
                 oidc_only=False, claims_location="top"):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.pki = pki
        self.initial_access_token = iat
        self.alg = alg
        self.config = os.path.join(self.workdir, "oidc-provider.json")
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds private keys
        with os.fdopen(fd, "w") as f:
            json.dump({"cert": pki.cert, "key": pki.key, "keys": signing_keys(),
                       "cookie_key": secrets.token_urlsafe(32), "host": "localhost", "alg": alg,
                       "initial_access_token": iat, "audience": AUDIENCE, "resource": RESOURCE,
                       "scopes": SCOPES, "response_types": list(response_types), "token_ttl": token_ttl,
                       "oidc_only": oidc_only, "claims_location": claims_location}, f)
        self.proc = None

    def start(self):
        self.log_path = os.path.join(self.workdir, "oidc-provider.log")
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=self.pki.ca_cert)  # to fetch private_key_jwt JWK Sets
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["node", os.path.join(TOOLS, "oidc_provider.mjs"), self.config],
                                         stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=TOOLS, env=env, text=True)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
            line = self.proc.stdout.readline() if ready else ""
            if not line:
                raise AssertionError("oidc-provider did not start (exit %s):\n%s" % (self.proc.poll(), self.log()))
            self.info = json.loads(line)
        except BaseException:
            self.stop()
            raise
        self.issuer = self.info["issuer"]
        return self

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        stop_child(self.proc, STOP_TIMEOUT)
        self.proc.stdout.close()
        self.proc = None


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "inputs": {}})
        elif tag == "input" and a.get("name") and self.forms:
            self.forms[-1]["inputs"][a["name"]] = a.get("value", "")


def dev_login(url, user, ca_file, timeout=15):
    """Play the user at oidc-provider's devInteractions: open the authorization URL, log in as
    `user`, confirm the consent page, follow the redirects to the loopback listener. Blocking
    (run it in a thread). Returns the final redirect URL."""
    import requests

    with requests.Session() as s:
        s.trust_env = False
        s.verify = ca_file
        page = s.get(url, timeout=timeout)
        for _ in range(4):  # login, then consent
            if urllib.parse.urlsplit(page.url).hostname == "127.0.0.1":
                return page.url  # the loopback redirect listener answered
            forms = _Forms()
            forms.feed(page.text)
            assert forms.forms, (page.status_code, page.text[:300])
            form = forms.forms[0]
            fields = dict(form["inputs"])
            if fields.get("prompt") == "login":
                fields.update(login=user, password="any")
            page = s.post(urllib.parse.urljoin(page.url, form["action"]), data=fields, timeout=timeout)
        raise AssertionError("no redirect after login and consent: %s" % page.url)


class Upstream:
    """A plain-HTTP NMOS-like API behind `protect`: answers 200 JSON to any GET."""

    def __init__(self):
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                body = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class Protect:
    """`python -m nmosauth_lite protect` trusting one issuer, by PID."""

    def __init__(self, workdir, pki, issuer, upstream, audience="node1.example.com", extra=()):
        self.err_path = os.path.join(str(workdir), "protect.stderr")
        args = ["--listen", "127.0.0.1:0", "--upstream", upstream, "--audience", audience, "--issuer", issuer,
                "--ca", pki.ca_cert, "--cert", pki.cert, "--key", pki.key, "--state-dir",
                os.path.join(str(workdir), "protect-state"), "--audit", "off"] + list(extra)
        env = dict(os.environ, PYTHONPATH=ROOT)
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "protect"] + args, cwd=ROOT,
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
            line = self.proc.stdout.readline() if ready else b""
            if not line:
                raise AssertionError("protect did not start: " + self.stderr()[-2000:])
            self.port = int(json.loads(line)["listen"].rsplit(":", 1)[1])
        except BaseException:
            self.stop()
            raise

    def stderr(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        stop_child(self.proc, STOP_TIMEOUT)
        self.proc.stdout.close()
