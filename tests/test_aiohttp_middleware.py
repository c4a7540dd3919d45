"""aiohttp_middleware.py: nmos_auth_middleware in front of a real aiohttp Node app on loopback,
driven by aiohttp's own client and by a raw HTTP/1.1 client (issue 20 §1). The same Guard as
`protect` (IS-10 RS-22..RS-41): NMOS error JSON, CORS pre-flight 200, the raw path judged
(RS-32), WebSocket upgrades with a header or `?access_token=` (RS-37..RS-40) refused before the
handshake (RS-39), the claims in request["nmos_auth"], and the request corpus of
tests/request_corpus.py through it.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web

from adapter_servers import AUD, AiohttpServer, aiohttp_app, make_guard, send_raw
from minting import Minter
from request_corpus import SELF, cases, token
from nmosauth_lite.aiohttp_middleware import nmos_auth_middleware

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture(scope="module")
def node(m):
    with AiohttpServer(aiohttp_app(make_guard(m.jwks, issuers=[m.ISS]))) as srv:
        yield srv


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def url(srv, path):
    return "http://127.0.0.1:%d%s" % (srv.port, path)


def test_allowed_read_reaches_the_handler_with_the_claims_and_cors(node, m):
    status, h, body = send_raw(node.port, "GET", SELF, [("Authorization", "Bearer " + token(m))])
    assert status == 200
    doc = json.loads(body)
    assert doc["path"] == SELF and doc["sub"] == "tester@example.com"  # request["nmos_auth"]
    assert h["access-control-allow-origin"] == "*" and h["access-control-expose-headers"].startswith("WWW-Auth")


def test_public_path_gives_the_handler_no_claims(node):
    status, _, body = send_raw(node.port, "GET", "/x-nmos/")
    assert status == 200 and json.loads(body)["sub"] is None


def test_the_request_corpus_gets_the_is10_answers(node, m):  # RS-22..RS-40
    for case in cases(m):
        status, h, body = send_raw(node.port, case.method, case.target, case.headers)
        want = 101 if case.websocket and case.status == 200 else case.status
        assert status == want, (case.name, status, body[:200])
        if status >= 400:
            assert json.loads(body) == {"code": status, "error": json.loads(body)["error"], "debug": None}
            assert h["content-type"].startswith("application/json")
            www = h["www-authenticate"]
            assert (case.error is None and "error=" not in www) or ",error=%s," % case.error in www, case.name


def test_the_raw_path_is_judged_not_aiohttps_decoded_one(m):  # RS-32
    seen = []

    async def handler(request):
        seen.append(request.path)
        return web.json_response({})
    app = web.Application(middlewares=[nmos_auth_middleware(make_guard(m.jwks))])
    app.router.add_route("*", "/{tail:.*}", handler)
    with AiohttpServer(app) as srv:
        auth = [("Authorization", "Bearer " + token(m))]
        # aiohttp decodes %2F to '/', so request.path would read single/../bulk: judged raw, it is refused
        status, _, _ = send_raw(srv.port, "PATCH", "/x-nmos/connection/v1.1/single/..%2Fbulk/x", auth)
        assert status == 400 and seen == []
        status, _, _ = send_raw(srv.port, "PATCH", "/x-nmos/connection/v1.1/single/senders/x/staged", auth)
        assert status == 200 and seen == ["/x-nmos/connection/v1.1/single/senders/x/staged"]


def test_preflight_is_answered_200_without_a_token(node):  # GEN-04, GEN-05, RS-29
    status, h, body = send_raw(node.port, "OPTIONS", SELF, [("Origin", "https://ui.example.com"),
                                                             ("Access-Control-Request-Method", "PATCH"),
                                                             ("Access-Control-Request-Headers", "content-type")])
    assert status == 200 and body == b""
    assert "Authorization" in h["access-control-allow-headers"] and "PATCH" in h["access-control-allow-methods"]


def test_a_raised_http_exception_gets_cors_too(m):
    async def handler(request):
        raise web.HTTPNotFound()
    app = web.Application(middlewares=[nmos_auth_middleware(make_guard(m.jwks))])
    app.router.add_get("/x-nmos/node/v1.3/{tail:.*}", handler)
    with AiohttpServer(app) as srv:
        status, h, _ = send_raw(srv.port, "GET", "/x-nmos/node/v1.3/gone", [("Authorization", "Bearer " + token(m))])
        assert status == 404 and h["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("how", ["query", "header"])
def test_websocket_allowed_with_a_query_or_header_token(node, m, how):  # RS-37, RS-38
    t = token(m)

    async def go():
        async with aiohttp.ClientSession() as s:
            path = "/x-nmos/query/v1.3/ws" + ("?access_token=" + t if how == "query" else "")
            headers = {"Authorization": "Bearer " + t} if how == "header" else {}
            async with s.ws_connect(url(node, path), headers=headers) as ws:
                hello = await ws.receive_str(timeout=5)
                await ws.send_str("hi")
                return hello, await ws.receive_str(timeout=5)
    assert run(go()) == ("hello /x-nmos/query/v1.3/ws", "echo:hi")


@pytest.mark.parametrize("case,status", [("none", 401), ("expired", 401), ("wrong-audience", 403)])
def test_websocket_refused_before_the_handshake(node, m, case, status):  # RS-39
    now = int(time.time())
    t = {"none": None, "expired": token(m, iat=now - 900, exp=now - 60),
         "wrong-audience": token(m, aud=["https://x.other.example.org"])}[case]

    async def go():
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_connect(url(node, "/x-nmos/query/v1.3/ws" + ("" if t is None else "?access_token=" + t)))
            return info.value
    err = run(go())
    assert err.status == status and err.headers["WWW-Authenticate"].startswith('Bearer realm="%s"' % AUD)


def test_is12_websocket_with_an_aliased_claim_and_a_query_token(m):  # issue 20 §3, BCP-O-02
    claims = {"scope": "nc", "x-nmos-nc": {"read": ["*"], "write": ["*"]}}
    with AiohttpServer(aiohttp_app(make_guard(m.jwks, api_aliases={"nc": "ncp"}))) as srv:
        async def go(t):
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(url(srv, "/x-nmos/ncp/v1.0/ws?access_token=" + t)) as ws:
                    return await ws.receive_str(timeout=5)
        assert run(go(token(m, **claims))) == "hello /x-nmos/ncp/v1.0/ws"
        # one API under two names is ambiguous: refused (401), never merged
        both = token(m, **dict(claims, **{"x-nmos-ncp": {"read": ["*"]}}))
        status, h, _ = send_raw(srv.port, "GET", "/x-nmos/ncp/v1.0/ws?access_token=" + both,
                                [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                 ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")])
        assert status == 401 and "two names" in h["www-authenticate"]


def test_claims_under_ext_with_claims_location_ext(m):  # issue 20 §2
    ext_only = token(m, **{"x-nmos-node": None, "ext": {"x-nmos-node": {"read": ["*"]}}})
    with AiohttpServer(aiohttp_app(make_guard(m.jwks, claims_location="ext"))) as srv:
        assert send_raw(srv.port, "GET", SELF, [("Authorization", "Bearer " + ext_only)])[0] == 200
        # the top-level claim is not consulted in "ext" mode
        assert send_raw(srv.port, "GET", SELF, [("Authorization", "Bearer " + token(m))])[0] == 403


def test_aiohttp_stays_optional():
    code = ("import sys, nmosauth_lite, nmosauth_lite.guard, nmosauth_lite.asgi, nmosauth_lite.wsgi, "
            "nmosauth_lite.validator; assert 'aiohttp' not in sys.modules, 'aiohttp imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["dependencies"] == [] and project["optional-dependencies"]["aiohttp"][0].startswith("aiohttp")
