"""Test harness for the probe: its issuer, the demo Node API behind the guard + AuthProxy (what
`protect` runs), and stand-ins that break one guard behaviour at a time (IS-10 RS-22..RS-40)."""

import os

from nmosauth_lite.aio.keystore import KeyStore
from nmosauth_lite.aio.proxy import AuthProxy
from nmosauth_lite.aio.server import HTTPServer
from nmosauth_lite.aio.tlsutil import client_context, server_context
from nmosauth_lite.demo import node_api
from nmosauth_lite.guard import Guard, Verdict
from nmosauth_lite.probe import build_checks
from nmosauth_lite.probe.issuer import ProbeIssuer
from nmosauth_lite.probe.run import Target, run_checks
from nmosauth_lite.validator import TokenValidator

NODE = "node.test"
APIS = [("node", "v1.3")]


class BrokenGuard(Guard):
    """The real guard with one behaviour broken. `rewrite(guard, method, target, headers, verdict)`
    returns the answer to give instead (None: forward the request as if allowed), or verdict.answer
    to leave it; `preflight_fix(answer)` rewrites the CORS pre-flight answer."""

    def __init__(self, validator, rewrite=None, preflight_fix=None, **kw):
        super().__init__(validator, **kw)
        self.rewrite = rewrite
        self.preflight_fix = preflight_fix

    def check(self, method, target, headers, now=None, peer=None, client_cert=None):
        v = super().check(method, target, headers, now, peer, client_cert)
        if self.rewrite is not None:
            answer = self.rewrite(self, method, target, headers, v)
            if answer is not v.answer:
                return Verdict(v.decision, answer)
        return v

    def preflight(self, headers):
        a = super().preflight(headers)
        return a if self.preflight_fix is None else self.preflight_fix(a)


class Bench:
    """Probe issuer + demo Node behind AuthProxy on loopback TLS, in one event loop."""

    def __init__(self, tmp, pki, guard_cls=Guard, upstream=None, static_jwks=False, audience=(NODE,),
                 trust_issuer=True, **guard_kw):
        self.static_jwks = static_jwks
        self.audience = list(audience)  # the Node's configured audience (issue 22: wrong on purpose)
        self.trust_issuer = trust_issuer  # False: a Node whose trusted issuers miss the probe's
        self.tmp = str(tmp)
        self.pki = pki
        self.guard_cls = guard_cls
        self.guard_kw = guard_kw
        self.upstream_handler = upstream

    async def __aenter__(self):
        self.issuer = await ProbeIssuer(os.path.join(self.tmp, "probe-state")).start()
        self.upstream = HTTPServer(self.upstream_handler or (lambda r: self._router(r)))
        await self.upstream.start("127.0.0.1", 0)
        self.store = KeyStore([self.issuer.url] if self.trust_issuer else [],
                              state_dir=os.path.join(self.tmp, "node-state"), ca_file=self.issuer.ca_file)
        await self.store.refresh()
        if self.static_jwks:  # a Node given a JWKS file: it can never learn a new key (RS-06)
            validator = TokenValidator(jwks=self.issuer.jwks(), audience=self.audience, issuers=[self.issuer.url])
        else:
            validator = TokenValidator(keys=self.store, audience=self.audience)
        self.guard = self.guard_cls(validator, **self.guard_kw)
        self.proxy = AuthProxy(self.guard, "http://127.0.0.1:%d" % self.upstream.port)
        self.front = HTTPServer(self.proxy, ssl=server_context(self.pki.cert, self.pki.key))
        await self.front.start("127.0.0.1", 0)
        self._router = node_api.router(NODE, self.front.port)
        self.target = Target("https://%s:%d" % (NODE, self.front.port), client_context(self.pki.ca_cert),
                             connect="127.0.0.1", timeout=10)
        return self

    async def probe(self, apis=APIS, ws=()):
        checks = build_checks(apis, self.issuer.minter(NODE), ws)
        context = {"issuer": self.issuer.url, "ca_file": self.issuer.ca_file, "jwks_file": self.issuer.jwks_file,
                   "audience": NODE}
        return await run_checks(self.target, checks, self.issuer, context=context)

    async def __aexit__(self, *exc):
        await self.front.shutdown(2.0)
        await self.proxy.close()
        await self.store.close()
        await self.upstream.shutdown(2.0)
        await self.issuer.stop()
