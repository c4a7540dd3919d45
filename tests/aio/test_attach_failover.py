"""`attach` finds its Registry by unicast DNS-SD and fails over by priority (issue 19 §1; IS-04
registered operation, BCP-003-02 BCP-N-05/N-06), against a real dnsmasq on loopback: the names
exist only in DNS, so attach connects to the advertised address while TLS verifies the name.
An advert with api_auth=false (or api_proto=http) is never used, whatever its priority. Also:
configured Registries fail over on 5xx; a private_key_jwt client (IS-10 CL-15) works end to end."""

import json
import time

import pytest

from attach_support import (DOMAIN, NODE_ID, REG, Attach, RegistryPeer, ServeProc, advert, base_args, bundle,
                            node_call, node_doc, registry_pki)
from dns_helpers import Dnsmasq, free_port


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attach-dnssd")
    srv = ServeProc(tmp / "as", "localhost", lifetime=600)
    peers, dns, attach = [], None, None
    try:
        srv.start()
        pki = registry_pki(tmp / "pki")
        ca = bundle(tmp / "trust.pem", srv.ca_file, pki.ca_cert)
        for i in range(3):
            peers.append(RegistryPeer(tmp / ("keys%d" % i), pki, srv.issuer, srv.ca_file))
        # listed against the order of priority: only `pri` can put reg1 first
        lines = advert("reg2", peers[1].port, 20) + advert("reg1", peers[0].port, 10) + \
            advert("reg3", peers[2].port, 0, auth="false") + advert("reg3h", peers[2].port, 1, proto="http") + \
            advert("regx", peers[2].port, 5)  # a name its certificate does not carry: TLS must refuse it
        (tmp / "dns").mkdir()
        dns = Dnsmasq(tmp / "dns", list(dict.fromkeys(lines)), local_domains=[DOMAIN], local_ttl=1).start()
        attach = Attach(tmp, "attach", base_args(tmp / "a", srv, ca, "--domain", DOMAIN, "--nameserver",
                                                 "127.0.0.1:%d" % dns.port, "--registry-timeout", "5"))
        yield {"attach": attach, "peers": peers, "as": srv, "ca": ca, "tmp": tmp}
    finally:
        if attach is not None:
            attach.stop()
        if dns is not None:
            dns.stop()
        for p in peers:
            p.stop()
        srv.stop()


def test_lowest_pri_first_then_failover_to_the_next_and_never_api_auth_false(world):
    attach, (reg1, reg2, reg3) = world["attach"], world["peers"]
    assert attach.info["registry"] == "dns-sd"
    status, _, body = node_call(attach.port, "POST", REG + "/resource", node_doc())
    assert status == 201 and json.loads(body)["id"] == NODE_ID
    assert NODE_ID in reg1.reg.owner and not reg2.reg.seen
    assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
    # absolute-form naming the discovered Registry is its own target, not another host
    assert node_call(attach.port, "GET", "http://reg1.%s%s/" % (DOMAIN, REG))[0] == 200

    reg1.stop()  # the pri 10 Registry goes away: the same Node's next calls go to pri 20 (IS-04)
    t0 = time.monotonic()
    status, _, _ = node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)
    assert status == 404  # not registered there yet: IS-04 says the Node registers again (BCP-N-03)
    assert node_call(attach.port, "POST", REG + "/resource", node_doc())[0] == 201
    assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
    assert time.monotonic() - t0 < 30
    assert NODE_ID in reg2.reg.owner and reg2.reg.heartbeats[NODE_ID] == 1
    # api_auth=false and http adverts never get a request (or a token); regx (pri 5, first in line) fails
    # its TLS name check, so no request reaches the server behind it either (BCP-003-01)
    assert reg3.reg.authorization == []
    assert "failed" in attach.stderr() and "Registry https://regx.%s" % DOMAIN in attach.stderr()


def test_a_registry_without_the_nodes_api_version_is_skipped(world):
    # the Node asks for v1.0: no advert offers it, so nothing is sent anywhere (IS-04: api_ver)
    attach, peers = world["attach"], world["peers"]
    before = [len(p.reg.authorization) for p in peers if p.thread is not None]
    status, headers, body = node_call(attach.port, "POST", "/x-nmos/registration/v1.0/resource", node_doc())
    assert status == 503 and headers["Retry-After"] and json.loads(body)["code"] == 503
    assert [len(p.reg.authorization) for p in peers if p.thread is not None] == before


def test_configured_registries_fail_over_on_5xx_in_the_order_given(world, tmp_path):
    # IS-04: a 5xx (other than a 503 with Retry-After) sends the request on to the next Registry
    _, reg2, reg3 = world["peers"]
    node = "0b8a7c52-1c31-4a8e-9d7a-2f6b1f0c9e11"  # another Node: the first one is bound to another client
    attach = Attach(tmp_path, "attach-static", base_args(tmp_path / "a", world["as"], world["ca"], "--registry",
                                                         reg2.url, "--registry", reg3.url))
    try:
        assert node_call(attach.port, "POST", REG + "/resource", node_doc(node))[0] == 201
        n2, n3 = len(reg2.reg.seen), len(reg3.reg.seen)
        reg2.reg.faults.append(500)
        status, _, _ = node_call(attach.port, "POST", REG + "/resource", node_doc(node))
        assert status == 201  # new at reg3, registered with attach's token there
        assert [s[2] for s in reg2.reg.seen[n2:]] == [500] and [s[2] for s in reg3.reg.seen[n3:]] == [201]
        # reg3 answered: it stays in use (IS-04: a Node stays with the Registry that works)
        assert node_call(attach.port, "POST", REG + "/health/nodes/" + node)[0] == 200
        assert len(reg2.reg.seen) == n2 + 1
    finally:
        attach.stop()


def test_private_key_jwt_client_registers_and_its_token_reaches_the_registry(world, tmp_path):
    # IS-10 CL-15/CL-16: the attach process serves its own JWK Set; the AS fetches it to check the
    # client assertion (RFC 7523), then the Registry accepts the token attach obtained with it
    from attach_support import registry_pki as make_pki

    pki = make_pki(tmp_path / "pki")
    srv = ServeProc(tmp_path / "as", "localhost", lifetime=600, trust_ca=pki.ca_cert)
    attach = None
    try:
        srv.start()
        reg = RegistryPeer(tmp_path / "keys", pki, srv.issuer, srv.ca_file)
        ca = bundle(tmp_path / "trust.pem", srv.ca_file, pki.ca_cert)
        port = free_port()
        try:
            attach = Attach(tmp_path, "attach-pkjwt", base_args(
                tmp_path / "a", srv, ca, "--registry", reg.url, "--auth", "private_key_jwt",
                "--jwks-uri", "https://localhost:%d/jwks" % port, "--jwks-listen", "127.0.0.1:%d" % port,
                "--jwks-cert", pki.cert, "--jwks-key", pki.key))
            assert node_call(attach.port, "POST", REG + "/resource", node_doc())[0] == 201
            [client] = [c for c in srv.clients() if c["auth_method"] == "private_key_jwt"]
            assert reg.reg.owner[NODE_ID] == client["client_id"]
        finally:
            reg.stop()
    finally:
        if attach is not None:
            attach.stop()
        srv.stop()
