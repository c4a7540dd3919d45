"""The IPMX verdict corpus (tests/ipmx_corpus.py) through the aiohttp middleware on a real aiohttp
server on loopback (issue 21): the same answers as TokenValidator's, WebSocket upgrades decided
as read-write unless a Guest endpoint (SEC-46), and a query token never read (SEC-11)."""

import json

import pytest

import ipmx_corpus as C
from adapter_servers import AiohttpServer, aiohttp_app, send_raw
from ipmx_realclock import shifted_token
from minting import Minter
from nmosauth_lite import TokenValidator
from nmosauth_lite.guard import Guard

WS = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
      ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]


@pytest.fixture(scope="module")
def m():
    return Minter()


def test_the_ipmx_corpus_through_aiohttp(m):
    servers = {}
    try:
        for config in sorted(set(c[7] for c in C.CASES)):
            v = TokenValidator(jwks=m.jwks, profile="ipmx", **C.CONFIGS[config])
            servers[config] = AiohttpServer(aiohttp_app(Guard(v))).__enter__()
        wrong = []
        for cid, sec, claims, header, method, path, status, config, now in C.CASES:
            if method == "TRACE":
                continue  # aiohttp's router answers it before any middleware runs in some versions
            headers = [("Authorization", "Bearer " + shifted_token(m, claims, header, now, cid))]
            real = method
            if method == "GET websocket":
                real, headers = "GET", headers + WS
            got, h, body = send_raw(servers[config].port, real, path, headers)
            want = 101 if method == "GET websocket" and status == 200 else status
            if got != want or (got >= 400 and json.loads(body)["code"] != got):
                wrong.append((cid, sec, want, got))
        assert wrong == []
        # SEC-11: an upgrade with the token in the query only: no token at all
        tok = shifted_token(m, {"scope": "query"}, {}, 0)
        got, _, _ = send_raw(servers["guest"].port, "GET", "/x-nmos/query/v1.3/subscriptionsGuest/1?access_token=" + tok, WS)
        assert got == 401
    finally:
        for s in servers.values():
            s.__exit__(None, None, None)
