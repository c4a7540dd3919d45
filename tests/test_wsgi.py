"""wsgi.py: NmosAuthWSGI protecting a small Flask Node API (issue 3 item 6), driven through
werkzeug's test client (which gives RAW_URI) and through the stdlib's real wsgiref server
(which does not: the re-encoded PATH_INFO is judged). Same decision classes as `protect`
(IS-10 RS-22..RS-33).
"""

import http.client
import json
import re
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

flask = pytest.importorskip("flask")

from minting import Minter  # noqa: E402
from nmosauth_lite import TokenValidator  # noqa: E402
from nmosauth_lite.guard import Guard  # noqa: E402
from nmosauth_lite.wsgi import NmosAuthWSGI, environ_target  # noqa: E402

AUD = "node1.example.com"
SELF = "/x-nmos/node/v1.3/self"
WWW = re.compile(r'^Bearer realm="node1\.example\.com"(,error=(invalid_token|insufficient_scope|invalid_request),'
                 r'error_description="[^",]*")?$')


def make_app():
    app = flask.Flask("node")

    @app.get("/x-nmos/")
    def base():
        return flask.jsonify(["node/", "connection/"])

    @app.route("/x-nmos/node/v1.3/<path:rest>", methods=["GET", "POST", "OPTIONS"])
    def node(rest):
        return flask.jsonify({"method": flask.request.method, "rest": rest})

    @app.route("/x-nmos/connection/v1.1/single/<path:rest>", methods=["PATCH"])
    def staged(rest):
        return flask.jsonify({"patched": rest, "body": flask.request.get_json()})
    return app


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture(scope="module")
def audit():
    return []


@pytest.fixture(scope="module")
def app(m, audit):
    a = make_app()
    a.wsgi_app = NmosAuthWSGI(a.wsgi_app, Guard(TokenValidator(jwks=m.jwks, audience=[AUD]), audit=audit.append))
    return a


def token(m, **over):
    now = int(time.time())
    claims = dict(iat=now - 10, exp=now + 600)
    claims.update(over)
    key = claims.pop("key", None)
    return m.token("RS512", claims=m.claims(**claims), key=key)


def check_error(status, headers, body, want, error):
    assert status == want
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Expose-Headers"] == "WWW-Authenticate, Retry-After"
    doc = json.loads(body)
    assert doc["code"] == want and doc["debug"] is None
    www = headers["WWW-Authenticate"]
    assert WWW.match(www), www
    assert (error is None and "error=" not in www) or ",error=%s," % error in www


CASES = [("missing", "GET", 401, None), ("expired", "GET", 401, "invalid_token"),
         ("bad-signature", "GET", 401, "invalid_token"), ("forbidden-write", "POST", 403, "insufficient_scope"),
         ("wrong-audience", "GET", 403, "insufficient_scope"), ("malformed-header", "GET", 400, "invalid_request")]


def auth_for(m, case):
    now = int(time.time())
    tok = {"missing": None, "expired": token(m, iat=now - 900, exp=now - 60), "bad-signature": token(m, key=m.attacker),
           "forbidden-write": token(m), "wrong-audience": token(m, aud=["https://node1.other.example.org"]),
           "malformed-header": ""}[case]
    return {} if tok is None else {"Authorization": ("Bearer " + tok) if tok else "Bearer"}


# --- werkzeug's test client --------------------------------------------------------------------

def test_allowed_read_reaches_flask_with_cors_added(app, m):
    r = app.test_client().get(SELF, headers={"Authorization": "Bearer " + token(m)})
    assert r.status_code == 200 and r.get_json() == {"method": "GET", "rest": "self"}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate, Retry-After"


@pytest.mark.parametrize("case,method,status,error", CASES)
def test_denials_through_the_test_client(app, m, case, method, status, error):
    r = app.test_client().open(SELF, method=method, headers=auth_for(m, case), data=b"{}" if method == "POST" else None)
    check_error(r.status_code, r.headers, r.data, status, error)


def test_public_path_preflight_and_permitted_write(app, m):
    c = app.test_client()
    assert c.get("/x-nmos/").status_code == 200
    r = c.options(SELF, headers={"Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200 and "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = c.patch("/x-nmos/connection/v1.1/single/senders/abc/staged", json={"master_enable": True},
                headers={"Authorization": "Bearer " + token(m)})
    assert r.status_code == 200 and r.get_json()["body"] == {"master_enable": True}
    r = c.get(SELF + "?access_token=" + token(m))  # RS-40: not a WebSocket upgrade
    check_error(r.status_code, r.headers, r.data, 401, None)


def test_raw_uri_is_preferred_over_decoded_path_info():
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x-nmos/connection/v1.1/bulk/../single/x",
           "RAW_URI": "/x-nmos/connection/v1.1/bulk%2F..%2Fsingle/x?a=1", "QUERY_STRING": "a=1"}
    assert environ_target(env) == env["RAW_URI"]
    del env["RAW_URI"]
    env["SCRIPT_NAME"] = "/mount"
    env["PATH_INFO"] = "/x-nmos/node/v1.3/caf\xc3\xa9"  # PEP 3333: bytes as latin-1 code points
    assert environ_target(env) == "/mount/x-nmos/node/v1.3/caf%C3%A9?a=1"


# --- the stdlib's real WSGI server --------------------------------------------------------------

class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def wsgiref_server(app):
    srv = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)


def call(port, method, path, headers=(), body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("case,method,status,error", CASES)
def test_denials_through_wsgiref(wsgiref_server, m, case, method, status, error):
    got = call(wsgiref_server.server_port, method, SELF, auth_for(m, case), b"{}" if method == "POST" else None)
    check_error(*got, status, error)


def test_allowed_and_public_through_wsgiref(wsgiref_server, m, audit):
    port = wsgiref_server.server_port
    status, h, body = call(port, "GET", SELF, {"Authorization": "Bearer " + token(m)})
    assert status == 200 and json.loads(body)["rest"] == "self" and h["Access-Control-Allow-Origin"] == "*"
    assert call(port, "GET", "/x-nmos/")[0] == 200
    # wsgiref gives no raw URI: dot segments arrive in PATH_INFO and are judged normalized
    status, _, body = call(port, "GET", "/x-nmos/node/v1.3/./self", {"Authorization": "Bearer " + token(m)})
    assert status == 200
    rec = audit[-1]
    assert rec["status"] == 200 and rec["path"] == "/x-nmos/node/v1.3/./self" and len(rec["token"]) == 16
