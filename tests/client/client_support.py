"""Peers for the OAuth client tests: `as serve` processes, a dnsmasq advert, a resource server,
a consent-page driver, and small helpers. Every process is started here and stopped by PID."""

import asyncio
import html.parser
import json
import os
import select
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
for p in (TESTS, os.path.join(TESTS, "authserver")):
    if p not in sys.path:
        sys.path.insert(0, p)

from as_support import ASThread, make_pki, server_table  # noqa: E402,F401
from dns_helpers import Dnsmasq  # noqa: E402
from procs import stop_child  # noqa: E402

from nmosauth_lite.aio.client import HTTPClient  # noqa: E402
from nmosauth_lite.aio.keystore import KeyStore  # noqa: E402
from nmosauth_lite.aio.server import HTTPServer  # noqa: E402
from nmosauth_lite.aio.web import Response, json_response  # noqa: E402
from nmosauth_lite.authserver.zone import ZoneRecords  # noqa: E402
from nmosauth_lite.guard import Guard  # noqa: E402
from nmosauth_lite.validator import TokenValidator  # noqa: E402

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DOMAIN = "nmos-client.test"
PASSWORD = "correct horse battery"


def env():
    e = dict(os.environ, PYTHONPATH=ROOT)
    for k in ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        e.pop(k, None)
    return e


def cli(*args, input=None, timeout=90, check=True):
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite"] + [str(a) for a in args], input=input,
                       capture_output=True, text=True, env=env(), timeout=timeout)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stderr[-2000:])
    return r


def issue_iat(srv, scope=""):
    """An initial access token from an in-process ASThread (what `as client iat` does)."""
    from nmosauth_lite.authserver.registration import issue_initial_access_token
    from nmosauth_lite.authserver.service import open_keyring

    s = srv.store()
    try:
        token, _ = issue_initial_access_token(s, open_keyring(srv.config, s), issuer=srv.issuer,
                                              registration_endpoint=srv.issuer + "/register", scope=scope,
                                              ttl=3600, now=time.time())
    finally:
        s.close()
    return token


def client_rows(state_dir):
    """Clients in an AS store (any state: active, pending)."""
    from nmosauth_lite.authserver.store import Store

    s = Store(os.path.join(state_dir, "authserver.db"))
    try:
        return s.list_clients()
    finally:
        s.close()


class ServeProc:
    """`nmosauth-lite as serve` with a config file (host name, token lifetime, trust CA), by PID."""

    def __init__(self, workdir, host, *, lifetime=30, trust_ca=None, port=0, extra=""):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.state = os.path.join(self.workdir, "state")
        self.config = os.path.join(self.workdir, "config.toml")
        self.host = host
        lines = ['host = "%s"' % host, "[tokens]", "lifetime = %d" % lifetime]
        if trust_ca:
            lines += ["[tls]", 'trust_ca_file = "%s"' % trust_ca]
        # the clients' own JWKS (private_key_jwt) is served on loopback: a lab setting (issue 11 §3)
        lines += ["[client_jwks]", "allow_private_addresses = true"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self.port = port
        self.proc = None
        self.info = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = os.path.join(self.workdir, "serve-%d.log" % self.starts)
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "as", "serve", "--state-dir", self.state,
                                      "--config", self.config, "--listen", "127.0.0.1:%d" % self.port],
                                     stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env(),
                                     text=True)
        log.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        assert line, "as serve did not start:\n" + self.log()
        self.info = json.loads(line)
        self.port = int(self.info["listen"].rsplit(":", 1)[1])
        return self

    @property
    def issuer(self):
        return self.info["issuer"]

    @property
    def ca_file(self):
        return self.info["ca_file"]

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def admin(self, *args):
        return cli("as", *args, "--state-dir", self.state, "--config", self.config)

    def add_user(self, name, password=PASSWORD):
        cli("as", "user", "add", name, "--password-stdin", "--state-dir", self.state, "--config", self.config,
            input=password + "\n")

    def iat(self):
        return json.loads(self.admin("client", "iat").stdout)["initial_access_token"]

    def clients(self):
        return client_rows(self.state)

    def stop(self):
        if self.proc is None:
            return
        stop_child(self.proc, STOP_TIMEOUT)
        self.proc.stdout.close()
        self.proc = None


def advertise(workdir, servers, domain=DOMAIN):
    """A real dnsmasq advertising `_nmos-auth._tcp` for [(instance, short host, port, pri)] on loopback."""
    lines = []
    for instance, host, port, pri in servers:
        z = ZoneRecords(domain=domain, host=host, port=port, addresses=["127.0.0.1"], pri=pri, instance=instance,
                        ttl=5)
        lines += [l for l in z.dnsmasq().splitlines() if l and not l.startswith("#")]
    lines = list(dict.fromkeys(lines))  # the enumeration PTR repeats per server
    os.makedirs(str(workdir), exist_ok=True)
    return Dnsmasq(workdir, lines, local_domains=[domain], local_ttl=5).start()


class ResourceServer:
    """A protected NMOS-like API: Guard + TokenValidator + KeyStore on our HTTPServer (TLS).

    `reject_next` answers the next request 401 invalid_token whatever its token (a token
    revoked early, IS-10 CL-41). `seen` records (status, client_id) per request.
    """

    def __init__(self, pki, store, audience):
        self.validator = TokenValidator(keys=store, audience=audience)
        self.guard = Guard(self.validator)
        self.keys = store
        self.seen = []
        self.reject_next = 0
        self.server = None
        self.pki = pki

    def _handle(self, request):
        headers = {}
        auth = request.header("authorization")
        if auth is not None:
            headers["authorization"] = auth
        if self.reject_next:
            self.reject_next -= 1
            self.seen.append((401, None))
            return Response(401, b'{"code":401,"error":"revoked","debug":null}', [
                ("www-authenticate", 'Bearer realm="rs",error=invalid_token,error_description="revoked"')],
                content_type="application/json")
        v = self.guard.check(request.method, request.target, headers)
        if v.answer is not None:
            self.seen.append((v.answer.status, None))
            return Response(v.answer.status, v.answer.body,
                            [h for h in v.answer.headers if h[0].lower() != "content-length"])
        claims = v.decision.claims
        self.seen.append((200, claims.get("client_id")))
        return json_response({"ok": True, "client_id": claims.get("client_id")})

    async def start(self):
        from nmosauth_lite.aio.tlsutil import server_context

        self.server = HTTPServer(self._handle, ssl=server_context(self.pki.cert, self.pki.key))
        await self.server.start("127.0.0.1", 0)
        self.url = "https://localhost:%d/x-nmos/registration/v1.3/resource" % self.server.port
        return self

    async def close(self):
        await self.server.shutdown(1.0)
        await self.keys.close()


async def resource_server_for(pki, state_dir, ca_file, audience, issuers=(), adverts=()):
    store = KeyStore(list(issuers), state_dir=state_dir, ca_file=ca_file)
    for adv in adverts:
        await store.add_discovered(adv)
    await store.refresh()
    return await ResourceServer(pki, store, audience).start()


class _Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.action = None
        self.inputs = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.inputs[a["name"]] = a.get("value", "")


async def consent(url, user, password=PASSWORD, *, ca_file, resolve=None, approve=True):
    """Play the user: open the authorization URL, log in and consent, follow the 302 to the
    loopback listener. Returns (status of the listener's answer, redirect URL)."""
    async with HTTPClient(ca_file=ca_file, resolve=resolve or {}) as h:
        page = await h.get(url)
        assert page.status == 200, (page.status, page.text()[:300])
        form = _Form()
        form.feed(page.text())
        fields = dict(form.inputs, username=user, password=password, action="approve" if approve else "deny")
        resp = await h.post_form(urllib.parse.urljoin(url, form.action), fields)
        assert resp.status == 302, (resp.status, resp.text()[:300])  # IS-10 AS-10, CL-26
        location = resp.header("location")
    async with HTTPClient(insecure_http=True) as plain:  # RFC 8252 §7.3: loopback http redirect
        back = await plain.get(location)
    return back.status, location


def run(coro, timeout=120):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def file_texts(directory):
    """{path: bytes} of every file under `directory`."""
    out = {}
    for base, _, names in os.walk(directory):
        for n in names:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                out[p] = f.read()
    return out
