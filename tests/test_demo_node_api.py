"""The demo's IS-04 Node API follows the NMOS API conventions third-party tools rely on
(issue 12 §1): both path forms (with and without a trailing slash) and the listings answer,
unknown paths are 404 with the NMOS error JSON {"code", "error", "debug"}."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from nmosauth_lite.aio.server import HTTPServer
from nmosauth_lite.demo import node_api

API = "/x-nmos/node/v1.3"


def _fetch(port, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=b"{}" if method in node_api.WRITES else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def _serve(checks):
    async def main():
        srv = HTTPServer(node_api.router("127.0.0.1", 1))
        await srv.start("127.0.0.1", 0)
        try:
            return await asyncio.wait_for(asyncio.to_thread(checks, srv.port), 60)
        finally:
            await srv.shutdown(5)

    return asyncio.run(main())


LISTINGS = {"/x-nmos": ["node/"], "/x-nmos/node": ["v1.3/"],
            API: ["self/", "devices/", "sources/", "flows/", "senders/", "receivers/"]}


def test_both_path_forms_and_the_listings():
    def checks(port):
        for path, listing in LISTINGS.items():
            for form in (path, path + "/"):
                status, headers, body = _fetch(port, form)
                assert status == 200 and json.loads(body) == listing, form
                assert headers["content-type"] == "application/json"
        for name in ("self", "devices", "sources", "flows", "senders", "receivers"):
            bodies = [_fetch(port, API + "/" + name + tail) for tail in ("", "/")]
            assert [b[0] for b in bodies] == [200, 200] and bodies[0][2] == bodies[1][2], name
        device = json.loads(_fetch(port, API + "/devices")[2])[0]
        assert _fetch(port, API + "/devices/" + device["id"] + "/")[0] == 200
    _serve(checks)


@pytest.mark.parametrize("path", ["/x-nmos/node/v1.3/nothing", "/x-nmos/node/v1.3/nothing/", "/x-nmos/node/v1.2/",
                                  "/x-nmos/query/v1.3", "/x-nmos/node/v1.3/devices/unknown-id", "/other"])
def test_unknown_paths_are_404_with_nmos_error_json(path):
    def checks(port):
        status, headers, body = _fetch(port, path)
        assert status == 404
        doc = json.loads(body)
        assert set(doc) == {"code", "error", "debug"} and doc["code"] == 404
        assert isinstance(doc["error"], str) and isinstance(doc["debug"], str)
    _serve(checks)


def test_writes_under_the_api_still_answer_200_and_others_405_or_404():
    def checks(port):
        assert _fetch(port, API + "/", "POST")[0] == 200  # a 403 can only come from the guard
        assert _fetch(port, API + "/senders/x/staged", "PATCH")[0] == 200
        status, headers, body = _fetch(port, "/x-nmos/node/", "POST")
        assert status == 405 and "GET" in headers["allow"] and json.loads(body)["code"] == 405
        assert _fetch(port, "/x-nmos/query/v1.3/", "POST")[0] == 404
    _serve(checks)
