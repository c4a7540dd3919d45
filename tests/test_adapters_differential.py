"""One decision path, four fronts (issue 20 §1; ARCHITECTURE "Middleware adapters"): every case of
tests/request_corpus.py sent byte for byte to `protect` (a child process over TLS), the aiohttp
middleware, the ASGI middleware under uvicorn and the WSGI middleware under werkzeug gets the
status IS-10 wants (RS-22..RS-40) and the same status and WWW-Authenticate from each of them.
WSGI sits out the WebSocket cases (no upgrade in WSGI) and the repeated Authorization header
(WSGI servers merge repeated fields, so it cannot be told apart).
"""

import json
import re

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("flask")

from adapter_servers import (AiohttpServer, ProtectProcess, UvicornServer, WerkzeugServer, aiohttp_app,  # noqa: E402
                             asgi_app, make_guard, send_raw, wsgi_app)
from minting import Minter  # noqa: E402
from request_corpus import cases  # noqa: E402
from tls_helpers import client_ssl, pki  # noqa: E402, F401
from nmosauth_lite.asgi import NmosAuthMiddleware  # noqa: E402
from nmosauth_lite.wsgi import NmosAuthWSGI  # noqa: E402

M = Minter()
CASES = cases(M)
WWW = re.compile(r'^Bearer realm="node1\.example\.com"(,error=(invalid_token|insufficient_scope|invalid_request),'
                 r'error_description="[^",]*")?$')


@pytest.fixture(scope="module")
def fronts(pki, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("fronts")
    jwks_path = str(tmp / "jwks.json")
    with open(jwks_path, "w") as f:
        json.dump(M.jwks, f)
    with AiohttpServer(aiohttp_app()) as node, \
            AiohttpServer(aiohttp_app(make_guard(M.jwks, issuers=[M.ISS]))) as aio, \
            UvicornServer(NmosAuthMiddleware(asgi_app, make_guard(M.jwks, issuers=[M.ISS]))) as asgi, \
            WerkzeugServer(NmosAuthWSGI(wsgi_app, make_guard(M.jwks, issuers=[M.ISS]))) as wsgi:
        protect = ProtectProcess(pki, jwks_path, "http://127.0.0.1:%d" % node.port, tmp, ["--issuer", M.ISS])
        try:
            yield {"protect": (protect.port, client_ssl(pki)), "aiohttp": (aio.port, None),
                   "asgi": (asgi.port, None), "wsgi": (wsgi.port, None)}
        finally:
            protect.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_front_gives_the_same_status_and_challenge(fronts, case):
    want = 101 if case.websocket and case.status == 200 else case.status
    seen = {}
    for name, (port, ctx) in fronts.items():
        if name == "wsgi" and not case.wsgi:
            if case.name == "two-authorization-headers":  # merged by the WSGI server: one bad token
                status, headers, _ = send_raw(port, case.method, case.target, case.headers, ctx)
                assert status == 401 and ",error=invalid_token," in headers["www-authenticate"]
            continue
        status, headers, body = send_raw(port, case.method, case.target, case.headers, ctx)
        www = headers.get("www-authenticate")
        seen[name] = (status, www)
        assert status == want, (name, status, body[:200])
        if status >= 400:  # IS-10 RS-27: NMOS error JSON, CORS, a challenge of the documented shape
            assert json.loads(body)["code"] == status, name
            assert headers["access-control-allow-origin"] == "*", name
            assert WWW.match(www), (name, www)
            assert (case.error is None and "error=" not in www) or ",error=%s," % case.error in www, (name, www)
        elif case.method == "OPTIONS":  # pre-flight answered by the guard: 200 everywhere
            assert "Authorization" in headers["access-control-allow-headers"], name
    assert len(set(seen.values())) == 1, seen
