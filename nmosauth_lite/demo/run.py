"""The IS-10 story on loopback, step by step: what `nmosauth-lite demo` runs.

A lite authorization server, a sample IS-04 Node API behind `protect` (TLS, keys from
the authorization server persisted in a state directory), and a Node-side client that
registers (RFC 7591, with an initial access token) and keeps a token. Then: an allowed
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

from ..aio.client import HTTPClient
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

DOMAIN = "demo.nmos.test"
AS_HOST = "auth." + DOMAIN
NODE_HOST = "node-1." + DOMAIN
NODE_API = "/x-nmos/node/v1.3"
TOKEN_LIFETIME = 60  # IS-10's own example uses 60 s tokens


class Demo:
    def __init__(self, out, state_dir=None):
        self.out = out
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

    async def start_client(self):
        iat, _ = issue_initial_access_token(self.auth.store, self.auth.app.keyring, issuer=self.issuer,
                                            registration_endpoint=self.auth.app.metadata()["registration_endpoint"],
                                            scope="node", ttl=600, now=time.time())
        self.selector = ServerSelector(issuers=[self.issuer], ca_file=self.bundle, resolve={AS_HOST: "127.0.0.1"})
        client_dir = os.path.join(self.dir, "client")
        # the sealing key beside the client's directory, inside the demo's: never /etc or $HOME
        self.creds = CredentialStore(client_dir, default_key_file(client_dir))
        self.client = OAuthClient(self.selector, self.creds, name=client_name("nmosauth-lite", "demo-node", "0001"),
                                  scope="node", initial_token=iat)
        self.manager = TokenManager(self.client)
        await self.manager.start()
        self.http = HTTPClient(ca_file=self.bundle, resolve={NODE_HOST: "127.0.0.1", AS_HOST: "127.0.0.1"})

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
        self.step("Set-up: authorization server, Node API behind `protect`, Node client")
        self.pki = make_test_pki(os.path.join(self.dir, "node-tls"), dns_names=(NODE_HOST,), ip_addresses=("127.0.0.1",))
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
        await asyncio.Event().wait()

    async def close(self):
        for name in ("manager",):
            m = getattr(self, name, None)
            if m is not None:
                await m.close(revoke=False)
        for obj in ("http", "selector", "store", "proxy"):
            o = getattr(self, obj, None)
            if o is not None and hasattr(o, "close"):
                await o.close()
        for srv in ("front", "upstream"):
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


async def main(out, serve=False, state_dir=None):
    demo = Demo(out, state_dir)
    try:
        return await demo.run(serve)
    finally:
        await demo.close()

