"""dnssd on the device lane: TXT rules, advert checks, ordering and the discovery plan."""

import harness
from nmosauth_lite import dnssd, dnswire
from check_dnswire import packet


def check_txt_rules():
    txt = dnssd.parse_txt([b"API_Proto=https", b"api_proto=http", b"flag", b"", b"=x"])
    harness.eq(txt, {"api_proto": b"https", "flag": None}, "RFC 6763 section 6")


def check_adverts():
    ok = {"api_proto": b"https", "api_ver": b"v1.0,v1.1", "pri": b"10",
          "api_selector": b"x-nmos/auth/v1.0"}
    harness.eq(dnssd.parse_advert(ok), ("https", ["v1.0", "v1.1"], "x-nmos/auth/v1.0", 10), "ok")
    for key, value in (("api_proto", b"http"), ("pri", b"100"), ("api_ver", b"v1.1,v1.0"),
                       ("api_selector", b"/x"), ("pri", b"-1")):
        bad = dict(ok)
        bad[key] = value
        harness.raises(dnssd.AdvertError, dnssd.parse_advert, bad)
    dev = dict(ok)
    dev["pri"] = b"100"
    harness.eq(dnssd.parse_advert(dev, True)[3], 100, "dev pri")


def check_order_and_url():
    mk = lambda name, pri: dnssd.AuthServer(name, "h.test", 443, [], "https", ["v1.0"], "", pri)
    got = dnssd.order_servers([mk("b", 2), mk("a", 1), mk("c", 1)], lambda n: 0)
    harness.eq([s.instance for s in got], ["c", "a", "b"], "order")
    harness.eq(got[0].metadata_url, "https://h.test:443/.well-known/oauth-authorization-server", "url")


def check_plan_with_additional_records():
    msg = dnswire.parse_message(packet("synthetic-dnssd-additional"))
    plan = dnssd.Discovery([(b"example", b"com")])
    [q] = plan.questions()
    plan.add_response(q, msg)
    harness.eq(plan.questions(), [], "nothing more to ask")
    [s] = plan.results(100, lambda n: 0)
    harness.eq((s.instance, s.host, s.port, s.pri), ("My AS.1", "auth.example.com", 443, 10), "server")
    harness.eq(s.addresses, ["192.0.2.7", "2001:db8::7"], "addresses")
    harness.eq((s.ttl, s.expires), (60, 160), "ttl")
