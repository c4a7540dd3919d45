"""Regenerate the DNS packet corpus in this directory (run from the repository root).

    .venv/bin/python tests/vectors/dns/make_corpus.py

dnsmasq-*.hex are answers captured from a real dnsmasq serving the zone of
tests/aio/test_dns_resolver.py; synthetic-*.hex are built with dnspython; bad-*.hex are
hand-made hostile packets that both dnswire and dnspython must reject. Each file holds
'#' comment lines and then the packet as hex. The test IDs in captures are random.
"""

import os
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rrset

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [TESTS, os.path.join(TESTS, "aio")]  # dns_helpers, test_dns_resolver

SVC = "_nmos-auth._tcp"


def write(name, wire, comment):
    with open(os.path.join(HERE, name + ".hex"), "w") as f:
        f.write("# %s\n%s\n" % (comment, wire.hex()))


def captures():
    import tempfile

    from dns_helpers import Dnsmasq, raw_query
    from test_dns_resolver import zone

    with tempfile.TemporaryDirectory() as tmp:
        server = Dnsmasq(tmp, zone(), local_domains=["nmos.test", "big.test"]).start()
        try:
            for fname, qname, rdtype, payload in [
                ("dnsmasq-ptr", SVC + ".nmos.test", "PTR", 1232),
                ("dnsmasq-srv-with-additional", "as-primary.%s.nmos.test" % SVC, "SRV", 1232),
                ("dnsmasq-txt", "as-secondary.%s.nmos.test" % SVC, "TXT", 1232),
                ("dnsmasq-txt-mixed-case-keys", "my\\032as.%s.nmos.test" % SVC, "TXT", 1232),
                ("dnsmasq-aaaa-only", "as-v6only.%s.nmos.test" % SVC, "SRV", 1232),
                ("dnsmasq-a-and-aaaa", "auth1.nmos.test", "AAAA", 1232),
                ("dnsmasq-nodata", "auth6.nmos.test", "A", 1232),
                ("dnsmasq-nxdomain", "missing.nmos.test", "A", 1232),
                ("dnsmasq-refused", "elsewhere.invalid", "A", 1232),
                ("dnsmasq-truncated", SVC + ".big.test", "PTR", 1232),
            ]:
                wire = raw_query(server.port, qname, rdtype, timeout=2.0, payload=payload)
                write(fname, wire, "dnsmasq 2.90 answer to %s %s (EDNS %d)" % (qname, rdtype, payload))
        finally:
            server.stop()


def synthetic():
    q = dns.message.make_query("Host.Example.COM", "SRV", use_edns=0, payload=1232,
                               options=[dns.edns.GenericOption(10, b"\x01" * 8)])
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    for text in ["Host.Example.COM. 60 IN A 192.0.2.1",
                 "host.example.com. 60 IN AAAA 2001:db8::1",
                 "host.example.com. 60 IN AAAA ::ffff:192.0.2.1",
                 "host.example.com. 60 IN PTR Other.EXAMPLE.com.",
                 "alias.example.com. 60 IN CNAME host.example.com.",
                 "host.example.com. 60 IN SRV 1 2 443 target.example.com.",
                 'host.example.com. 60 IN TXT "a=b" "" "=x" "c"',
                 "example.com. 60 IN NS ns.example.com.",
                 "host.example.com. 60 IN TYPE65280 \\# 3 c00cff"]:
        r.answer.append(dns.rrset.from_text(*text.split(None, 4)))
    write("synthetic-all-types", r.to_wire(), "dnspython: every parsed type, mixed case, EDNS option")

    q = dns.message.make_query(SVC + ".example.com", "PTR", use_edns=0, payload=1232)
    r = dns.message.make_response(q)
    inst = "My\\032AS\\.1." + SVC + ".example.com."
    r.answer.append(dns.rrset.from_text(SVC + ".example.com.", 120, "IN", "PTR", inst))
    for text in [inst + " 120 IN SRV 0 0 443 auth.example.com.",
                 inst + ' 120 IN TXT "api_proto=https" "api_ver=v1.0,v1.1" "pri=10"',
                 "auth.example.com. 60 IN A 192.0.2.7",
                 "auth.example.com. 60 IN AAAA 2001:db8::7"]:
        r.additional.append(dns.rrset.from_text(*text.split(None, 4)))
    write("synthetic-dnssd-additional", r.to_wire(), "dnspython: RFC 6763 section 12.1 PTR answer")

    r = dns.message.make_response(q)
    r.set_rcode(dns.rcode.BADVERS)
    write("synthetic-badvers", r.to_wire(), "dnspython: extended RCODE 16 (RFC 6891)")

    q = dns.message.make_query("a.test", "A", use_edns=False)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("a.test.", 5, "IN", "A", "192.0.2.1"))
    write("synthetic-no-edns", r.to_wire(), "dnspython: no OPT record")


def hostile():
    head = struct.pack("!6H", 1, 0x8180, 1, 1, 0, 0)
    question = b"\x01a\x04test\x00\x00\x01\x00\x01"

    def a(owner, rdata=b"\xc0\x00\x02\x01", rdlen=None):
        n = len(rdata) if rdlen is None else rdlen
        return head + question + owner + struct.pack("!HHIH", 1, 1, 60, n) + rdata

    write("bad-pointer-loop", a(b"\xc0\x18"), "owner name is a pointer to itself")
    write("bad-forward-pointer", a(b"\xc0\x1a\xc0\x18"), "pointer forward, then back into a loop")
    write("bad-label-64", a(b"\x40" + b"a" * 64 + b"\x00"), "label longer than 63 octets")
    write("bad-name-257", a((b"\x3f" + b"a" * 63) * 4 + b"\x00"), "name longer than 255 octets")
    write("bad-truncated-rdata", a(b"\xc0\x0c", b"\xc0\x00", rdlen=4), "A RDATA cut short")
    write("bad-a-rdlength-5", a(b"\xc0\x0c", b"\xc0\x00\x02\x01\x00"), "A with 5 octets")
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    write("bad-opt-in-answer", head + question + opt, "OPT in the answer section")
    write("bad-trailing-bytes", a(b"\xc0\x0c") + b"\x00", "a byte after the last record")
    write("bad-header-only", head[:10], "shorter than a header")


if __name__ == "__main__":
    captures()
    synthetic()
    hostile()
