"""Issue 12 §1: the AS follows NMOS API conventions: /x-nmos/ and /x-nmos/auth/ listings (both
with and without the trailing slash) with CORS headers, and NMOS error JSON for unknown paths."""

import pytest

from as_support import as_pki, as_server, http  # noqa: F401 (fixtures)


@pytest.mark.parametrize("path,listing", [("/x-nmos", ["auth/"]), ("/x-nmos/", ["auth/"]),
                                          ("/x-nmos/auth", ["v1.0/"]), ("/x-nmos/auth/", ["v1.0/"])])
def test_api_listings(as_server, http, path, listing):
    resp = http.get(as_server.base + path, timeout=10)
    assert resp.status_code == 200 and resp.json() == listing
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["access-control-allow-origin"] == "*"  # IS-10 GEN-05, like other NMOS APIs
    assert http.head(as_server.base + path, timeout=10).status_code == 200


def test_listing_preflight_has_cors(as_server, http):
    resp = http.options(as_server.base + "/x-nmos/", timeout=10,
                        headers={"Origin": "https://ui.example.com", "Access-Control-Request-Method": "GET"})
    assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/x-nmos/nope", "/x-nmos/auth/v2.0/", "/x-nmos/auth/v1.0/nothing", "/nothing"])
def test_unknown_paths_get_404_with_nmos_error_json(as_server, http, path):
    resp = http.get(as_server.base + path, timeout=10)
    assert resp.status_code == 404
    body = resp.json()
    assert set(body) == {"code", "error", "debug"} and body["code"] == 404
    assert resp.headers["access-control-allow-origin"] == "*"


def test_listings_follow_a_configured_issuer_path(as_pki, tmp_path):
    from as_support import ASThread, server_table
    import requests

    with ASThread(server_table(as_pki, issuer_path="/x-nmos/auth/v1.1"), str(tmp_path)) as srv:
        with requests.Session() as h:
            h.trust_env, h.verify = False, srv.ca_file
            assert h.get(srv.base + "/x-nmos/auth/", timeout=10).json() == ["v1.1/"]
