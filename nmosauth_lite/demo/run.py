"""The IS-10 story on loopback, step by step: what `nmosauth-lite demo` runs.

A lite authorization server, a sample IS-04 Node API behind `protect` (TLS, keys from
the authorization server persisted in a state directory), and a Node-side client that
registers (RFC 7591, with an initial access token) and keeps a token. The Node, which has
no IS-10 code, registers and heartbeats with a token-checking Registry through `attach`
(issue 19 §1), which refuses any other target. Then: an allowed
read, a forbidden write, a missing token, an expired token, a key rotation picked up
through the 503 + Retry-After dance, and the authorization server gone while the Node,
restarted from its persisted keys, keeps deciding. Host names are resolved to 127.0.0.1
by the clients themselves, so TLS is verified against real names with no DNS set-up.
"""

import asyncio
import os
import shutil
import statistics
import tempfile
import time

from ..aio.attach import AttachProxy, Registries
from ..aio.client import HTTPClient
from ..aio.closing import close
from ..aio.keystore import KeyStore, Server
from ..aio.oauth import CredentialStore, OAuthClient, ServerSelector, TokenManager
from ..aio.oauth.secretbox import default_key_file
from ..aio.proxy import AuthProxy
from ..aio.server import HTTPServer
from ..aio.tlsutil import make_test_pki, server_context
from ..authserver import service
from ..authserver.config import Config
from ..authserver.registration import issue_initial_access_token
from ..guard import Guard
from ..issuer import metadata_url
from ..jws import parse
from ..oauth import client_name
from ..validator import TokenValidator
from . import node_api
from .registry import StandinRegistry

DOMAIN = "demo.nmos.test"
AS_HOST = "auth." + DOMAIN
NODE_HOST = "node-1." + DOMAIN
REGISTRY_HOST = "registry." + DOMAIN
REG_API = "/x-nmos/registration/v1.3"
NODE_API = "/x-nmos/node/v1.3"
TOKEN_LIFETIME = 60  # IS-10's own example uses 60 s tokens


class Demo:
    def __init__(self, out, state_dir=None, timeout=None):
        self.out = out
        # the clients' network waits (connect + TLS handshake, each answer); `demo --timeout`
        self.timeouts = {} if timeout is None else {"connect_timeout": timeout, "request_timeout": timeout}
        self.http_timeouts = {} if timeout is None else {"connect_timeout": timeout, "read_timeout": timeout}
        self.owns_dir = state_dir is None
        self.dir = state_dir or tempfile.mkdtemp(prefix="nmosauth-demo-")
        self.steps = 0
        self.failures = 0
        self.request_ms = []

    # --- printing ---------------------------------------------------------------------
    def say(self, text=""):
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, title):
        self.steps += 1
        self.say("\n[%d] %s" % (self.steps, title))

    def expect(self, what, got, want):
        ok = got == want
        if not ok:
            self.failures += 1
        self.say("    %s %s: %s%s" % ("ok  " if ok else "FAIL", what, got, "" if ok else " (expected %s)" % want))
        return ok

    # --- parts --------------------------------------------------------------------------
    async def start_authorization_server(self, port=0):
        cfg = Config({
            "host": AS_HOST,
            "tokens": {"lifetime": TOKEN_LIFETIME, "audience": ["*." + DOMAIN],
                       "client_credentials_scopes": ["registration", "node"]},
            "keys": {"publish_before_use": 0},  # a lab: new keys sign at once (IS-10 AS-16 says 2 h)
        }, listen="127.0.0.1:%d" % port, state_dir=os.path.join(self.dir, "authserver"))
        self.auth = await service.start(cfg)
        self.as_port = self.auth.port
        self.issuer = self.auth.issuer

    async def start_node(self):
        """The unchanged Node API on plain loopback HTTP, and `protect` in front of it with TLS."""
        self.upstream = HTTPServer(lambda request: self._node_router(request))
        await self.upstream.start("127.0.0.1", 0)
        self.front = HTTPServer(lambda request: self.proxy(request), ssl=server_context(self.pki.cert, self.pki.key))
        await self.front.start("127.0.0.1", 0)
        self.node_port = self.front.port
        self._node_router = node_api.router(NODE_HOST, self.node_port)
        await self.boot_node_keys()

    async def boot_node_keys(self, fetch=True):
        """What a Node does at boot: its persisted keys first, then (if it can) a fetch."""
        self.store = KeyStore([], state_dir=os.path.join(self.dir, "node"), ca_file=self.auth_ca)
        self.store.add_issuer(self.issuer, servers=[Server(metadata_url(self.issuer), resolve={AS_HOST: "127.0.0.1"})])
        if fetch:
            await self.store.refresh()
        self.validator = TokenValidator(keys=self.store, audience=[NODE_HOST])
        guard = Guard(self.validator, audit=None)
        self.proxy = AuthProxy(guard, "http://127.0.0.1:%d" % self.upstream.port)

    async def start_registry(self):
        """The stand-in Registry over TLS: its own key store, our own validator (IS-10 RS-*)."""
        self.reg_store = KeyStore([], state_dir=os.path.join(self.dir, "registry"), ca_file=self.auth_ca)
        self.reg_store.add_issuer(self.issuer, servers=[Server(metadata_url(self.issuer),
                                                               resolve={AS_HOST: "127.0.0.1"})])
        await self.reg_store.refresh()
        self.registry = StandinRegistry(TokenValidator(keys=self.reg_store, audience=[REGISTRY_HOST]), REGISTRY_HOST)
        self.reg_server = HTTPServer(self.registry, ssl=server_context(self.pki.cert, self.pki.key))
        await self.reg_server.start("127.0.0.1", 0)
        self.reg_url = "https://%s:%d" % (REGISTRY_HOST, self.reg_server.port)

    async def start_attach(self):
        """`attach` for the Node's outgoing calls: its own registration (scope registration), plain
        HTTP on loopback towards the Node, verified TLS towards the Registry."""
        iat, _ = issue_initial_access_token(self.auth.store, self.auth.app.keyring, issuer=self.issuer,
                                            registration_endpoint=self.auth.app.metadata()["registration_endpoint"],
                                            scope="registration", ttl=600, now=time.time())
        # the sealing key inside the demo's directory too, never in /etc or $HOME
        store = CredentialStore(os.path.join(self.dir, "attach"), os.path.join(self.dir, "attach-credentials.key"))
        client = OAuthClient(self.selector, store,
                             name=client_name("nmosauth-lite", "demo-node-attach", "0001"), scope="registration",
                             initial_token=iat)
        self.attach_manager = TokenManager(client)
        await self.attach_manager.start()
        http = HTTPClient(ca_file=self.bundle, resolve={REGISTRY_HOST: "127.0.0.1"}, **self.http_timeouts)
        self.attach = AttachProxy(Registries([self.reg_url]), self.attach_manager, http=http)
        self.attach_server = HTTPServer(self.attach)
        await self.attach_server.start("127.0.0.1", 0)
        self.node_http = HTTPClient(insecure_http=True, **self.http_timeouts)  # the Node's own client: plain HTTP to loopback

    async def node_call(self, method, path, doc=None):
        url = "http://127.0.0.1:%d%s" % (self.attach_server.port, path)
        return await self.node_http.request(method, url, json=doc)

    async def raw_call(self, port, target):
        """One request with a literal request-target (absolute-form: what a forward proxy sees)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % target.encode())
            data = await asyncio.wait_for(reader.read(), 10)
        finally:
            close(writer)
        return int(data.split(b" ", 2)[1])

    async def registration_steps(self):
        node, device = node_api.make_node(NODE_HOST, self.node_port)
        self.step("The Node registers through `attach` (it has no IS-10 code; attach adds the token)")
        self.say("    attach http://127.0.0.1:%d -> Registry %s" % (self.attach_server.port, self.reg_url))
        r = await self.node_call("POST", REG_API + "/resource", {"type": "node", "data": node})
        self.expect("POST resource (node)", r.status, 201)
        r = await self.node_call("POST", REG_API + "/resource", {"type": "device", "data": device})
        self.expect("POST resource (device)", r.status, 201)
        owner = self.registry.owner.get(node["id"])
        self.say("    the Registry bound the Node to client_id %s (attach's registration)" % owner)
        self.step("Heartbeats through `attach`: POST %s/health/nodes/{id}" % REG_API)
        for _ in range(3):
            r = await self.node_call("POST", REG_API + "/health/nodes/" + node["id"])
        self.expect("heartbeats answered 200", (r.status, self.registry.heartbeats.get(node["id"])), (200, 3))
        self.step("The same heartbeat straight to the Registry, without attach (no token)")
        r = await self.http.request("POST", self.reg_url + REG_API + "/health/nodes/" + node["id"])
        self.expect("status", r.status, 401)
        self.www(r)
        self.step("attach is no open proxy: another host, another API")
        status = await self.raw_call(self.attach_server.port, "http://example.com/x-nmos/registration/v1.3/")
        self.expect("GET http://example.com/... through attach", status, 403)
        r = await self.node_call("GET", "/x-nmos/query/v1.3/nodes")
        self.expect("GET /x-nmos/query/v1.3/nodes (not in its config)", r.status, 403)

    async def start_client(self):
        iat, _ = issue_initial_access_token(self.auth.store, self.auth.app.keyring, issuer=self.issuer,
                                            registration_endpoint=self.auth.app.metadata()["registration_endpoint"],
                                            scope="node", ttl=600, now=time.time())
        self.selector = ServerSelector(issuers=[self.issuer], ca_file=self.bundle, resolve={AS_HOST: "127.0.0.1"},
                                       **self.timeouts)
        client_dir = os.path.join(self.dir, "client")
        # the sealing key beside the client's directory, inside the demo's: never /etc or $HOME
        self.creds = CredentialStore(client_dir, default_key_file(client_dir))
        self.client = OAuthClient(self.selector, self.creds, name=client_name("nmosauth-lite", "demo-node", "0001"),
                                  scope="node", initial_token=iat)
        self.manager = TokenManager(self.client)
        await self.manager.start()
        self.http = HTTPClient(ca_file=self.bundle, resolve={NODE_HOST: "127.0.0.1", AS_HOST: "127.0.0.1",
                                                             REGISTRY_HOST: "127.0.0.1"}, **self.http_timeouts)

    async def get(self, path, token=None, method="GET"):
        url = "https://%s:%d%s" % (NODE_HOST, self.node_port, path)
        headers = [] if token is None else [("authorization", "Bearer " + token)]
        t0 = time.perf_counter()
        r = await self.http.request(method, url, headers=headers, body=b"{}" if method != "GET" else None)
        self.request_ms.append((time.perf_counter() - t0) * 1000)
        return r

    def www(self, r):
        v = r.header("www-authenticate")
        if v:
            self.say("         WWW-Authenticate: " + v)
        body = r.body[:200].decode("utf-8", "replace")
        if r.status >= 400:
            self.say("         body: " + body)

    # --- the walk-through -------------------------------------------------------------------
    async def run(self, serve=False):
        t_start = time.perf_counter()
        self.say("nmosauth-lite demo: IS-10 on loopback, state in %s" % self.dir)
        self.step("Set-up: authorization server, Node API behind `protect`, Registry, `attach`, Node client")
        self.pki = make_test_pki(os.path.join(self.dir, "node-tls"), dns_names=(NODE_HOST, REGISTRY_HOST),
                                 ip_addresses=("127.0.0.1",))
        await self.start_authorization_server()
        self.auth_ca = self.auth.ca_file
        self.bundle = os.path.join(self.dir, "trust.pem")
        with open(self.bundle, "wb") as f:
            for p in (self.auth_ca, self.pki.ca_cert):
                with open(p, "rb") as src:
                    f.write(src.read())
        self.say("    authorization server %s (RS512 tokens, %d s)" % (self.issuer, TOKEN_LIFETIME))
        await self.start_node()
        self.say("    Node API  https://%s:%d%s/  (protect -> http://127.0.0.1:%d)"
                 % (NODE_HOST, self.node_port, NODE_API, self.upstream.port))
        self.say("    Node keys: %s" % ", ".join(k.kid for k in self.store.keys_for(self.issuer)))
        await self.start_client()
        token = await self.manager.token()
        claims = parse(token).claims
        self.say("    client registered (RFC 7591) as %s; token for scope %r, aud %s"
                 % (claims.get("client_id"), claims.get("scope"), claims.get("aud")))
        await self.start_registry()
        await self.start_attach()
        self.say("    Registry %s (requires tokens); attach on http://127.0.0.1:%d"
                 % (self.reg_url, self.attach_server.port))
        await self.registration_steps()

        self.step("Allowed read: GET %s/self with the token" % NODE_API)
        r = await self.get(NODE_API + "/self", token)
        if self.expect("status", r.status, 200):
            self.say("         node label: %s" % r.json().get("label"))

        self.step("Forbidden write: POST %s/self (the token grants read only)" % NODE_API)
        r = await self.get(NODE_API + "/self", token, method="POST")
        self.expect("status", r.status, 403)
        self.www(r)

        self.step("Missing token: GET %s/self without Authorization" % NODE_API)
        r = await self.get(NODE_API + "/self")
        self.expect("status", r.status, 401)
        self.www(r)

        self.step("Expired token: the same claims, signed by the same server, expired an hour ago")
        now = time.time()
        old = dict(claims, iat=int(now) - 7200, exp=int(now) - 3600, jti="demo-expired")
        expired = self.auth.app.keyring.signer(now).encode(old)
        r = await self.get(NODE_API + "/self", expired)
        self.expect("status", r.status, 401)
        self.www(r)

        self.step("Key rotation: the server signs with a new key; the Node learns it on first sight")
        new_kid = self.auth.app.keyring.rotate(time.time(), delay=0)
        await self.manager.invalidate(token)
        token = await self.manager.token()
        self.say("    new token signed with kid %s" % parse(token).kid)
        r = await self.get(NODE_API + "/self", token)
        self.expect("status (unknown kid: one fetch, meanwhile 503)", r.status, 503)
        retry = r.header("retry-after")
        self.say("         Retry-After: %s" % retry)
        await self.store.wait(self.issuer, 10)
        await asyncio.sleep(min(float(retry or 1), 2.0))
        r = await self.get(NODE_API + "/self", token)
        self.expect("status after Retry-After", r.status, 200)
        self.expect("new key held by the Node", new_kid in [k.kid for k in self.store.keys_for(self.issuer)], True)

        self.step("Authorization server down: the Node reboots and keeps deciding from its persisted keys")
        await self.auth.stop()
        await self.store.close()
        await self.boot_node_keys(fetch=False)  # a reboot: nothing fetched, only the state directory
        errors = await self.store.refresh(force=True)
        self.say("    key refresh: %s" % ("failed as expected (server down), keys kept" if errors[self.issuer] else "ok?"))
        r = await self.get(NODE_API + "/self", token)
        self.expect("status", r.status, 200)
        r = await self.get(NODE_API + "/self", expired)
        self.expect("expired token still refused", r.status, 401)

        for _ in range(50):  # a latency sample for the summary
            await self.get(NODE_API + "/self", token)
        self.summary(token, time.perf_counter() - t_start)
        if serve:
            await self.serve(token)
        return 0 if self.failures == 0 else 1

    def summary(self, token, elapsed):
        v = self.validator
        now = time.time()
        path = NODE_API + "/self"
        v.check(token, "GET", path, now)
        cached = _median_us(lambda: v.check(token, "GET", path, now), 2000)
        first = _median_us(lambda: (v.forget(), v.check(token, "GET", path, now)), 300)
        reqs = sorted(self.request_ms)
        self.step("Summary")
        self.say("    token validation: %.1f us cached, %.0f us first sight (backend %s)"
                 % (cached, first, v.backend.name))
        self.say("    request through protect (TLS, keep-alive): median %.1f ms, p90 %.1f ms over %d requests"
                 % (statistics.median(reqs), reqs[int(len(reqs) * 0.9)], len(reqs)))
        self.say("    %d steps, %d failed, %.1f s" % (self.steps - 1, self.failures, elapsed))

    async def serve(self, token):
        await self.start_authorization_server(self.as_port)
        await self.store.refresh(force=True)
        rec = self.creds.load(self.issuer) or {}
        r = "--resolve %s:%d:127.0.0.1 --resolve %s:%d:127.0.0.1" % (AS_HOST, self.as_port, NODE_HOST, self.node_port)
        self.say("\nServing until Ctrl-C (lab credentials below are for this demo only). Try:")
        self.say("  TOKEN=$(curl -s --cacert %s %s -u '%s:%s' -d grant_type=client_credentials -d scope=node "
                 "%s/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
                 % (self.bundle, r, rec.get("client_id", "?"), rec.get("client_secret", "?"), self.issuer))
        self.say("  curl -i --cacert %s %s -H \"Authorization: Bearer $TOKEN\" https://%s:%d%s/self"
                 % (self.bundle, r, NODE_HOST, self.node_port, NODE_API))
        self.say("  curl -i --cacert %s %s https://%s:%d%s/self      # 401" % (self.bundle, r, NODE_HOST, self.node_port, NODE_API))
        self.say("  curl -i --cacert %s %s -X POST -H \"Authorization: Bearer $TOKEN\" https://%s:%d%s/self   # 403"
                 % (self.bundle, r, NODE_HOST, self.node_port, NODE_API))
        node, _ = node_api.make_node(NODE_HOST, self.node_port)
        self.say("  curl -i -X POST http://127.0.0.1:%d%s/health/nodes/%s   # the Node's heartbeat through attach: 200"
                 % (self.attach_server.port, REG_API, node["id"]))
        await asyncio.Event().wait()

    async def close(self):
        for name in ("manager", "attach_manager"):
            m = getattr(self, name, None)
            if m is not None:
                await m.close(revoke=False)
        for obj in ("http", "node_http", "attach", "selector", "store", "reg_store", "proxy"):
            o = getattr(self, obj, None)
            if o is not None and hasattr(o, "close"):
                await o.close()
        for srv in ("front", "upstream", "attach_server", "reg_server"):
            s = getattr(self, srv, None)
            if s is not None:
                await s.shutdown(2.0)
        a = getattr(self, "auth", None)
        if a is not None:
            try:
                await a.stop()
            except Exception:
                pass
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _median_us(fn, n):
    xs = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        xs.append(time.perf_counter_ns() - t)
    return statistics.median(xs) / 1000


async def main(out, serve=False, state_dir=None, timeout=None):
    demo = Demo(out, state_dir, timeout)
    try:
        return await demo.run(serve)
    finally:
        await demo.close()

