"""`as zone` output read by real DNS software: dnspython parses the BIND text, and a real dnsmasq
serving the dnsmasq lines answers the DNS-SD queries a client makes (IS-10 DS-01, DS-03, DS-06..DS-10)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from nmosauth_lite.authserver.zone import ZoneRecords

DOMAIN = "studio.example.com"


def _records(**kw):
    args = dict(domain=DOMAIN, host="auth", port=8443, addresses=["192.0.2.10", "2001:db8::10"], pri=10)
    args.update(kw)
    return ZoneRecords(**args)


def _txt(rdata):
    return [s.decode() for s in rdata.strings]


def test_bind_text_is_a_valid_zone_with_the_dns_sd_records():
    text = "$TTL 3600\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\n" + _records().bind()
    z = dns.zone.from_text(text, origin=DOMAIN, relativize=False, check_origin=True)
    ptr = z.find_rdataset("_nmos-auth._tcp." + DOMAIN + ".", "PTR")
    inst = "nmosauth-lite._nmos-auth._tcp.%s." % DOMAIN
    assert [r.target.to_text() for r in ptr] == [inst]  # DS-01
    (srv,) = z.find_rdataset(inst, "SRV")
    assert (srv.priority, srv.port, srv.target.to_text()) == (10, 8443, "auth.%s." % DOMAIN)  # DS-03, DS-09
    (txt,) = z.find_rdataset(inst, "TXT")
    assert _txt(txt) == ["api_proto=https", "api_ver=v1.0", "api_selector=x-nmos/auth/v1.0", "pri=10"]
    assert [r.address for r in z.find_rdataset("auth.%s." % DOMAIN, "A")] == ["192.0.2.10"]  # DS-03
    assert [r.address for r in z.find_rdataset("auth.%s." % DOMAIN, "AAAA")] == ["2001:db8::10"]
    enum = z.find_rdataset("_services._dns-sd._udp.%s." % DOMAIN, "PTR")
    assert [r.target.to_text() for r in enum] == ["_nmos-auth._tcp.%s." % DOMAIN]


def test_empty_issuer_path_has_no_api_selector():
    assert "api_selector" not in " ".join(_records(issuer_path="").txt())  # DS-10


@pytest.mark.parametrize("kw", [{"domain": "bad domain"}, {"port": 0}, {"pri": -1}, {"proto": "ftp"},
                                {"addresses": ["not-an-ip"]}])
def test_bad_input_is_refused(kw):
    with pytest.raises(ValueError):
        _records(**kw)


def _free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture()
def dnsmasq(tmp_path):
    exe = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
    if exe is None:
        pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(_records().dnsmasq())
    procs = []
    for _ in range(3):  # a free port can be taken between probing and binding
        port = _free_udp_port()
        log = open(tmp_path / "dnsmasq.log", "w")
        p = subprocess.Popen([exe, "--keep-in-foreground", "--port=%d" % port, "--listen-address=127.0.0.1",
                              "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=%s" % conf,
                              "--pid-file=%s" % (tmp_path / "pid"), "--log-facility=-", "--local=/%s/" % DOMAIN],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        procs.append(p)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                dns.query.udp(dns.message.make_query("probe." + DOMAIN, "A"), "127.0.0.1", port=port, timeout=0.2)
                break
            except (dns.exception.Timeout, OSError):
                continue
        if p.poll() is None:
            break
    try:
        assert p.poll() is None, (tmp_path / "dnsmasq.log").read_text()
        yield port
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)  # the process we started, by its PID
                p.wait(5)


def _ask(port, name, rdtype):
    resp = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=2)
    return [r for rrset in resp.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype) for r in rrset]


def test_dnsmasq_serves_the_discovery_chain(dnsmasq):
    port = dnsmasq
    (ptr,) = _ask(port, "_nmos-auth._tcp." + DOMAIN, "PTR")
    inst = ptr.target.to_text()
    assert inst == "nmosauth-lite._nmos-auth._tcp.%s." % DOMAIN
    (srv,) = _ask(port, inst, "SRV")
    assert (srv.port, srv.priority, srv.target.to_text()) == (8443, 10, "auth.%s." % DOMAIN)
    (txt,) = _ask(port, inst, "TXT")
    assert _txt(txt) == ["api_proto=https", "api_ver=v1.0", "api_selector=x-nmos/auth/v1.0", "pri=10"]
    assert [a.address for a in _ask(port, srv.target.to_text(), "A")] == ["192.0.2.10"]
    assert [a.address for a in _ask(port, srv.target.to_text(), "AAAA")] == ["2001:db8::10"]
    # DS-06: the metadata URL a client builds from these answers
    t = dict(x.split("=", 1) for x in _txt(txt))
    url = "%s://%s:%d/.well-known/oauth-authorization-server/%s" % (
        t["api_proto"], srv.target.to_text().rstrip("."), srv.port, t["api_selector"])
    assert url == "https://auth.%s:8443/.well-known/oauth-authorization-server/x-nmos/auth/v1.0" % DOMAIN
