"""`attach` finds its Registry by unicast DNS-SD and fails over by priority (issue 19 §1; IS-04
registered operation, BCP-003-02 BCP-N-05/N-06), against a real dnsmasq on loopback: the names
exist only in DNS, so attach connects to the advertised address while TLS verifies the name.
An advert with api_auth=false (or api_proto=http) is never used, whatever its priority."""

import json
import time

import pytest

from attach_support import (DOMAIN, NODE_ID, REG, Attach, RegistryPeer, ServeProc, base_args, bundle, node_call,
                            node_doc, registry_pki)
from dns_helpers import Dnsmasq


def advert(instance, port, pri, auth="true", proto="https", vers="v1.2,v1.3"):
    name = "%s._nmos-register._tcp.%s" % (instance, DOMAIN)
    return ["ptr-record=_nmos-register._tcp.%s,%s" % (DOMAIN, name),
            "srv-host=%s,%s.%s,%d,0,0" % (name, instance, DOMAIN, port),
            'txt-record=%s,"api_proto=%s","api_ver=%s","pri=%d","api_auth=%s"' % (name, proto, vers, pri, auth),
            "host-record=%s.%s,127.0.0.1" % (instance, DOMAIN)]


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
            advert("reg3", peers[2].port, 0, auth="false") + advert("reg3h", peers[2].port, 1, proto="http")
        (tmp / "dns").mkdir()
        dns = Dnsmasq(tmp / "dns", list(dict.fromkeys(lines)), local_domains=[DOMAIN], local_ttl=1).start()
        attach = Attach(tmp, "attach", base_args(tmp / "a", srv, ca, "--domain", DOMAIN, "--nameserver",
                                                 "127.0.0.1:%d" % dns.port, "--registry-timeout", "5"))
        yield {"attach": attach, "peers": peers}
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
    assert reg3.reg.authorization == []  # api_auth=false and http adverts never get a request (or a token)
    assert "failed" in attach.stderr()


def test_a_registry_without_the_nodes_api_version_is_skipped(world):
    # the Node asks for v1.0: no advert offers it, so nothing is sent anywhere (IS-04: api_ver)
    attach, peers = world["attach"], world["peers"]
    before = [len(p.reg.authorization) for p in peers if p.thread is not None]
    status, headers, body = node_call(attach.port, "POST", "/x-nmos/registration/v1.0/resource", node_doc())
    assert status == 503 and headers["Retry-After"] and json.loads(body)["code"] == 503
    assert [len(p.reg.authorization) for p in peers if p.thread is not None] == before
