"""DNS test peers: a real dnsmasq on loopback and an in-process fake DNS server.

dnsmasq is required (Debian package dnsmasq-base, installed by `make sysdeps`); when it is
missing the tests fail loudly instead of skipping. The fake server exists only for what no
real server does: hostile packets, wrong IDs or questions, answers from another port.
"""

import asyncio
import ipaddress
import os
import shutil
import socket
import subprocess
import time

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from procs import stop_child

START_TIMEOUT = 10.0


def find_dnsmasq():
    path = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
    if path is None:
        raise RuntimeError("dnsmasq not found: install the Debian package dnsmasq-base (make sysdeps)")
    return path


def free_port():
    """A loopback port free for both UDP and TCP right now."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free loopback port")


def raw_query(port, name, rdtype, timeout=0.5, payload=1232):
    """Send one query with dnspython's builder; return the raw answer bytes or None."""
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=payload)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        return s.recvfrom(65535)[0]
    except OSError:
        return None
    finally:
        s.close()


class Dnsmasq:
    """dnsmasq serving `conf_lines` (dnsmasq.conf syntax) on 127.0.0.1:<random port>."""

    def __init__(self, workdir, conf_lines, local_domains=(), local_ttl=300):
        self.workdir = str(workdir)
        self.conf = os.path.join(self.workdir, "dnsmasq.conf")
        self.pidfile = os.path.join(self.workdir, "dnsmasq.pid")
        self.logfile = os.path.join(self.workdir, "dnsmasq.log")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf_lines) + "\n")
        self.local_domains = list(local_domains)
        self.local_ttl = local_ttl
        self.proc = None
        self.port = None

    def start(self):
        exe = find_dnsmasq()
        for _ in range(5):
            self.port = free_port()
            cmd = [exe, "--keep-in-foreground", "--port=%d" % self.port,
                   "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                   "--conf-file=" + self.conf, "--pid-file=" + self.pidfile,
                   "--log-facility=-", "--local-ttl=%d" % self.local_ttl]
            cmd += ["--local=/%s/" % d for d in self.local_domains]
            log = open(self.logfile, "w")
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
            log.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if raw_query(self.port, "probe.invalid", "A", timeout=0.2) is not None:
                    return self
            self.stop()
            if "in use" not in self.log():
                break
        raise RuntimeError("dnsmasq did not start:\n" + self.log())

    def log(self):
        try:
            with open(self.logfile) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        stop_child(self.proc, 5)
        self.proc = None

    @property
    def server(self):
        return ("127.0.0.1", self.port)


class FakeDNS:
    """A scripted DNS server on loopback (UDP, and TCP on the same port).

    `handler(query, wire, transport)` gets the dnspython query and returns a list of
    replies: bytes (sent back from the server's port) or ("other-port", bytes).
    """

    def __init__(self, handler, tcp_handler=None):
        self.handler = handler
        self.tcp_handler = tcp_handler
        self.queries = []  # (transport, wire, source address)

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        fake = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                fake.queries.append(("udp", data, addr))
                for reply in fake.handler(dns.message.from_wire(data), data, "udp"):
                    if isinstance(reply, tuple):
                        fake.other.sendto(reply[1], addr)
                    else:
                        self.transport.sendto(reply, addr)

        for _ in range(20):
            self.transport, _ = await loop.create_datagram_endpoint(
                Proto, local_addr=("127.0.0.1", 0))
            self.port = self.transport.get_extra_info("sockname")[1]
            try:
                self.tcp = await asyncio.start_server(self._tcp, "127.0.0.1", self.port)
                break
            except OSError:
                self.transport.close()
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        return self

    async def _tcp(self, reader, writer):
        try:
            head = await reader.readexactly(2)
            data = await reader.readexactly(int.from_bytes(head, "big"))
            self.queries.append(("tcp", data, writer.get_extra_info("peername")))
            handler = self.tcp_handler or self.handler
            for reply in handler(dns.message.from_wire(data), data, "tcp"):
                writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aexit__(self, *exc):
        self.transport.close()
        self.tcp.close()
        await self.tcp.wait_closed()
        self.other.close()

    @property
    def server(self):
        return ("127.0.0.1", self.port)


def answer(query, *records, flags_add=0, rcode=0):
    """A dnspython response to `query` holding text records ('name ttl IN TYPE data')."""
    r = dns.message.make_response(query)
    r.set_rcode(rcode)
    r.flags |= flags_add
    for text in records:
        section = r.additional if text.startswith("+") else r.answer
        name, ttl, rdclass, rdtype, rdata = text.lstrip("+").split(None, 4)
        rrset = r.find_rrset(section, dns.name.from_text(name), dns.rdataclass.from_text(rdclass),
                             dns.rdatatype.from_text(rdtype), create=True)
        rrset.add(dns.rdata.from_text(rdclass, rdtype, rdata), int(ttl))
    return r


# --- differential parsing against dnspython --------------------------------

def _labels(name):
    return tuple(name.labels[:-1]) if name.labels and name.labels[-1] == b"" else tuple(name.labels)


def _same_rdata(rec, rd):
    from nmosauth_lite import dnswire

    t = rec.rtype
    if rec.rclass != dnswire.IN:
        return rec.data == rd.to_wire()
    if t in (dnswire.A, dnswire.AAAA):
        return ipaddress.ip_address(rec.data) == ipaddress.ip_address(rd.address)
    if t in (dnswire.PTR, dnswire.CNAME, dnswire.NS):
        return rec.data == _labels(rd.target)
    if t == dnswire.SRV:
        return rec.data == (rd.priority, rd.weight, rd.port, _labels(rd.target))
    if t == dnswire.TXT:
        return rec.data == list(rd.strings)
    return rec.data == rd.to_wire()


def assert_same_as_dnspython(wire):
    """Parse `wire` with dnswire and dnspython and check that every field agrees."""
    from nmosauth_lite import dnswire

    ours = dnswire.parse_message(wire)
    theirs = dns.message.from_wire(wire, one_rr_per_rrset=True)
    assert ours.id == theirs.id
    assert ours.opcode == theirs.opcode() and ours.rcode == theirs.rcode()
    assert ours.flags == int(theirs.flags)
    assert [(q.name, q.qtype, q.qclass) for q in ours.questions] == [
        (_labels(q.name), q.rdtype, q.rdclass) for q in theirs.question]
    for mine, section in ((ours.answers, theirs.answer), (ours.authority, theirs.authority),
                          (ours.additional, theirs.additional)):
        assert len(mine) == len(section)
        for rec, rrset in zip(mine, section):
            assert (rec.name, rec.rtype, rec.rclass) == (_labels(rrset.name), rrset.rdtype,
                                                          rrset.rdclass)
            assert rec.ttl == (rrset.ttl if rrset.ttl < 2 ** 31 else 0)  # RFC 2181 §8
            assert _same_rdata(rec, rrset[0])
    if theirs.edns < 0:
        assert ours.edns is None
    else:
        assert ours.edns == theirs.payload
        assert (ours.edns_flags >> 16) & 255 == theirs.edns
        assert ours.edns_flags & 0xFFFF == theirs.ednsflags & 0xFFFF
    return ours
