"""registry_advert on the device lane: IS-04 `_nmos-register._tcp` TXT rules and the plan."""

import harness
from nmosauth_lite import dnswire, registry_advert
from nmosauth_lite.dnssd import AdvertError
from nmosauth_lite.dnswire import A, PTR, SRV, TXT, Message, Record

OK = {"api_proto": b"https", "api_ver": b"v1.2,v1.3", "pri": b"10", "api_auth": b"true"}


def check_txt_rules():
    harness.eq(registry_advert.parse_registry_advert(OK), ("https", ["v1.2", "v1.3"], 10, True), "ok")
    for key, value in (("api_proto", b"http"), ("api_auth", b"false"), ("api_auth", b"TRUE"), ("pri", b"100"),
                       ("api_ver", b"1.3"), ("api_ver", b"v1.3,"), ("pri", b"x")):
        bad = dict(OK)
        bad[key] = value
        harness.raises(AdvertError, registry_advert.parse_registry_advert, bad)
    for key in ("api_proto", "api_ver", "pri", "api_auth"):  # every key is required
        bad = dict(OK)
        del bad[key]
        harness.raises(AdvertError, registry_advert.parse_registry_advert, bad)
    dev = dict(OK)
    dev["pri"] = b"100"
    harness.eq(registry_advert.parse_registry_advert(dev, True)[2], 100, "dev pri")
    http = dict(OK)
    http["api_proto"] = b"http"
    harness.raises(AdvertError, registry_advert.parse_registry_advert, http, True)  # never, not even dev


def check_ipmx_txt_rules_want_api_auth_false():
    # TR-10-SEC SEC-76: an IPMX Registry advertises api_auth=false; api_proto https (SEC-78, SEC-79)
    ipmx = dict(OK)
    ipmx["api_auth"] = b"false"
    harness.eq(registry_advert.parse_registry_advert(ipmx, False, False), ("https", ["v1.2", "v1.3"], 10, False),
               "ipmx ok")
    harness.raises(AdvertError, registry_advert.parse_registry_advert, OK, False, False)  # api_auth=true
    http = dict(ipmx)
    http["api_proto"] = b"http"
    harness.raises(AdvertError, registry_advert.parse_registry_advert, http, True, False)  # RAP 0: never


def _answer(domain):
    svc = registry_advert.SERVICE + domain
    out = []
    for label, pri, auth, port, addr in ((b"reg-b", b"20", b"true", 3211, "192.0.2.11"),
                                         (b"reg-a", b"10", b"true", 3210, "192.0.2.10"),
                                         (b"open", b"0", b"false", 80, "192.0.2.80")):
        inst = (label,) + svc
        host = (label,) + domain
        out.append(Record(svc, PTR, 1, 60, inst))
        out.append(Record(inst, SRV, 1, 60, (0, 0, port, host)))
        out.append(Record(inst, TXT, 1, 60, [b"api_proto=https", b"api_ver=v1.3", b"pri=" + pri, b"api_auth=" + auth]))
        out.append(Record(host, A, 1, 60, addr))
    return Message(id=1, flags=0x8400, answers=out)


def check_plan_orders_by_pri_and_drops_api_auth_false():
    domain = (b"studio", b"test")
    plan = registry_advert.RegistryDiscovery([domain])
    [q] = plan.questions()
    harness.eq(dnswire.name_to_text(q[0]), "_nmos-register._tcp.studio.test", "question")
    plan.add_response(q, dnswire.parse_message(dnswire.build_message(_answer(domain))))
    harness.eq(plan.questions(), [], "nothing more to ask")
    got = plan.results(100, lambda n: 0)
    harness.eq([(r.host, r.port, r.pri) for r in got], [("reg-a.studio.test", 3210, 10), ("reg-b.studio.test", 3211, 20)],
               "order")
    harness.eq(got[0].base, "https://reg-a.studio.test:3210", "base")
    harness.eq(got[0].addresses, ["192.0.2.10"], "addresses")
    harness.eq([r for r, _ in plan.rejected], ["open"], "api_auth=false rejected")
    harness.true(got[0].offers("v1.3") and not got[0].offers("v1.2") and got[0].offers(None), "offers")


def check_ipmx_plan_keeps_only_api_auth_false():
    domain = (b"studio", b"test")
    plan = registry_advert.IpmxRegistryDiscovery([domain])
    [q] = plan.questions()
    plan.add_response(q, dnswire.parse_message(dnswire.build_message(_answer(domain))))
    got = plan.results(100, lambda n: 0)
    harness.eq([(r.host, r.port) for r in got], [("open.studio.test", 80)], "only the api_auth=false advert")
    harness.eq(sorted([r for r, _ in plan.rejected]), ["reg-a", "reg-b"], "api_auth=true rejected")
