"""dnssd: TXT rules, advert validation, ordering and the PTR -> SRV+TXT -> A/AAAA plan."""

import itertools
import random

import pytest

from nmosauth_lite import dnssd, dnswire
from nmosauth_lite.dnssd import AdvertError, Discovery
from nmosauth_lite.dnswire import A, AAAA, PTR, SRV, TXT, Message, Question, Record

D = (b"example", b"test")
SVC = dnssd.SERVICE + D


def n(text):
    return dnswire.name_from_text(text)


# --- TXT key/value rules (RFC 6763 §6) ----------------------------------------

def test_txt_keys_case_insensitive_first_wins_and_bare_keys():
    txt = dnssd.parse_txt([b"API_Proto=https", b"api_proto=http", b"flag", b"", b"=orphan",
                           b"empty=", b"pri=1=2", b"bad\x7fkey=1"])
    assert txt == {"api_proto": b"https", "flag": None, "empty": b"", "pri": b"1=2"}


GOOD_TXT = {"api_proto": b"https", "api_ver": b"v1.0,v1.1", "pri": b"10"}


def advert(**changes):
    txt = dict(GOOD_TXT)
    for k, v in changes.items():
        if v is ...:
            txt.pop(k)
        else:
            txt[k] = v
    return txt


def test_valid_advert():
    assert dnssd.parse_advert(advert()) == ("https", ["v1.0", "v1.1"], "", 10)
    got = dnssd.parse_advert(advert(api_selector=b"x-nmos/auth/v1.0"))
    assert got[2] == "x-nmos/auth/v1.0"  # IS-10 DS-10


@pytest.mark.parametrize("changes,reason", [
    (dict(api_proto=...), "TXT api_proto missing"),  # IS-10 DS-07
    (dict(api_proto=None), "TXT api_proto missing"),  # a key without '=' has no value
    (dict(api_proto=b"HTTPS"), "TXT api_proto not http or https"),
    (dict(api_proto=b"ftp"), "TXT api_proto not http or https"),
    (dict(api_proto=b"http"), "api_proto http needs development mode"),
    (dict(api_ver=...), "TXT api_ver missing"),  # IS-10 DS-08
    (dict(api_ver=b"v1.0, v1.1"), "TXT api_ver malformed"),
    (dict(api_ver=b"v1.1,v1.0"), "TXT api_ver malformed"),  # ascending order
    (dict(api_ver=b"v1.0,v1.0"), "TXT api_ver malformed"),
    (dict(api_ver=b"1.0"), "TXT api_ver malformed"),
    (dict(api_ver=b"v1.0,"), "TXT api_ver malformed"),
    (dict(api_ver=b"v1"), "TXT api_ver malformed"),
    (dict(api_ver=b"v2.0"), "no supported api_ver"),  # IS-10 DS-12
    (dict(pri=...), "TXT pri missing"),  # IS-10 DS-09
    (dict(pri=b"-1"), "TXT pri not an integer"),
    (dict(pri=b"1.5"), "TXT pri not an integer"),
    (dict(pri=b""), "TXT pri not an integer"),
    (dict(pri=b"1" * 10), "TXT pri not an integer"),
    (dict(pri=b"100"), "pri >= 100 needs development mode"),
    (dict(pri=b"\xff"), "TXT pri not ASCII"),
])
def test_bad_adverts(changes, reason):
    with pytest.raises(AdvertError) as e:
        dnssd.parse_advert(advert(**changes))
    assert e.value.message == reason
    assert isinstance(e.value, dnswire.DNSError)


def test_dev_mode_accepts_http_and_dev_priorities():
    # IS-10 DS-07, DS-09
    assert dnssd.parse_advert(advert(api_proto=b"http", pri=b"150"), dev=True)[::3] == ("http", 150)


@pytest.mark.parametrize("sel", [b"/x-nmos/auth/v1.0", b"x-nmos/auth/", b"a//b", b"a/../b",
                                 b"..", b"a b", b"a?b", b"a#b", b"%zz", b"%4", b"a%", b"\xc3\xa9",
                                 b"x" * 256])
def test_bad_api_selector(sel):
    with pytest.raises(AdvertError):
        dnssd.parse_advert(advert(api_selector=sel))


@pytest.mark.parametrize("sel", [b"", None, b"a", b"x-nmos/auth/v1.0", b"p%20q", b"a:b@c"])
def test_good_or_absent_api_selector(sel):
    assert dnssd.parse_advert(advert(api_selector=sel))[2] == (sel or b"").decode()


# --- URLs and host names ------------------------------------------------------

def test_metadata_url():
    # IS-10 DS-06, DS-10, DS-13
    assert dnssd.metadata_url("https", "Auth.Example.com.", 443) == \
        "https://auth.example.com:443/.well-known/oauth-authorization-server"
    assert dnssd.metadata_url("https", "a.test", 8443, "x-nmos/auth/v1.0") == \
        "https://a.test:8443/.well-known/oauth-authorization-server/x-nmos/auth/v1.0"


def test_host_text():
    assert dnssd.host_text((b"Auth-1", b"Example", b"COM")) == "auth-1.example.com"
    for bad in [(b"a b", b"test"), (b"-a", b"test"), (b"a-", b"test"), (b"a_b", b"test"),
                (b"a.b", b"test")]:
        with pytest.raises(AdvertError):
            dnssd.host_text(bad)


# --- ordering ------------------------------------------------------------------

def server(name, pri, srv_priority=0):
    return dnssd.AuthServer(name, name + ".test", 443, [], "https", ["v1.0"], "", pri,
                            srv_priority=srv_priority)


def test_order_is_by_pri_then_random():
    servers = [server("c", 20), server("a", 10), server("b", 10), server("d", 5)]
    seen = set()
    for seed in range(40):
        got = [s.instance for s in dnssd.order_servers(servers, random.Random(seed).randrange)]
        assert got[0] == "d" and got[3] == "c"
        seen.add(tuple(got[1:3]))
    assert seen == {("a", "b"), ("b", "a")}  # IS-10 DS-12: random among equals


def test_order_shuffle_is_uniform_enough():
    servers = [server(x, 1) for x in "abc"]
    rng = random.Random(5)
    counts = dict.fromkeys(itertools.permutations("abc"), 0)
    for _ in range(6000):
        counts[tuple(s.instance for s in dnssd.order_servers(servers, rng.randrange))] += 1
    assert all(800 < c < 1200 for c in counts.values()), counts


def test_srv_priority_breaks_pri_ties():
    got = dnssd.order_servers([server("b", 1, 5), server("a", 1, 0)], lambda k: 0)
    assert [s.instance for s in got] == ["a", "b"]


def test_to_dict_has_exactly_the_cli_fields():
    s = dnssd.AuthServer("AS", "a.test", 443, ["192.0.2.1"], "https", ["v1.0"], "x", 3, 60, 1060)
    assert s.to_dict() == {
        "instance": "AS", "host": "a.test", "port": 443, "addresses": ["192.0.2.1"],
        "api_proto": "https", "api_ver": ["v1.0"], "api_selector": "x", "pri": 3,
        "metadata_url": "https://a.test:443/.well-known/oauth-authorization-server/x"}
    assert s.hosts == {"a.test": ["192.0.2.1"]} and s.expires == 1060


# --- the plan --------------------------------------------------------------------

def rec(name, rtype, data, ttl=120):
    return Record(n(name) if isinstance(name, str) else name, rtype, 1, ttl, data)


def reply(question, answers=(), additional=(), rcode=0):
    name, qtype = question
    return Message(1, 0x8180 | rcode, [Question(name, qtype)], list(answers), [], list(additional))


INST = n("AS\\0321._nmos-auth._tcp.example.test")
TXTS = [b"api_proto=https", b"api_ver=v1.0", b"pri=7"]


def texts(questions):
    return [(dnswire.name_to_text(q), t) for q, t in questions]


def test_plan_asks_for_what_is_missing_step_by_step():
    plan = Discovery([D])
    qs = plan.questions()
    assert texts(qs) == [("_nmos-auth._tcp.example.test", PTR)]  # IS-10 DS-01
    assert plan.questions() == []  # each question is handed out once
    plan.add_response(qs[0], reply(qs[0], [rec(SVC, PTR, INST)]))
    qs = plan.questions()
    assert texts(qs) == [("AS\\0321._nmos-auth._tcp.example.test", SRV),
                         ("AS\\0321._nmos-auth._tcp.example.test", TXT)]
    plan.add_response(qs[0], reply(qs[0], [rec(INST, SRV, (0, 0, 443, n("h.example.test")))]))
    plan.add_response(qs[1], reply(qs[1], [rec(INST, TXT, TXTS)]))
    qs = plan.questions()
    assert texts(qs) == [("h.example.test", A), ("h.example.test", AAAA)]
    plan.add_response(qs[0], reply(qs[0], [rec("h.example.test", A, "192.0.2.1", ttl=30)]))
    plan.add_response(qs[1], reply(qs[1]))
    assert plan.questions() == [] and plan.answered
    [s] = plan.results(1000, lambda k: 0)
    assert (s.instance, s.host, s.port, s.addresses, s.pri) == ("AS 1", "h.example.test", 443,
                                                                 ["192.0.2.1"], 7)
    assert s.ttl == 30 and s.expires == 1030  # the shortest TTL involved (IS-10 DS-11)
    assert s.name == "AS\\0321._nmos-auth._tcp.example.test"


def test_plan_uses_additional_records():
    plan = Discovery([D])
    [q] = plan.questions()
    plan.add_response(q, reply(q, [rec(SVC, PTR, INST)], [
        rec(INST, SRV, (0, 0, 443, n("h.example.test"))), rec(INST, TXT, TXTS),
        rec("h.example.test", AAAA, "2001:db8::1")]))
    assert plan.questions() == []  # RFC 6763 §12.1
    assert plan.results(0, lambda k: 0)[0].addresses == ["2001:db8::1"]


def test_plan_failed_question_is_not_repeated_and_not_answered():
    plan = Discovery([D])
    [q] = plan.questions()
    plan.add_response(q, None)
    assert plan.questions() == [] and not plan.answered
    plan = Discovery([D])
    [q] = plan.questions()
    plan.add_response(q, reply(q, rcode=dnswire.SERVFAIL))
    assert not plan.answered
    plan = Discovery([D])
    [q] = plan.questions()
    plan.add_response(q, reply(q, rcode=dnswire.NXDOMAIN))
    assert plan.answered and plan.results(0, lambda k: 0) == []


def _assembled(additional, dev=False):
    plan = Discovery([D], dev=dev)
    [q] = plan.questions()
    plan.add_response(q, reply(q, [rec(SVC, PTR, INST)], additional))
    while plan.questions():
        pass
    out = plan.results(0, lambda k: 0)
    return out, dict(plan.rejected)


SRV_OK = rec(INST, SRV, (0, 0, 443, n("h.example.test")))


@pytest.mark.parametrize("additional,reason", [
    ([rec(INST, TXT, TXTS)], "no SRV record"),
    ([SRV_OK], "no TXT record"),
    ([SRV_OK, rec(INST, TXT, TXTS), rec(INST, TXT, [b"pri=1"])], "more than one TXT record"),
    ([rec(INST, SRV, (0, 0, 443, ())), rec(INST, TXT, TXTS)], "SRV target '.': service not offered"),
    ([rec(INST, SRV, (0, 0, 0, n("h.test"))), rec(INST, TXT, TXTS)], "SRV port 0"),
    ([rec(INST, SRV, (0, 0, 1, n("h_x.test"))), rec(INST, TXT, TXTS)], "SRV target not a host name"),
    ([SRV_OK, rec(INST, TXT, [b"api_ver=v1.0", b"pri=1"])], "TXT api_proto missing"),
])
def test_unusable_instances_are_rejected_with_a_reason(additional, reason):
    out, rejected = _assembled(additional)
    assert out == [] and rejected == {"AS 1": reason}


def test_instance_outside_the_service_is_ignored():
    plan = Discovery([D])
    [q] = plan.questions()
    plan.add_response(q, reply(q, [rec(SVC, PTR, n("evil.other.test")),
                                   rec(SVC, PTR, n("x.y._nmos-auth._tcp.example.test"))]))
    assert plan.instances() == [] and plan.questions() == []  # RFC 6763 §4.1


def test_instances_are_bounded_and_deduplicated():
    plan = Discovery([D])
    [q] = plan.questions()
    ptrs = [rec(SVC, PTR, (b"i%d" % i,) + SVC) for i in range(dnssd.MAX_INSTANCES + 50)]
    plan.add_response(q, reply(q, ptrs + [rec(SVC, PTR, (b"I0",) + SVC)]))
    assert len(plan.instances()) == dnssd.MAX_INSTANCES
    assert len(plan.questions()) == 2 * dnssd.MAX_INSTANCES


def test_multiple_srv_records_give_one_server_each():
    out, _ = _assembled([rec(INST, TXT, TXTS), rec(INST, SRV, (1, 0, 443, n("b.example.test"))),
                         rec(INST, SRV, (0, 0, 8443, n("a.example.test")))])
    assert [(s.host, s.port) for s in out] == [("a.example.test", 8443), ("b.example.test", 443)]


def test_browse_adds_domains():
    plan = Discovery([D], browse=True)
    qs = plan.questions()
    assert texts(qs) == [("b._dns-sd._udp.example.test", PTR), ("_nmos-auth._tcp.example.test", PTR)]
    plan.add_response(qs[0], reply(qs[0], [rec(qs[0][0], PTR, n("other.test")),
                                           rec(qs[0][0], PTR, n("EXAMPLE.test"))]))
    assert texts(plan.questions()) == [("_nmos-auth._tcp.other.test", PTR)]
    assert len(plan.domains) == 2


def test_record_store_is_bounded():
    plan = Discovery([D])
    [q] = plan.questions()
    many = [rec("h%d.test" % i, A, "192.0.2.1") for i in range(dnssd.MAX_RECORDS + 10)]
    plan.add_response(q, reply(q, many))
    assert plan._stored == dnssd.MAX_RECORDS


def test_configured_domains_are_checked():
    with pytest.raises(dnswire.DNSError):
        Discovery([(b"x" * 63,) * 4])
