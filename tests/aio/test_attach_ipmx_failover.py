"""`attach --profile ipmx` finds its Registry by unicast DNS-SD against a real dnsmasq on loopback:
only adverts with api_auth=false (TR-10-SEC SEC-76) and api_proto=https (SEC-78, SEC-79) are
used, lowest pri first, failing over to the next as under IS-10 (IS-04 registered operation). An
api_auth=true advert (an IS-10 Registry) never gets a request, whatever its priority; the plan
level shows the reverse for the is-10 profile (and test_attach_failover.py end to end)."""

import pytest

from attach_support import (DOMAIN, NODE_ID, REG, Attach, TlsRegistryPeer, advert, ipmx_args, node_call, node_doc,
                            registry_pki)
from dns_helpers import Dnsmasq
from tls_helpers import make_client_leaf

from nmosauth_lite import dnswire
from nmosauth_lite.registry_advert import IpmxRegistryDiscovery, RegistryDiscovery


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attach-ipmx-dnssd")
    pki = registry_pki(tmp / "pki")
    cert, key = make_client_leaf(pki, "device", "encoder-7." + DOMAIN)
    peers, dns, attach = [], None, None
    try:
        for _ in range(3):
            peers.append(TlsRegistryPeer(pki, client_ca=pki.ca_cert))  # RAP 2 Registries (SEC-79)
        # reg3 says api_auth=true (an IS-10 Registry) at the best priority; reg3h is plain HTTP (RAP 0)
        lines = advert("reg2", peers[1].port, 20, auth="false") + advert("reg1", peers[0].port, 10, auth="false") + \
            advert("reg3", peers[2].port, 0) + advert("reg3h", peers[2].port, 1, auth="false", proto="http")
        (tmp / "dns").mkdir()
        dns = Dnsmasq(tmp / "dns", list(dict.fromkeys(lines)), local_domains=[DOMAIN], local_ttl=1).start()
        attach = Attach(tmp, "attach", ipmx_args(pki.ca_cert, "--rap", 2, "--client-cert", cert, "--client-key", key,
                                                 "--domain", DOMAIN, "--nameserver", "127.0.0.1:%d" % dns.port,
                                                 "--registry-timeout", "5"))
        yield {"attach": attach, "peers": peers}
    finally:
        if attach is not None:
            attach.stop()
        if dns is not None:
            dns.stop()
        for p in peers:
            p.stop()


def test_ipmx_uses_api_auth_false_adverts_by_pri_and_fails_over(world):
    attach, (reg1, reg2, reg3) = world["attach"], world["peers"]
    assert attach.info["registry"] == "dns-sd" and attach.info["profile"] == "ipmx"
    assert node_call(attach.port, "POST", REG + "/resource", node_doc())[0] == 201
    assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
    assert reg1.reg.owner[NODE_ID] == "encoder-7." + DOMAIN and not reg2.reg.seen
    reg1.stop()  # the pri 10 Registry goes away: the next calls go to pri 20 (IS-04 failover)
    assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 404  # re-register there
    assert node_call(attach.port, "POST", REG + "/resource", node_doc())[0] == 201
    assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
    assert NODE_ID in reg2.reg.owner and set(reg2.reg.authorization) == {None}  # SEC-75: no token
    # SEC-76: the api_auth=true advert (pri 0) and the plain-HTTP one (pri 1) never got a request
    assert reg3.reg.seen == []


def _plan_answer(plan_class):
    domain = (b"studio", b"test")
    svc = (b"_nmos-register", b"_tcp") + domain
    records = []
    for label, auth in ((b"is10", b"true"), (b"ipmx", b"false")):
        inst, host = (label,) + svc, (label,) + domain
        records += [dnswire.Record(svc, dnswire.PTR, 1, 60, inst),
                    dnswire.Record(inst, dnswire.SRV, 1, 60, (0, 0, 443, host)),
                    dnswire.Record(inst, dnswire.TXT, 1, 60, [b"api_proto=https", b"api_ver=v1.3", b"pri=10",
                                                               b"api_auth=" + auth]),
                    dnswire.Record(host, dnswire.A, 1, 60, "192.0.2.1")]
    plan = plan_class([domain])
    [q] = plan.questions()
    plan.add_response(q, dnswire.parse_message(dnswire.build_message(
        dnswire.Message(id=1, flags=0x8400, answers=records))))
    return [r.instance for r in plan.results(100, lambda n: 0)]


def test_each_profile_keeps_only_its_own_api_auth():
    assert _plan_answer(IpmxRegistryDiscovery) == ["ipmx"]  # TR-10-SEC SEC-76
    assert _plan_answer(RegistryDiscovery) == ["is10"]  # BCP-003-02 BCP-N-06, unchanged
