"""Issue 19 "Done when" (the attach half), end to end with real processes: a Node with no IS-10 code
(tests/aio/nmos_upstream.py on plain loopback HTTP) behind `protect` for what it serves and `attach`
for what it sends. It registers and heartbeats with a token-checking Registry through `attach`,
and its Node API answers only requests with a valid token (IS-10 RS-*, BCP-003-02 §2)."""

import http.client
import json

from attach_support import (NODE_ID, REG, Attach, RegistryPeer, ServeProc, base_args, bundle, node_call, node_doc,
                            registry_pki)
from nmos_upstream import NodeUpstream
from test_protect import Protect
from tls_helpers import ServerThread, client_ssl


def test_a_node_without_is10_code_registers_through_attach_and_serves_only_with_tokens(tmp_path):
    srv = ServeProc(tmp_path / "as", "localhost", lifetime=600)
    node = ServerThread(NodeUpstream())  # the Node's own API: plain HTTP, loopback, no IS-10 code
    peer = attach = protect = None
    node.__enter__()
    try:
        srv.start()
        pki = registry_pki(tmp_path / "pki")
        ca = bundle(tmp_path / "trust.pem", srv.ca_file, pki.ca_cert)
        peer = RegistryPeer(tmp_path / "registry-keys", pki, srv.issuer, srv.ca_file)
        protect = Protect(["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:%d" % node.port, "--audience",
                           "localhost", "--cert", pki.cert, "--key", pki.key, "--issuer", srv.issuer, "--ca",
                           srv.ca_file, "--state-dir", str(tmp_path / "protect")], tmp_path, "protect")
        attach = Attach(tmp_path, "attach", base_args(tmp_path / "attach", srv, ca, "--registry", peer.url))

        # what the Node sends, unchanged: its resource with the href where protect serves it
        doc = node_doc()
        doc["data"]["href"] = "https://localhost:%d/" % protect.port
        assert node_call(attach.port, "POST", REG + "/resource", doc)[0] == 201
        for _ in range(2):
            assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
        assert peer.reg.heartbeats[NODE_ID] == 2 and peer.reg.owner[NODE_ID]
        assert all(s[3] not in (None, "fault") for s in peer.reg.seen)  # every call carried attach's token

        # what it serves: only with a token (a controller's, minted by the operator for this test)
        token = srv.admin("token", "--scope", "node", "--audience", "localhost").stdout.strip()

        def get(headers):
            conn = http.client.HTTPSConnection("localhost", protect.port, context=client_ssl(pki), timeout=20)
            try:
                conn.request("GET", "/x-nmos/node/v1.3/self", headers=headers)
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        status, body = get({})
        assert status == 401 and json.loads(body)["code"] == 401
        status, body = get({"Authorization": "Bearer " + token})
        assert status == 200 and json.loads(body)["target"] == "/x-nmos/node/v1.3/self"
        assert [h for h in node.server.handler.hits if h[1].startswith("/x-nmos/node")] == \
            [("GET", "/x-nmos/node/v1.3/self")]  # the token-less request never reached the Node
    finally:
        for p in (attach, protect):
            if p is not None:
                p.stop() if hasattr(p, "stop") else p.kill()
        if peer is not None:
            peer.stop()
        node.__exit__(None, None, None)
        srv.stop()
