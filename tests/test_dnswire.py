"""dnswire: DNS message building and hardened parsing (RFC 1035, 2782, 3596, 6891)."""

import glob
import ipaddress
import os
import struct

import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dns_helpers import assert_same_as_dnspython
from nmosauth_lite import dnswire
from nmosauth_lite.dnswire import DNSError, Message, Question, Record
from nmosauth_lite.errors import ProtocolError

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "vectors", "dns")


def load_hex(path):
    with open(path) as f:
        return bytes.fromhex("".join(x for x in f.read().split("\n") if not x.startswith("#")))


GOOD = sorted(p for p in glob.glob(os.path.join(VECTORS, "*.hex"))
              if not os.path.basename(p).startswith("bad-"))
BAD = sorted(glob.glob(os.path.join(VECTORS, "bad-*.hex")))
CORPUS = [load_hex(p) for p in GOOD]


def header(qid=1, flags=0x8180, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!6H", qid, flags, qd, an, ns, ar)


QNAME = b"\x01a\x04test\x00"
QUESTION = QNAME + b"\x00\x01\x00\x01"  # a.test A IN, at offset 12


def rr(owner, rtype, rdata, ttl=60, rclass=1, rdlen=None):
    n = len(rdata) if rdlen is None else rdlen
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, n) + rdata


def packet(*answers, **hdr):
    return header(an=len(answers), **hdr) + QUESTION + b"".join(answers)


# --- building -------------------------------------------------------------

def test_query_has_random_id_rd_and_edns_1232():
    wire = dnswire.build_query(0xBEEF, "_nmos-auth._tcp.example.com", dnswire.PTR)
    q = dns.message.from_wire(wire)
    assert q.id == 0xBEEF and q.flags & dns.flags.RD
    assert str(q.question[0].name) == "_nmos-auth._tcp.example.com."
    assert q.edns == 0 and q.payload == 1232  # RFC 6891, DNS Flag Day 2020
    assert len(q.additional) == 0 and q.ednsflags == 0


def test_build_parse_round_trip_for_every_record_type():
    name = ("host", "example", "com")
    labels = tuple(x.encode() for x in name)
    msg = Message(7, 0x8400, [Question(labels, dnswire.SRV)], answers=[
        Record(labels, dnswire.A, 1, 10, "192.0.2.1"),
        Record(labels, dnswire.AAAA, 1, 10, "2001:db8::1"),
        Record(labels, dnswire.PTR, 1, 10, (b"x",) + labels),
        Record(labels, dnswire.SRV, 1, 10, (1, 2, 443, labels)),
        Record(labels, dnswire.TXT, 1, 10, [b"a=b", b"", b"c"]),
        Record(labels, 65280, 1, 10, b"\x00opaque"),
        Record(labels, dnswire.TXT, 3, 10, b"\x02ch"),  # class CH stays opaque
    ], edns=1232, ext_rcode=1)
    wire = dnswire.build_message(msg)
    back = assert_same_as_dnspython(wire)
    assert [r.data for r in back.answers] == [r.data for r in msg.answers]
    assert back.rcode == 16  # BADVERS needs the EDNS extended RCODE (RFC 6891 §6.1.3)
    assert len(wire) < 200  # names were compressed


def test_parse_header_flags():
    m = dnswire.parse_message(header(flags=0x8583) + QUESTION)
    assert m.qr and m.aa and not m.tc and m.rcode == dnswire.NXDOMAIN and m.opcode == 0
    assert dnswire.parse_message(header(flags=0x8380) + QUESTION).tc


def test_name_text_round_trip_with_escapes():
    labels = dnswire.name_from_text(r"My\032AS\.1\\x.example.")
    assert labels == (b"My AS.1\\x", b"example")
    assert dnswire.name_to_text(labels) == r"My\032AS\.1\\x.example"
    assert dnswire.name_from_text(".") == () and dnswire.name_to_text(()) == "."


@pytest.mark.parametrize("text", ["a..b", ".a", "a\\", "a\\300b", "x" * 64 + ".test",
                                  ".".join(["abcdefghi"] * 26)])
def test_bad_names_rejected(text):
    with pytest.raises(DNSError):
        dnswire.name_from_text(text)


def test_ttl_with_top_bit_reads_as_zero():
    m = dnswire.parse_message(packet(rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04", ttl=0x80000001)))
    assert m.answers[0].ttl == 0  # RFC 2181 §8


# --- names and compression ---------------------------------------------

def test_backward_pointer_is_followed():
    m = dnswire.parse_message(packet(rr(b"\x01b\xc0\x0e", 1, b"\x01\x02\x03\x04")))
    assert m.answers[0].name == (b"b", b"test")


@pytest.mark.parametrize("owner,why", [
    (b"\xc0\x18", "pointer to itself"),  # the answer starts at offset 24
    (b"\xc0\x1a\xc0\x18", "forward pointer, then back into a loop"),
    (b"\x01b\xc0\x18", "pointer into its own name"),
    (b"\xc0\xff", "pointer past the end"),
    (b"\x40" + b"a" * 64 + b"\x00", "label of 64 octets (RFC 1035 §2.3.4)"),
    (b"\x80\x00", "reserved label type"),
    (b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x00",
     "name of 257 octets"),
    (b"\x3fabc", "name runs off the message"),
])
def test_hostile_names_rejected(owner, why):
    wire = packet(rr(owner, 1, b"\x01\x02\x03\x04"))
    with pytest.raises(DNSError):
        dnswire.parse_message(wire)
    with pytest.raises(Exception):  # dnspython agrees these are broken
        dns.message.from_wire(wire)


def test_longest_legal_name_parses():
    owner = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"a" * 61 + b"\x00"  # 255 octets
    m = dnswire.parse_message(packet(rr(owner, 1, b"\x01\x02\x03\x04")))
    assert len(m.answers[0].name) == 4


def _pointer_chain(n):
    # a root label, then n pointers, each to the one before it: legal one by one
    return b"\x00" + b"".join(struct.pack("!H", 0xC000 | max(0, 2 * i - 1)) for i in range(n))


def test_pointer_chain_hop_limit():
    r = dnswire.Reader(_pointer_chain(100))
    r.pos = len(r.data) - 2
    assert r.name() == () and r.pos == len(r.data)
    r = dnswire.Reader(_pointer_chain(dnswire.MAX_POINTERS + 2))
    r.pos = len(r.data) - 2
    with pytest.raises(DNSError, match="too many pointers"):
        r.name()


# --- RDATA must be consumed exactly ------------------------------------------

@pytest.mark.parametrize("answer", [
    rr(b"\xc0\x0c", dnswire.A, b"\x01\x02\x03"),  # A of 3 octets
    rr(b"\xc0\x0c", dnswire.AAAA, b"\x00" * 15),
    rr(b"\xc0\x0c", dnswire.PTR, b"\x01x\xc0\x0c\x00"),  # name ends before RDLENGTH
    rr(b"\xc0\x0c", dnswire.PTR, b"\x05xy", rdlen=3),  # name runs past RDLENGTH
    rr(b"\xc0\x0c", dnswire.SRV, b"\x00\x01\x00\x02\x01\xbb\x00\x00"),  # trailing octet
    rr(b"\xc0\x0c", dnswire.SRV, b"\x00\x01\x00\x02"),  # fields missing
    rr(b"\xc0\x0c", dnswire.TXT, b"\x05abc"),  # string runs past RDLENGTH
    rr(b"\xc0\x0c", dnswire.A, b"\x01\x02\x03\x04", rdlen=9),  # RDATA truncated by the message end
])
def test_rdata_must_match_rdlength(answer):
    with pytest.raises(DNSError):
        dnswire.parse_message(packet(answer))


def test_unknown_types_are_opaque_bytes():
    m = dnswire.parse_message(packet(rr(b"\xc0\x0c", 99, b"\xc0\x0c\xff")))
    assert m.answers[0].data == b"\xc0\x0c\xff"


def test_empty_txt_is_no_strings():
    assert dnswire.parse_message(packet(rr(b"\xc0\x0c", dnswire.TXT, b""))).answers[0].data == []


# --- message-level limits ---------------------------------------------------------

OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


@pytest.mark.parametrize("wire", [
    b"",
    header()[:11],
    header(qd=2) + QUESTION * 2,  # RFC 9619
    header(an=1025) + QUESTION,
    header(an=3) + QUESTION + rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04"),
    packet(rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04")) + b"\x00",  # trailing bytes
    header(an=1) + QUESTION + OPT,  # OPT outside the additional section (RFC 6891 §6.1.1)
    header(ar=2) + QUESTION + OPT + OPT,  # two OPT records
    header(ar=1) + QUESTION + b"\x01a" + OPT,  # OPT not owned by the root
    b"\x00" * 65536,
])
def test_message_defects_rejected(wire):
    with pytest.raises(DNSError) as e:
        dnswire.parse_message(wire)
    assert isinstance(e.value, ProtocolError)


def test_is_response_to_checks_id_qr_and_question():
    name = (b"a", b"test")
    m = dnswire.parse_message(packet())
    assert dnswire.is_response_to(m, 1, (b"A", b"TEST"), dnswire.A)  # RFC 4343: case-insensitive
    assert not dnswire.is_response_to(m, 2, name, dnswire.A)
    assert not dnswire.is_response_to(m, 1, name, dnswire.AAAA)
    assert not dnswire.is_response_to(m, 1, (b"b", b"test"), dnswire.A)
    assert not dnswire.is_response_to(dnswire.parse_message(packet(flags=0x0100)), 1, name, 1)
    assert not dnswire.is_response_to(dnswire.parse_message(header(qd=0)), 1, name, 1)


# --- addresses -----------------------------------------------------------

@given(st.binary(min_size=16, max_size=16))
def test_ipv6_text_is_rfc5952(raw):
    text = dnswire.ipv6_to_text(raw)
    assert ipaddress.IPv6Address(text).packed == raw
    want = ipaddress.IPv6Address(raw).compressed
    if "." not in want:
        assert text == want
    assert dnswire.ipv6_from_text(text) == raw


@pytest.mark.parametrize("text", ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5"])
def test_bad_ipv4_text(text):
    with pytest.raises(DNSError):
        dnswire.ipv4_from_text(text)


@pytest.mark.parametrize("text", ["1::2::3", "1:2:3:4:5:6:7", "12345::", "g::", "1:2:3:4:5:6:7:8:9"])
def test_bad_ipv6_text(text):
    with pytest.raises(DNSError):
        dnswire.ipv6_from_text(text)


# --- differential parsing against dnspython, on a corpus --------------------------

def test_corpus_is_present():
    assert len(GOOD) >= 8 and len(BAD) >= 4


@pytest.mark.parametrize("path", GOOD, ids=os.path.basename)
def test_corpus_parses_like_dnspython(path):
    assert_same_as_dnspython(load_hex(path))


@pytest.mark.parametrize("path", BAD, ids=os.path.basename)
def test_bad_corpus_rejected_by_both(path):
    wire = load_hex(path)
    with pytest.raises(DNSError):
        dnswire.parse_message(wire)
    with pytest.raises(Exception):
        dns.message.from_wire(wire)


label = st.binary(min_size=1, max_size=20).filter(lambda b: b not in (b"@",))
names = st.lists(label, max_size=4).map(tuple)
rdatas = st.one_of(
    st.tuples(st.just(dnswire.A), st.binary(min_size=4, max_size=4).map(dnswire.ipv4_to_text)),
    st.tuples(st.just(dnswire.AAAA), st.binary(min_size=16, max_size=16).map(dnswire.ipv6_to_text)),
    st.tuples(st.just(dnswire.PTR), names),
    st.tuples(st.just(dnswire.CNAME), names),
    st.tuples(st.just(dnswire.SRV), st.tuples(st.integers(0, 65535), st.integers(0, 65535),
                                              st.integers(0, 65535), names)),
    st.tuples(st.just(dnswire.TXT), st.lists(st.binary(max_size=255), min_size=1, max_size=4)),
    st.tuples(st.sampled_from([65280, 65534]), st.binary(max_size=40)),
)
records = st.builds(lambda n, rd, ttl: Record(n, rd[0], 1, ttl, rd[1]), names, rdatas,
                    st.integers(0, 2 ** 31 - 1))
messages = st.builds(
    lambda qid, flags, q, an, ns, ar, edns: Message(qid, flags, q, an, ns, ar, edns),
    st.integers(0, 65535), st.integers(0, 65535).map(lambda f: f & ~0x7800),
    st.lists(st.builds(Question, names, st.sampled_from([1, 12, 16, 28, 33])), max_size=1),
    st.lists(records, max_size=5), st.lists(records, max_size=3), st.lists(records, max_size=3),
    st.one_of(st.none(), st.integers(512, 65535)))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_generated_messages_round_trip_and_match_dnspython(msg):
    wire = dnswire.build_message(msg)
    back = assert_same_as_dnspython(wire)
    assert dnswire.build_message(back) == wire


# --- the parser under fuzzing: DNSError or a Message, never anything else ---------

def _parse_or_dns_error(wire):
    try:
        return dnswire.parse_message(wire)
    except DNSError:
        return None


@settings(max_examples=2000, deadline=1000)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(wire):
    _parse_or_dns_error(wire)


@settings(max_examples=2000, deadline=1000)
@given(st.sampled_from(CORPUS or [b""]), st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)),
                                                  min_size=1, max_size=8),
       st.integers(0, 4096))
def test_fuzz_mutated_corpus(wire, flips, cut):
    buf = bytearray(wire)
    for at, value in flips:
        if buf:
            buf[at % len(buf)] = value
    _parse_or_dns_error(bytes(buf[:cut] if cut < len(buf) else buf))


@settings(max_examples=500, deadline=1000)
@given(st.binary(min_size=12, max_size=12), st.lists(st.integers(0, 255), max_size=300))
def test_fuzz_pointer_soup(head, body):
    # headers with counts, then bodies dense in compression pointers
    wire = bytes(head[:4]) + b"\x00\x01\x00\x04\x00\x00\x00\x00" + bytes(
        (b | 0xC0) if i % 3 == 0 else b for i, b in enumerate(body))
    _parse_or_dns_error(wire)
