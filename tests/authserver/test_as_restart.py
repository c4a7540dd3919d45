"""A restart keeps clients, signing keys and refresh tokens (issue 6 item 9)."""

import requests

from as_support import ASThread, as_pki, basic, server_table  # noqa: F401
from nmosauth_lite.validator import TokenValidator
from as_flows import CB, exchange, login


def _session(srv):
    h = requests.Session()
    h.trust_env = False
    h.verify = srv.ca_file
    return h


def test_restart_keeps_clients_keys_and_refresh_tokens(tmp_path, as_pki):
    table = server_table(as_pki)
    state = str(tmp_path)
    with ASThread(table, state) as srv:
        h = _session(srv)
        cc = srv.add_client()
        pub = srv.add_client(grants=["authorization_code", "refresh_token"], auth="none", scope="query",
                             redirect_uris=[CB])
        user = srv.add_user()
        q, verifier = login(h, srv, user, pub, scope="query")
        tokens = exchange(h, srv, pub, q["code"], verifier).json()
        jwks_before = h.get(srv.metadata["jwks_uri"], timeout=10).json()
        h.close()
    with ASThread(table, state) as srv2:  # same state directory, new process state, new port
        h = _session(srv2)
        assert h.get(srv2.metadata["jwks_uri"], timeout=10).json() == jwks_before  # same keys
        r = h.post(srv2.metadata["token_endpoint"], data={"grant_type": "client_credentials"},
                   headers={"Authorization": basic(cc["client_id"], cc["client_secret"])}, timeout=10)
        assert r.status_code == 200, r.text  # same client and secret
        r = h.post(srv2.metadata["token_endpoint"], timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": pub["client_id"]})
        assert r.status_code == 200, r.text  # the refresh token survived
        at = r.json()["access_token"]
        v = TokenValidator(jwks=jwks_before, audience=["node1.example.com"])
        assert v.check(at, "GET", "/x-nmos/query/v1.3/nodes").allowed  # RSs need no new keys
        assert v.check(tokens["access_token"], "GET", "/x-nmos/query/v1.3/nodes").allowed
        h.close()
