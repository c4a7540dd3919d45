"""dnswire on the device lane: query bytes, the DNS corpus (dnsmasq captures, synthetic and
hostile packets in tests/vectors/dns/), names, addresses and RDLENGTH exactness."""

import harness
from nmosauth_lite import dnswire
from nmosauth_lite.dnswire import DNSError

GOOD = ("dnsmasq-ptr", "dnsmasq-srv-with-additional", "dnsmasq-txt", "dnsmasq-truncated",
        "dnsmasq-aaaa-only", "dnsmasq-nxdomain", "synthetic-all-types", "synthetic-dnssd-additional",
        "synthetic-badvers")
BAD = ("bad-pointer-loop", "bad-forward-pointer", "bad-label-64", "bad-name-257",
       "bad-truncated-rdata", "bad-opt-in-answer", "bad-trailing-bytes")


def packet(name):
    text = harness.read_bytes("tests/vectors/dns/" + name + ".hex").decode("utf-8")
    hexed = "".join(x.strip() for x in text.split("\n") if x and not x.startswith("#"))
    return bytes(int(hexed[i:i + 2], 16) for i in range(0, len(hexed), 2))


def check_query_bytes():
    got = dnswire.build_query(0x1234, "_nmos-auth._tcp.a.test", dnswire.PTR)
    want = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
            b"\x0a_nmos-auth\x04_tcp\x01a\x04test\x00\x00\x0c\x00\x01"
            b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00")  # OPT: 1232-byte payload
    harness.eq(got, want, "query")


def check_corpus_parses_and_rebuilds():
    for name in GOOD:
        msg = dnswire.parse_message(packet(name))
        again = dnswire.parse_message(dnswire.build_message(msg))
        harness.eq(len(again.answers), len(msg.answers), name + " answers")
        harness.eq([r.data for r in again.additional], [r.data for r in msg.additional], name)


def check_dnsmasq_answers():
    msg = dnswire.parse_message(packet("dnsmasq-srv-with-additional"))
    srv = msg.answers[0].data
    harness.eq(srv[:3], (0, 0, 443), "SRV fields")
    harness.eq(dnswire.name_to_text(srv[3]), "auth1.nmos.test", "SRV target")
    harness.eq(sorted(r.data for r in msg.additional), ["192.0.2.1", "2001:db8::1"], "additional")
    harness.true(dnswire.parse_message(packet("dnsmasq-truncated")).tc, "TC bit")
    harness.eq(dnswire.parse_message(packet("dnsmasq-nxdomain")).rcode, dnswire.NXDOMAIN, "rcode")
    harness.eq(dnswire.parse_message(packet("synthetic-badvers")).rcode, 16, "extended rcode")


def check_hostile_corpus_rejected():
    for name in BAD:
        harness.raises(DNSError, dnswire.parse_message, packet(name))


def check_rdata_must_fill_rdlength():
    head = b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01"
    ok = head + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    harness.eq(dnswire.parse_message(ok).answers[0].data, "192.0.2.1", "A")
    long_a = head + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x05\xc0\x00\x02\x01\x00"
    harness.raises(DNSError, dnswire.parse_message, long_a)
    ptr = head + b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x00\x3c\x00\x05\x01x\xc0\x0c\x00"
    harness.raises(DNSError, dnswire.parse_message, ptr)


def check_names_and_addresses():
    labels = dnswire.name_from_text("My\\032AS\\.1.Example.")
    harness.eq(labels, (b"My AS.1", b"Example"), "labels")
    harness.eq(dnswire.name_to_text(labels), "My\\032AS\\.1.Example", "text")
    harness.eq(dnswire.name_key(labels), (b"my as.1", b"example"), "key")
    harness.raises(DNSError, dnswire.name_from_text, "a..b")
    raw = b"\x20\x01\x0d\xb8" + b"\x00" * 10 + b"\x00\x01"
    harness.eq(dnswire.ipv6_to_text(raw), "2001:db8::1", "ipv6")
    harness.eq(dnswire.ipv6_from_text("2001:db8::1"), raw, "ipv6 back")
    harness.eq(dnswire.ipv6_to_text(b"\x00\x01" * 8), "1:1:1:1:1:1:1:1", "no run")
