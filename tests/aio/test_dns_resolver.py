"""The asyncio DNS resolver and discovery against a real dnsmasq and a hostile fake server."""

import asyncio
import glob
import json
import os
import random
import subprocess
import sys
import time

import dns.flags
import dns.message
import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:  # tests/ holds the shared DNS helpers
    sys.path.insert(0, TESTS)
from dns_helpers import (Dnsmasq, FakeDNS, answer, assert_same_as_dnspython,  # noqa: E402
                         find_dnsmasq, free_port, raw_query)

from nmosauth_lite import dnssd, dnswire  # noqa: E402
from nmosauth_lite.aio import dns as adns  # noqa: E402
from nmosauth_lite.errors import ConfigError  # noqa: E402

REPO = os.path.dirname(TESTS)
VECTORS = os.path.join(REPO, "tests", "vectors", "dns")
SVC = "_nmos-auth._tcp"
BIG = 40  # instances in big.test: their PTR answer does not fit 1232 bytes


def _instance(domain, label, host=None, port=443, txt=None, srv_prio=0):
    name = "%s.%s.%s" % (label, SVC, domain)
    lines = ['ptr-record=%s.%s,"%s"' % (SVC, domain, name)]
    if host:
        lines.append('srv-host="%s",%s,%d,%d,0' % (name, host, port, srv_prio))
    if txt is not None:
        lines.append('txt-record="%s",%s' % (name, ",".join('"%s"' % t for t in txt)))
    return lines


def _txt(pri, proto="https", ver="v1.0", selector=None):
    out = ["api_proto=" + proto, "api_ver=" + ver, "pri=%s" % pri]
    return out + (["api_selector=" + selector] if selector is not None else [])


def zone():
    d = "nmos.test"
    lines = []
    lines += _instance(d, "as-primary", "auth1.nmos.test", 443, _txt(10))
    lines += _instance(d, "as-secondary", "auth2.nmos.test", 8443, _txt(10, ver="v1.0,v1.1",
                                                                        selector="x-nmos/auth/v1.0"))
    lines += _instance(d, "as-v6only", "auth6.nmos.test", 443, _txt(20))
    # RFC 6763 §6: keys are case-insensitive, the first occurrence wins.
    lines += _instance(d, "My AS", "AUTH4.nmos.test", 443,
                       ["API_PROTO=https", "Api_Ver=v1.0", "PRI=30", "pri=1"])
    lines += _instance(d, "as-backup", "auth3.nmos.test", 443, _txt(50))
    lines += _instance(d, "as-dev", "authdev.nmos.test", 443, _txt(100))  # IS-10 DS-09
    lines += _instance(d, "as-plain", "authhttp.nmos.test", 80, _txt(5, proto="http"))
    lines += _instance(d, "as-future", "auth1.nmos.test", 443, _txt(1, ver="v2.0"))
    lines += _instance(d, "as-nopri", "auth1.nmos.test", 443, ["api_proto=https", "api_ver=v1.0"])
    lines += _instance(d, "as-noproto", "auth1.nmos.test", 443, ["api_ver=v1.0", "pri=1"])
    lines += _instance(d, "as-notxt", "auth1.nmos.test", 443, None)
    lines += [
        "host-record=auth1.nmos.test,192.0.2.1,2001:db8::1",
        "host-record=auth2.nmos.test,192.0.2.2",
        "host-record=auth3.nmos.test,192.0.2.3,60",
        "host-record=auth4.nmos.test,192.0.2.4",
        "host-record=auth6.nmos.test,2001:db8::6",
        "host-record=authdev.nmos.test,192.0.2.100",
        "host-record=authhttp.nmos.test,192.0.2.80",
        # RFC 6763 §11: browsing nmos.test also finds other.test
        "ptr-record=b._dns-sd._udp.nmos.test,other.test",
    ]
    lines += _instance("other.test", "as-other", "auth1.nmos.test", 443, _txt(40))
    for i in range(BIG):
        lines += _instance("big.test", "authorization-server-instance-number-%02d" % i,
                           "auth-big.big.test", 443, _txt(10 + i))
    lines.append("host-record=auth-big.big.test,192.0.2.50")
    return lines


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory):
    server = Dnsmasq(tmp_path_factory.mktemp("dnsmasq"), zone(),
                     local_domains=["nmos.test", "other.test", "big.test", "empty.test"])
    server.start()
    yield server
    server.stop()


def run(coro):
    return asyncio.run(coro)


def discover(dnsmasq, **kw):
    kw.setdefault("domains", ["nmos.test"])
    kw.setdefault("timeout", 2.0)
    kw.setdefault("attempts", 2)
    return run(adns.discover(nameservers=[dnsmasq.server], **kw))


# --- against dnsmasq --------------------------------------------------------

def test_dnsmasq_is_installed():
    # CI installs dnsmasq-base (tools/sysdeps.sh); a missing binary must fail, not skip.
    assert os.access(find_dnsmasq(), os.X_OK)


def test_finds_and_orders_usable_servers(dnsmasq):
    found = discover(dnsmasq)
    names = [s.instance for s in found]
    # IS-10 DS-12: pri ascending, http / pri >= 100 / unknown api_ver / bad TXT dropped
    assert sorted(names[:2]) == ["as-primary", "as-secondary"]
    assert names[2:] == ["as-v6only", "my as", "as-backup"]
    assert [s.pri for s in found] == [10, 10, 20, 30, 50]


def test_results_carry_addresses_urls_and_ttls(dnsmasq):
    by = {s.instance: s for s in discover(dnsmasq)}
    one, two = by["as-primary"], by["as-secondary"]
    assert one.host == "auth1.nmos.test" and one.port == 443
    assert one.addresses == ["192.0.2.1", "2001:db8::1"]
    assert one.hosts == {"auth1.nmos.test": ["192.0.2.1", "2001:db8::1"]}
    # IS-10 DS-06, DS-10, DS-13
    assert one.metadata_url == "https://auth1.nmos.test:443/.well-known/oauth-authorization-server"
    assert two.metadata_url == ("https://auth2.nmos.test:8443/.well-known/"
                                "oauth-authorization-server/x-nmos/auth/v1.0")
    assert two.api_ver == ["v1.0", "v1.1"] and two.api_selector == "x-nmos/auth/v1.0"
    assert by["my as"].host == "auth4.nmos.test" and by["my as"].pri == 30  # first key wins
    assert by["as-backup"].ttl == 60 and one.ttl == 300  # the shortest TTL involved
    assert abs(one.expires - (time.time() + 300)) < 30


def test_aaaa_only_host(dnsmasq):
    by = {s.instance: s for s in discover(dnsmasq)}
    assert by["as-v6only"].addresses == ["2001:db8::6"]


def test_dev_mode_admits_http_and_dev_priorities(dnsmasq):
    found = discover(dnsmasq, dev=True)
    assert found[0].instance == "as-plain" and found[0].api_proto == "http"  # IS-10 DS-07
    assert found[-1].instance == "as-dev" and found[-1].pri == 100  # IS-10 DS-09
    assert "as-future" not in [s.instance for s in found]


def test_equal_priorities_are_shuffled_by_injected_randomness(dnsmasq):
    firsts = {discover(dnsmasq, rng=random.Random(seed))[0].instance for seed in range(12)}
    assert firsts == {"as-primary", "as-secondary"}
    a = [s.instance for s in discover(dnsmasq, rng=random.Random(7))]
    assert a == [s.instance for s in discover(dnsmasq, rng=random.Random(7))]


def test_unusable_adverts_are_reported(dnsmasq):
    resolver = adns.Resolver([dnsmasq.server], timeout=2.0, attempts=1)
    plan = run(adns.run_discovery(resolver, ["nmos.test"]))
    plan.results(0, random.Random(1).randrange)
    reasons = dict(plan.rejected)
    assert reasons["as-nopri"] == "TXT pri missing"
    assert reasons["as-noproto"] == "TXT api_proto missing"
    assert reasons["as-notxt"] == "no TXT record"
    assert reasons["as-future"] == "no supported api_ver"
    assert reasons["as-dev"] == "pri >= 100 needs development mode"


def test_truncated_answer_is_retried_over_tcp(dnsmasq):
    resolver = adns.Resolver([dnsmasq.server], timeout=2.0, attempts=1)
    found = run(adns.discover(domains=["big.test"], resolver=resolver, rng=random.Random(1)))
    assert len(found) == BIG
    assert [s.pri for s in found] == list(range(10, 10 + BIG))
    assert resolver.stats["tcp"] >= 1


def test_browse_domains_are_followed_when_asked(dnsmasq):
    assert "as-other" not in [s.instance for s in discover(dnsmasq)]
    assert "as-other" in [s.instance for s in discover(dnsmasq, browse=True)]


def test_nothing_advertised_gives_empty_list(dnsmasq):
    assert discover(dnsmasq, domains=["empty.test"]) == []


def test_search_domains_and_options_from_resolv_conf(dnsmasq, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# test\nnameserver 192.0.2.53\nsearch nmos.test\noptions timeout:1 attempts:1\n")
    resolver = adns.Resolver([dnsmasq.server], resolv_conf=str(conf))
    found = run(adns.discover(resolver=resolver))
    assert resolver.search == ["nmos.test"] and resolver.timeout == 1.0 and resolver.attempts == 1
    assert resolver.nameservers == [dnsmasq.server]  # the override wins
    assert len(found) == 5


def test_live_answers_parse_like_dnspython(dnsmasq):
    for name, rdtype in [(SVC + ".nmos.test", "PTR"), ("as-primary.%s.nmos.test" % SVC, "SRV"),
                         ("as-secondary.%s.nmos.test" % SVC, "TXT"), ("auth1.nmos.test", "AAAA"),
                         ("auth1.nmos.test", "A"), ("missing.nmos.test", "A"),
                         (SVC + ".big.test", "PTR")]:
        wire = raw_query(dnsmasq.port, name, rdtype, timeout=2.0)
        assert wire is not None
        assert_same_as_dnspython(wire)


# --- the CLI, end to end ----------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "nmosauth_lite", "discover", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cli_prints_servers_in_try_order(dnsmasq):
    p = cli("--domain", "nmos.test", "--nameserver", "127.0.0.1:%d" % dnsmasq.port, "--timeout", "2")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [s["pri"] for s in out] == [10, 10, 20, 30, 50]
    assert list(out[0]) == ["instance", "host", "port", "addresses", "api_proto", "api_ver",
                            "api_selector", "pri", "metadata_url"]


def test_cli_dev_flag(dnsmasq):
    p = cli("--domain", "nmos.test", "--nameserver", "127.0.0.1:%d" % dnsmasq.port, "--dev")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["api_proto"] == "http"


def test_cli_exit_1_when_none_found(dnsmasq):
    p = cli("--domain", "empty.test", "--nameserver", "127.0.0.1:%d" % dnsmasq.port)
    assert p.returncode == 1 and json.loads(p.stdout) == []


@pytest.mark.parametrize("args", [
    ["--nameserver", "not-an-ip"],
    ["--nameserver", "127.0.0.1:99999"],
    ["--timeout", "-1"],
    ["--timeout", "soon"],
    ["--domain", "a..b", "--nameserver", "127.0.0.1"],
    ["--bogus"],
])
def test_cli_usage_errors_exit_2_with_one_line(args):
    p = cli(*args)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    # one message line (argparse adds a usage line before its own)
    assert len([x for x in p.stderr.splitlines() if x.startswith("nmosauth-lite")]) == 1


# --- hostile and odd peers (in-process fake server) -------------------------

SHORT = dict(timeout=0.3, attempts=1)


def _wire(response):
    return response.to_wire()


def _patch_id(wire, qid):
    return qid.to_bytes(2, "big") + wire[2:]


def _ptr_answer(query):
    return answer(query, SVC + ".x.test. 60 IN PTR a." + SVC + ".x.test.")


def query_fake(handler, tcp_handler=None, nameservers=None, **kw):
    async def go():
        async with FakeDNS(handler, tcp_handler) as fake:
            res = adns.Resolver(nameservers or [fake.server], **(kw or SHORT))
            try:
                return await res.query(SVC + ".x.test", dnswire.PTR), fake, res
            except adns.ResolverError as e:
                return e, fake, res
    return run(go())


def test_accepts_matching_answer_after_wrong_id_and_wrong_question():
    def handler(q, wire, proto):
        good = _wire(_ptr_answer(q))
        other_q = dns.message.make_query("other.x.test", "PTR")
        other_q.id = q.id
        return [_patch_id(good, q.id ^ 1), _wire(_ptr_answer(other_q)), good]
    msg, fake, res = query_fake(handler)
    assert isinstance(msg, dnswire.Message) and len(msg.answers) == 1
    assert res.stats["ignored"] == 2  # RFC 5452 §9: ID and question must match


def test_answer_from_another_port_is_ignored():
    msg, fake, res = query_fake(lambda q, w, p: [("other-port", _wire(_ptr_answer(q)))])
    assert isinstance(msg, adns.ResolverError)
    msg, fake, res = query_fake(lambda q, w, p: [("other-port", _wire(_ptr_answer(q))),
                                                 _wire(_ptr_answer(q))])
    assert isinstance(msg, dnswire.Message)


def _raw(w, rr):
    """An answer to query `w` (ours: header, question, 11-byte OPT) with one raw record."""
    return w[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + w[12:-11] + rr


def _pointer_loop(q, w, p):
    at = len(w) - 11  # where the answer record starts: its owner points to itself
    return [_raw(w, bytes([0xC0, at]) + b"\x00\x0c\x00\x01\x00\x00\x00\x3c\x00\x02\xc0\x0c")]


def _truncated_rdata(q, w, p):
    # PTR with RDLENGTH 16 and the message ending 4 octets into the RDATA
    return [_raw(w, b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x00\x3c\x00\x10\x01a\xc0\x0c")]


def _oversize_label(q, w, p):
    name = b"\x40" + b"a" * 64 + b"\x00"  # RFC 1035 §2.3.4: labels are 63 octets at most
    return [_raw(w, b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x00\x3c"
                 + len(name).to_bytes(2, "big") + name)]


def _long_name(q, w, p):
    name = (b"\x3f" + b"a" * 63) * 4 + b"\x00"  # 257 octets
    return [_raw(w, b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x00\x3c"
                 + len(name).to_bytes(2, "big") + name)]


def _garbage(q, w, p):
    return [w[:2] + b"\x81\x80" + os.urandom(40)]


@pytest.mark.parametrize("handler", [_pointer_loop, _truncated_rdata, _oversize_label, _long_name,
                                     _garbage])
def test_hostile_answers_are_ignored_and_the_query_times_out(handler):
    t0 = time.monotonic()
    msg, fake, res = query_fake(handler)
    assert isinstance(msg, adns.ResolverError)
    assert res.stats["ignored"] >= 1
    assert time.monotonic() - t0 < 3


def test_truncated_udp_answer_is_retried_over_tcp():
    def udp(q, w, p):
        return [_wire(answer(q, flags_add=dns.flags.TC))]
    msg, fake, res = query_fake(udp, lambda q, w, p: [_wire(_ptr_answer(q))])
    assert isinstance(msg, dnswire.Message) and len(msg.answers) == 1
    assert [t for t, _, _ in fake.queries] == ["udp", "tcp"]


def test_tcp_answer_with_wrong_id_is_refused():
    def udp(q, w, p):
        return [_wire(answer(q, flags_add=dns.flags.TC))]
    msg, fake, res = query_fake(udp, lambda q, w, p: [_patch_id(_wire(_ptr_answer(q)), q.id ^ 7)])
    assert isinstance(msg, adns.ResolverError)


def test_silent_server_is_asked_attempts_times_within_bounds():
    t0 = time.monotonic()
    msg, fake, res = query_fake(lambda q, w, p: [], timeout=0.2, attempts=3)
    assert isinstance(msg, adns.ResolverError)
    assert len(fake.queries) == 3
    assert time.monotonic() - t0 < 2


def test_servfail_moves_on_to_the_next_server():
    async def go():
        async with FakeDNS(lambda q, w, p: [_wire(answer(q, rcode=2))]) as bad, \
                FakeDNS(lambda q, w, p: [_wire(_ptr_answer(q))]) as good:
            res = adns.Resolver([bad.server, good.server], **SHORT)
            return await res.query(SVC + ".x.test", dnswire.PTR), bad, good
    msg, bad, good = run(go())
    assert msg.rcode == 0 and len(bad.queries) == 1 and len(good.queries) == 1


def test_closed_port_fails_fast():
    t0 = time.monotonic()
    res = adns.Resolver([("127.0.0.1", free_port())], timeout=5.0, attempts=2)
    with pytest.raises(adns.ResolverError):
        run(res.query("x.test", dnswire.A))
    assert time.monotonic() - t0 < 4  # ICMP port unreachable, no 10 s wait


def test_queries_use_random_ids_source_ports_and_edns():
    seen = []

    def handler(q, w, p):
        seen.append((q.id, q.payload, q.edns))
        return [_wire(_ptr_answer(q))]

    async def go():
        async with FakeDNS(handler) as fake:
            res = adns.Resolver([fake.server], **SHORT)
            for _ in range(16):
                await res.query(SVC + ".x.test", dnswire.PTR)
            return fake
    fake = run(go())
    assert len({qid for qid, _, _ in seen}) >= 12
    assert len({addr[1] for _, _, addr in fake.queries}) >= 8
    assert {(payload, edns) for _, payload, edns in seen} == {(1232, 0)}


def test_discovery_uses_additional_records_without_more_queries():
    inst = "a.%s.x.test." % SVC

    def handler(q, w, p):
        return [_wire(answer(q, "%s.x.test. 60 IN PTR %s" % (SVC, inst),
                             "+%s 60 IN SRV 0 0 443 h.x.test." % inst,
                             '+%s 60 IN TXT "api_proto=https" "api_ver=v1.0" "pri=3"' % inst,
                             "+h.x.test. 30 IN A 192.0.2.9"))]

    async def go():
        async with FakeDNS(handler) as fake:
            res = adns.Resolver([fake.server], **SHORT)
            return await adns.discover(["x.test"], resolver=res), fake
    found, fake = run(go())
    assert len(fake.queries) == 1
    assert [s.to_dict()["addresses"] for s in found] == [["192.0.2.9"]]
    assert found[0].ttl == 30


def test_discover_raises_when_no_server_answers():
    async def go():
        async with FakeDNS(lambda q, w, p: []) as fake:
            return await adns.discover(["x.test"], nameservers=[fake.server], timeout=0.2,
                                       attempts=1)
    with pytest.raises(adns.ResolverError):
        run(go())


# --- configuration ----------------------------------------------------------

def test_parse_resolv_conf():
    conf = adns.parse_resolv_conf(
        "; comment\nnameserver 10.0.0.1\nnameserver ::1\nnameserver bogus\n"
        "nameserver 10.0.0.2\nnameserver 10.0.0.3\ndomain a.test\nsearch b.test c.test\n"
        "options ndots:2 timeout:99 attempts:0\n")
    assert conf["nameservers"] == [("10.0.0.1", 53), ("::1", 53), ("10.0.0.2", 53)]
    assert conf["search"] == ["b.test", "c.test"]  # the last of domain/search wins
    assert conf["timeout"] == 30.0 and conf["attempts"] == 1


@pytest.mark.parametrize("text,want", [
    ("192.0.2.1", ("192.0.2.1", 53)), ("192.0.2.1:5353", ("192.0.2.1", 5353)),
    ("::1", ("::1", 53)), ("[::1]:5353", ("::1", 5353)), ("[2001:db8::1]", ("2001:db8::1", 53)),
])
def test_parse_nameserver(text, want):
    assert adns.parse_nameserver(text) == want


@pytest.mark.parametrize("text", ["", "host.test", "1.2.3.4:0", "1.2.3.4:x", "[::1", "[::1]x"])
def test_parse_nameserver_rejects(text):
    with pytest.raises(ConfigError):
        adns.parse_nameserver(text)


def test_missing_nameserver_is_a_config_error(tmp_path):
    res = adns.Resolver(resolv_conf=str(tmp_path / "absent"))
    with pytest.raises(ConfigError):
        run(adns.discover(["x.test"], resolver=res))
    res = adns.Resolver([("127.0.0.1", 53)], resolv_conf=str(tmp_path / "absent"))
    with pytest.raises(ConfigError):  # and no search domain either
        run(adns.discover(resolver=res))


# --- the cache for the key store and the OAuth client -----------------------

def _server(name, pri, ttl):
    return dnssd.AuthServer(name, name + ".test", 443, ["192.0.2.1"], "https", ["v1.0"], "",
                            pri, ttl, 0, name + "." + SVC + ".test")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_cache_requeries_when_the_ttl_runs_out():
    clock, calls = FakeClock(), []

    async def fake_discover(**kw):
        calls.append(kw)
        return [_server("a", 1, 60), _server("b", 2, 120)]

    async def go():
        cache = adns.DiscoveryCache(fake_discover, clock=clock, domains=["x.test"])
        await cache.get()
        clock.now += 59
        await cache.get()
        assert len(calls) == 1
        clock.now += 1  # IS-10 DS-11: respect the DNS TTL
        await cache.get()
        assert len(calls) == 2 and calls[0] == {"domains": ["x.test"]}
    run(go())


def test_cache_moves_failed_server_back_and_requeries():
    clock, calls = FakeClock(), []

    async def fake_discover(**kw):
        calls.append(1)
        return [_server("a", 1, 600), _server("b", 2, 600)]

    async def go():
        cache = adns.DiscoveryCache(fake_discover, clock=clock, failed_hold=30)
        first = await cache.get()
        cache.mark_failed(first[0])
        assert [s.instance for s in await cache.get()] == ["b", "a"]
        assert len(calls) == 1  # not again within MIN_REQUERY
        clock.now += adns.MIN_REQUERY
        assert [s.instance for s in await cache.get()] == ["b", "a"]
        assert len(calls) == 2
        clock.now += 30
        assert [s.instance for s in await cache.get()] == ["a", "b"]
        assert cache.address_map() == {"a.test": ["192.0.2.1"], "b.test": ["192.0.2.1"]}
    run(go())


def test_cache_keeps_last_good_list_when_dns_fails():
    clock, state = FakeClock(), {"fail": False}

    async def fake_discover(**kw):
        if state["fail"]:
            raise adns.ResolverError("down")
        return [_server("a", 1, 10)]

    async def go():
        cache = adns.DiscoveryCache(fake_discover, clock=clock)
        assert len(await cache.get()) == 1
        state["fail"] = True
        clock.now += 11
        assert len(await cache.get()) == 1
        fresh = adns.DiscoveryCache(fake_discover, clock=clock)
        with pytest.raises(adns.ResolverError):
            await fresh.get()
    run(go())


def test_cache_single_flight():
    calls = []

    async def fake_discover(**kw):
        calls.append(1)
        await asyncio.sleep(0.05)
        return [_server("a", 1, 60)]

    async def go():
        cache = adns.DiscoveryCache(fake_discover)
        await asyncio.gather(*(cache.get() for _ in range(5)))
    run(go())
    assert len(calls) == 1


def test_stored_captures_exist():
    assert len(glob.glob(os.path.join(VECTORS, "dnsmasq-*.hex"))) >= 4
