"""DNS messages on the wire: build queries, parse answers (RFC 1035, 2782, 3596, 6891).

Sans-I/O and MicroPython-compatible: bytes in, plain objects out. Covers the header and
flags, RCODEs (with the EDNS0 extension), names with compression pointers that must go
strictly backward, the record types DNS-SD needs (PTR, SRV, TXT, A, AAAA, plus CNAME and
NS) and the EDNS0 OPT pseudo-record. Any other type is kept as opaque RDATA bytes. Every
defect of peer data raises DNSError; every limit is a named MAX_*. Left out: DNSSEC,
TSIG, zone transfers, dynamic update.
"""

from .errors import ProtocolError

# Record types and the class (RFC 1035 §3.2.2, RFC 3596 §2.1, RFC 2782, RFC 6891 §6.1.1).
A, NS, CNAME, PTR, TXT, AAAA, SRV, OPT = 1, 2, 5, 12, 16, 28, 33, 41
IN = 1
# RCODEs (RFC 1035 §4.1.1); values above 15 need the EDNS0 extension (RFC 6891 §6.1.3).
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
# Header flag bits (RFC 1035 §4.1.1).
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD, FLAG_RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080

EDNS_PAYLOAD = 1232  # DNS Flag Day 2020: a UDP answer this size needs no IP fragmentation
MAX_MESSAGE = 65535  # the TCP length prefix is 16 bits (RFC 1035 §4.2.2)
MAX_LABEL = 63  # RFC 1035 §2.3.4; the top two bits of a length byte mark pointers
MAX_NAME = 255  # wire octets, length bytes and the root included (RFC 1035 §2.3.4)
MAX_LABELS = 127  # 255 octets hold at most 127 one-octet labels and the root
MAX_POINTERS = 127  # hops per name; each must go strictly backward, so loops end anyway
MAX_QUESTIONS = 1  # RFC 9619: QDCOUNT is 0 or 1 in practice
MAX_RECORDS = 1024  # answer + authority + additional; DNS-SD answers are far smaller
_HEADER = 12
_MIN_RR = 11  # root name (1) + type, class, ttl, rdlength (10)


class DNSError(ProtocolError):
    """Malformed or unacceptable DNS wire data (RFC 1035 FORMERR territory)."""


# --- names: tuples of label bytes, root = () --------------------------------

def lower_label(label):
    """ASCII-only lower case: DNS compares names case-insensitively (RFC 4343)."""
    out = bytearray(label)
    for i in range(len(out)):
        c = out[i]
        if 65 <= c <= 90:
            out[i] = c + 32
    return bytes(out)


def name_key(labels):
    """A comparison key for a name: its labels in lower case."""
    return tuple(lower_label(x) for x in labels)


def check_name(labels):
    """Raise DNSError unless `labels` fits the RFC 1035 §2.3.4 limits."""
    if len(labels) > MAX_LABELS:
        raise DNSError("DNS name: too many labels")
    total = 1
    for label in labels:
        if not 0 < len(label) <= MAX_LABEL:
            raise DNSError("DNS name: bad label length")
        total += 1 + len(label)
    if total > MAX_NAME:
        raise DNSError("DNS name: longer than 255 octets")


def name_from_text(text):
    """Presentation text ('a.b.c', trailing dot optional, \\. \\\\ \\DDD escapes) -> labels."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    if text in (b"", b"."):
        return ()
    labels, cur, i, n = [], bytearray(), 0, len(text)
    while i < n:
        c = text[i]
        i += 1
        if c == 46:  # an unescaped dot ends a label
            if not cur:
                raise DNSError("DNS name: empty label")
            labels.append(bytes(cur))
            cur = bytearray()
            continue
        if c == 92:  # backslash: \DDD (decimal) or the next character as it is
            d = text[i:i + 3]
            if len(d) == 3 and all(48 <= x <= 57 for x in d):
                c = (d[0] - 48) * 100 + (d[1] - 48) * 10 + d[2] - 48
                i += 3
                if c > 255:
                    raise DNSError("DNS name: bad \\DDD escape")
            elif i < n:
                c = text[i]
                i += 1
            else:
                raise DNSError("DNS name: dangling backslash")
        cur.append(c)
    if cur:
        labels.append(bytes(cur))
    labels = tuple(labels)
    check_name(labels)
    return labels


def name_to_text(labels):
    """Labels -> presentation text without the trailing dot ('.' for the root)."""
    if not labels:
        return "."
    parts = []
    for label in labels:
        s = []
        for c in label:
            if c == 46 or c == 92:
                s.append("\\" + chr(c))
            elif 33 <= c <= 126:
                s.append(chr(c))
            else:
                s.append("\\%03d" % c)
        parts.append("".join(s))
    return ".".join(parts)


# --- addresses ---------------------------------------------------------------

def ipv4_to_text(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def ipv6_to_text(b):
    """16 bytes -> RFC 5952 text (longest run of two or more zero groups becomes ::)."""
    g = [(b[i] << 8) | b[i + 1] for i in range(0, 16, 2)]
    best, best_len, i = -1, 1, 0
    while i < 8:
        if g[i] == 0:
            j = i
            while j < 8 and g[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    if best < 0:
        return ":".join("%x" % x for x in g)
    head = ":".join("%x" % x for x in g[:best])
    tail = ":".join("%x" % x for x in g[best + best_len:])
    return head + "::" + tail


def ipv4_from_text(text):
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
        raise DNSError("bad IPv4 address")
    return bytes(int(p) for p in parts)


def ipv6_from_text(text):
    if text.count("::") > 1:
        raise DNSError("bad IPv6 address")
    head, sep, tail = text.partition("::")
    hs = head.split(":") if head else []
    ts = tail.split(":") if tail else []
    if (sep and len(hs) + len(ts) > 7) or (not sep and len(hs) != 8):
        raise DNSError("bad IPv6 address")
    out = bytearray()
    for part in hs + ["0"] * (8 - len(hs) - len(ts)) + ts:
        if not 0 < len(part) <= 4 or any(c not in "0123456789abcdefABCDEF" for c in part):
            raise DNSError("bad IPv6 address")
        v = int(part, 16)
        out.append(v >> 8)
        out.append(v & 255)
    return bytes(out)


# --- messages ----------------------------------------------------------------

class Question:
    def __init__(self, name, qtype, qclass=IN):
        self.name = name
        self.qtype = qtype
        self.qclass = qclass


class Record:
    """One resource record. `data` by type (class IN): A/AAAA address text; PTR, CNAME, NS
    labels; SRV (priority, weight, port, target labels); TXT list of bytes; else bytes."""

    def __init__(self, name, rtype, rclass, ttl, data):
        self.name = name
        self.rtype = rtype
        self.rclass = rclass
        self.ttl = ttl
        self.data = data


class Message:
    """A DNS message. `edns` is the OPT UDP payload size, or None when there is no OPT."""

    def __init__(self, id=0, flags=0, questions=None, answers=None, authority=None,
                 additional=None, edns=None, ext_rcode=0, edns_flags=0, edns_options=b""):
        self.id = id
        self.flags = flags
        self.questions = questions or []
        self.answers = answers or []
        self.authority = authority or []
        self.additional = additional or []
        self.edns = edns
        self.ext_rcode = ext_rcode  # upper 8 bits of the 12-bit RCODE (RFC 6891 §6.1.3)
        self.edns_flags = edns_flags  # version and DO bits, as on the wire
        self.edns_options = edns_options

    @property
    def rcode(self):
        return (self.ext_rcode << 4) | (self.flags & 15)

    @property
    def opcode(self):
        return (self.flags >> 11) & 15

    @property
    def qr(self):
        return bool(self.flags & FLAG_QR)

    @property
    def tc(self):
        return bool(self.flags & FLAG_TC)

    @property
    def aa(self):
        return bool(self.flags & FLAG_AA)


class Reader:
    """A read cursor over one message; `end` bounds sequential reads (set to an RDATA end)."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.end = len(data)

    def need(self, n):
        if self.pos + n > self.end:
            raise DNSError("DNS message truncated")

    def u8(self):
        self.need(1)
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self):
        self.need(2)
        d, p = self.data, self.pos
        self.pos = p + 2
        return (d[p] << 8) | d[p + 1]

    def u32(self):
        return (self.u16() << 16) | self.u16()

    def take(self, n):
        self.need(n)
        self.pos += n
        return bytes(self.data[self.pos - n:self.pos])

    def name(self):
        # RFC 1035 §4.1.4 compression. A pointer must aim strictly before the start of the
        # label run that contains it (as dnspython requires): forward pointers and loops are
        # impossible, so each name costs at most MAX_NAME octets of work.
        d = self.data
        labels, total, hops = [], 1, 0
        p, lowest, end = self.pos, self.pos, self.end
        resume = -1
        while True:
            if p >= end:
                raise DNSError("DNS name truncated")
            n = d[p]
            if n == 0:
                p += 1
                break
            kind = n & 0xC0
            if kind == 0xC0:
                if p + 1 >= end:
                    raise DNSError("DNS name truncated")
                target = ((n & 0x3F) << 8) | d[p + 1]
                if target >= lowest:
                    raise DNSError("DNS name: pointer does not go backward")
                hops += 1
                if hops > MAX_POINTERS:
                    raise DNSError("DNS name: too many pointers")
                if resume < 0:
                    resume = p + 2
                p = lowest = target
                end = len(d)
                continue
            if kind:
                raise DNSError("DNS name: unknown label type")
            total += n + 1
            if total > MAX_NAME:
                raise DNSError("DNS name: longer than 255 octets")
            if p + 1 + n > end:
                raise DNSError("DNS name truncated")
            labels.append(bytes(d[p + 1:p + 1 + n]))
            p += n + 1
        self.pos = resume if resume >= 0 else p
        if len(labels) > MAX_LABELS:
            raise DNSError("DNS name: too many labels")
        return tuple(labels)


class Writer:
    """The build side: names compressed against earlier owner names (RFC 1035 §4.1.4)."""

    def __init__(self):
        self.buf = bytearray()
        self.offsets = {}

    def u16(self, v):
        self.buf.append((v >> 8) & 255)
        self.buf.append(v & 255)

    def u32(self, v):
        self.u16((v >> 16) & 0xFFFF)
        self.u16(v & 0xFFFF)

    def name(self, labels, compress=True):
        check_name(labels)
        for i in range(len(labels)):
            key = name_key(labels[i:])
            at = self.offsets.get(key) if compress else None
            if at is not None:
                self.u16(0xC000 | at)
                return
            if compress and len(self.buf) < 0x4000:
                self.offsets[key] = len(self.buf)
            self.buf.append(len(labels[i]))
            self.buf.extend(labels[i])
        self.buf.append(0)


def _parse_rdata(r, rtype, rclass, rdlen):
    if rclass != IN:
        return r.take(rdlen)
    if rtype == A or rtype == AAAA:
        size = 4 if rtype == A else 16
        if rdlen != size:
            raise DNSError("DNS A/AAAA: bad RDLENGTH")
        raw = r.take(size)
        return ipv4_to_text(raw) if size == 4 else ipv6_to_text(raw)
    if rtype in (PTR, CNAME, NS):
        return r.name()
    if rtype == SRV:
        return (r.u16(), r.u16(), r.u16(), r.name())
    if rtype == TXT:
        strings = []
        while r.pos < r.end:
            strings.append(r.take(r.u8()))
        return strings
    return r.take(rdlen)


def _build_rdata(w, rec):
    t, data = rec.rtype, rec.data
    if rec.rclass != IN or isinstance(data, (bytes, bytearray)):
        w.buf.extend(data)
    elif t == A:
        w.buf.extend(ipv4_from_text(data))
    elif t == AAAA:
        w.buf.extend(ipv6_from_text(data))
    elif t in (PTR, CNAME, NS):
        w.name(data)
    elif t == SRV:
        w.u16(data[0])
        w.u16(data[1])
        w.u16(data[2])
        w.name(data[3], compress=False)  # RFC 2782: the target is not compressed
    elif t == TXT:
        for s in data:
            if len(s) > 255:
                raise DNSError("TXT string longer than 255 octets")
            w.buf.append(len(s))
            w.buf.extend(s)
    else:
        raise DNSError("no builder for this record data")


def _read_record(r):
    name = r.name()
    rtype, rclass, ttl, rdlen = r.u16(), r.u16(), r.u32(), r.u16()
    r.need(rdlen)
    outer, r.end = r.end, r.pos + rdlen
    data = _parse_rdata(r, rtype, rclass, rdlen)
    if r.pos != r.end:  # a record consumes exactly its RDLENGTH
        raise DNSError("DNS record: RDATA does not fill RDLENGTH")
    r.end = outer
    if ttl & 0x80000000 and rtype != OPT:
        ttl = 0  # RFC 2181 §8: a TTL with the top bit set is read as zero
    return Record(name, rtype, rclass, ttl, data)


def parse_message(data):
    """Parse one DNS message; raise DNSError on any defect, trailing bytes included."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DNSError("DNS message must be bytes")
    data = bytes(data)
    if len(data) < _HEADER:
        raise DNSError("DNS message shorter than its header")
    if len(data) > MAX_MESSAGE:
        raise DNSError("DNS message too long")
    r = Reader(data)
    msg = Message(r.u16(), r.u16())
    qd, an, ns, ar = r.u16(), r.u16(), r.u16(), r.u16()
    if qd > MAX_QUESTIONS:
        raise DNSError("DNS message: too many questions")
    if an + ns + ar > MAX_RECORDS:
        raise DNSError("DNS message: too many records")
    if _HEADER + qd * 5 + (an + ns + ar) * _MIN_RR > len(data):
        raise DNSError("DNS message truncated")
    for _ in range(qd):
        msg.questions.append(Question(r.name(), r.u16(), r.u16()))
    for count, section in ((an, msg.answers), (ns, msg.authority), (ar, msg.additional)):
        for _ in range(count):
            rec = _read_record(r)
            if rec.rtype != OPT:
                section.append(rec)
                continue
            # RFC 6891 §6.1.1: one OPT at most, in the additional section, owned by the root.
            if section is not msg.additional or msg.edns is not None or rec.name:
                raise DNSError("DNS message: misplaced OPT record")
            msg.edns = rec.rclass
            msg.ext_rcode = (rec.ttl >> 24) & 255
            msg.edns_flags = rec.ttl & 0xFFFFFF
            msg.edns_options = rec.data
    if r.pos != len(data):
        raise DNSError("DNS message: trailing bytes")
    return msg


def build_message(msg):
    """Serialize a Message (the inverse of parse_message, names compressed)."""
    w = Writer()
    for v in (msg.id, msg.flags, len(msg.questions), len(msg.answers), len(msg.authority),
              len(msg.additional) + (msg.edns is not None)):
        w.u16(v)
    for q in msg.questions:
        w.name(q.name)
        w.u16(q.qtype)
        w.u16(q.qclass)
    extra = []
    if msg.edns is not None:
        extra.append(Record((), OPT, msg.edns, (msg.ext_rcode << 24) | msg.edns_flags,
                            msg.edns_options))
    for rec in msg.answers + msg.authority + msg.additional + extra:
        w.name(rec.name)
        w.u16(rec.rtype)
        w.u16(rec.rclass)
        w.u32(rec.ttl)
        at = len(w.buf)
        w.u16(0)
        _build_rdata(w, rec)
        size = len(w.buf) - at - 2
        if size > 0xFFFF:
            raise DNSError("RDATA too long")
        w.buf[at] = size >> 8
        w.buf[at + 1] = size & 255
    if len(w.buf) > MAX_MESSAGE:
        raise DNSError("DNS message too long")
    return bytes(w.buf)


def build_query(qid, name, qtype, rd=True, payload=EDNS_PAYLOAD):
    """A standard query for one question, with an EDNS0 OPT advertising `payload` bytes."""
    if isinstance(name, (str, bytes)):
        name = name_from_text(name)
    msg = Message(qid & 0xFFFF, FLAG_RD if rd else 0, [Question(name, qtype, IN)], edns=payload)
    return build_message(msg)


def is_response_to(msg, qid, name, qtype):
    """True when `msg` answers our query: same ID, QR set, opcode QUERY, same question."""
    if msg.id != qid or not msg.qr or msg.opcode != 0 or len(msg.questions) != 1:
        return False
    q = msg.questions[0]
    return q.qtype == qtype and q.qclass == IN and name_key(q.name) == name_key(name)
