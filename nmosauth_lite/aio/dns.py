"""Unicast DNS for DNS-SD discovery on asyncio: the I/O side of dnswire and dnssd.

UDP queries carry a random ID and leave from a connected ephemeral socket, so the OS picks a
random source port and drops datagrams from other peers; an answer counts only when its
source, ID and question match (RFC 5452 §9). TC set -> the same question over TCP (RFC 7766).
Per-server timeout and attempts, nameservers and search domains from /etc/resolv.conf (read
when first needed), every setting overridable. `discover()` runs IS-10 DS discovery;
`DiscoveryCache` keeps its result until the shortest TTL runs out or a server fails (DS-11).
"""

import asyncio
import ipaddress
import random
import secrets
import time

from .. import dnssd, dnswire
from ..errors import ConfigError, NmosAuthError

RESOLV_CONF = "/etc/resolv.conf"
DEFAULT_TIMEOUT = 5.0  # resolv.conf(5) defaults: timeout 5 s, 2 attempts
DEFAULT_ATTEMPTS = 2
MAX_TIMEOUT = 30.0  # resolv.conf(5) caps timeout at 30 and attempts at 5
MAX_ATTEMPTS = 5
MAX_NAMESERVERS = 3  # resolv.conf(5) MAXNS
MAX_SEARCH = 6
MAX_CONCURRENT = 16  # questions in flight per discovery run
MAX_ROUNDS = 6  # browse, PTR, SRV+TXT, A+AAAA: four rounds do; two spare
MIN_REQUERY = 5.0  # seconds: floor for TTL-driven re-queries (dnsmasq serves TTL 0 by default)
MAX_REQUERY = 86400.0
EMPTY_REQUERY = 30.0  # when nothing is advertised, look again after this long
FAILED_HOLD = 60.0  # a failed server waits at the back of the list this long (DS-11)
_SYSRANDOM = random.SystemRandom()


class ResolverError(NmosAuthError):
    """No usable answer from any nameserver (timeouts, refusals, garbage)."""


def parse_nameserver(text, default_port=53):
    """'IP', 'IP:PORT', '[IPv6]:PORT' -> (ip text, port); ConfigError when malformed."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError("bad nameserver %r" % text)
        port = rest[1:] if rest else port
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        port = int(port)
    except ValueError:
        raise ConfigError("bad nameserver %r: want IP[:PORT]" % text) from None
    if not 0 < port < 65536:
        raise ConfigError("bad nameserver %r: port out of range" % text)
    scope = host.partition("%")[2]
    return (str(ip) + ("%" + scope if scope else ""), port)


def parse_resolv_conf(text):
    """The parts of resolv.conf(5) we use: nameserver, domain/search (last wins), options."""
    conf = {"nameservers": [], "search": [], "timeout": None, "attempts": None}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0][0] in "#;":
            continue
        kw, args = parts[0], parts[1:]
        if kw == "nameserver" and args and len(conf["nameservers"]) < MAX_NAMESERVERS:
            try:
                conf["nameservers"].append(parse_nameserver(args[0]))
            except ConfigError:
                pass  # like the C library: skip what does not parse
        elif kw in ("domain", "search"):
            conf["search"] = [d for d in args[:MAX_SEARCH] if d.strip(".")]
        elif kw == "options":
            for opt in args:
                name, _, val = opt.partition(":")
                if name == "timeout" and val.isdigit():
                    conf["timeout"] = float(min(max(int(val), 1), MAX_TIMEOUT))
                elif name == "attempts" and val.isdigit():
                    conf["attempts"] = min(max(int(val), 1), MAX_ATTEMPTS)
    return conf


def _same_host(a, b):
    try:
        return ipaddress.ip_address(a.split("%", 1)[0]) == ipaddress.ip_address(b.split("%", 1)[0])
    except ValueError:
        return False


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, accept, future):
        self.accept = accept
        self.future = future

    def datagram_received(self, data, addr):
        if not self.future.done():
            msg = self.accept(data, addr)
            if msg is not None:
                self.future.set_result(msg)

    def error_received(self, exc):  # e.g. ICMP port unreachable: this server is not there
        if not self.future.done():
            self.future.set_exception(exc)

    def connection_lost(self, exc):
        if not self.future.done():
            self.future.set_exception(ConnectionError("UDP socket closed"))


class Resolver:
    """A stub resolver for single questions. Arguments left None come from resolv.conf."""

    def __init__(self, nameservers=None, search=None, timeout=None, attempts=None,
                 resolv_conf=RESOLV_CONF):
        self.nameservers = list(nameservers) if nameservers else None
        self.search = list(search) if search else None
        self.timeout = timeout
        self.attempts = attempts
        self.resolv_conf = resolv_conf
        self.stats = {"udp": 0, "tcp": 0, "ignored": 0}

    def configure(self):
        """Fill unset settings from resolv.conf (once); ConfigError when no nameserver."""
        if None in (self.nameservers, self.search, self.timeout, self.attempts):
            try:
                with open(self.resolv_conf, encoding="utf-8", errors="replace") as f:
                    conf = parse_resolv_conf(f.read())
            except OSError:
                conf = parse_resolv_conf("")
            if self.nameservers is None:
                self.nameservers = conf["nameservers"]
            if self.search is None:
                self.search = conf["search"]
            if self.timeout is None:
                self.timeout = conf["timeout"] or DEFAULT_TIMEOUT
            if self.attempts is None:
                self.attempts = conf["attempts"] or DEFAULT_ATTEMPTS
        if not self.nameservers:
            raise ConfigError("no nameserver: give one or list it in %s" % self.resolv_conf)
        if not 0 < self.timeout <= MAX_TIMEOUT or not 0 < self.attempts <= MAX_ATTEMPTS:
            raise ConfigError("DNS timeout or attempts out of range")

    async def query(self, name, qtype):
        """Ask every nameserver in turn, `attempts` rounds; the first NOERROR/NXDOMAIN wins."""
        if isinstance(name, str):
            name = dnswire.name_from_text(name)
        self.configure()
        reason = "no nameserver"
        for _ in range(self.attempts):
            for server in self.nameservers:
                try:
                    msg = await asyncio.wait_for(self._udp(server, name, qtype), self.timeout)
                    if msg.tc:
                        msg = await asyncio.wait_for(self._tcp(server, name, qtype), self.timeout)
                except (OSError, EOFError, dnswire.DNSError) as e:  # TimeoutError is an OSError
                    reason = type(e).__name__
                    continue
                if msg.rcode in (dnswire.NOERROR, dnswire.NXDOMAIN):
                    return msg
                reason = "RCODE %d" % msg.rcode
        raise ResolverError("no answer for %s type %d (%s)" % (
            dnswire.name_to_text(name), qtype, reason))

    async def _udp(self, server, name, qtype):
        self.stats["udp"] += 1
        qid = secrets.randbits(16)
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def accept(data, addr):
            try:
                msg = dnswire.parse_message(data)
            except dnswire.DNSError:
                msg = None
            if (msg is None or not _same_host(addr[0], server[0]) or addr[1] != server[1]
                    or not dnswire.is_response_to(msg, qid, name, qtype)):
                self.stats["ignored"] += 1  # spoofed, stray or garbage: keep waiting
                return None
            return msg

        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Exchange(accept, future), remote_addr=server)
        try:
            transport.sendto(dnswire.build_query(qid, name, qtype))
            return await future
        finally:
            transport.close()

    async def _tcp(self, server, name, qtype):
        self.stats["tcp"] += 1
        qid = secrets.randbits(16)
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            query = dnswire.build_query(qid, name, qtype)
            writer.write(bytes([len(query) >> 8, len(query) & 255]) + query)  # RFC 1035 §4.2.2
            await writer.drain()
            head = await reader.readexactly(2)
            data = await reader.readexactly((head[0] << 8) | head[1])
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        msg = dnswire.parse_message(data)
        if not dnswire.is_response_to(msg, qid, name, qtype):
            raise dnswire.DNSError("TCP answer does not match the question")
        return msg


def _domain(d):
    if isinstance(d, tuple):
        return d
    try:
        labels = dnswire.name_from_text(d)
    except dnswire.DNSError as e:
        raise ConfigError("bad DNS-SD domain %r: %s" % (d, e.message)) from None
    if not labels:
        raise ConfigError("bad DNS-SD domain %r" % d)
    return labels


async def run_discovery(resolver, domains=None, dev=False, browse=False, total_timeout=None,
                        plan_class=dnssd.Discovery):
    """Drive a dnssd.Discovery (or `plan_class`, e.g. registry_advert.RegistryDiscovery) to the
    end within `total_timeout` seconds in all. Questions unanswered at the deadline count as no answer."""
    resolver.configure()
    domains = domains or resolver.search
    if not domains:
        raise ConfigError("no DNS-SD domain: give one or set search/domain in resolv.conf")
    plan = plan_class([_domain(d) for d in domains], dev, browse)
    if total_timeout is None:  # four rounds of the worst case of one question (UDP + TCP)
        total_timeout = 4 * 2 * resolver.timeout * resolver.attempts * len(resolver.nameservers)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_timeout
    sem = asyncio.Semaphore(MAX_CONCURRENT)

    async def ask(question):
        async with sem:
            try:
                return await resolver.query(*question)
            except ResolverError:
                return None

    for _ in range(MAX_ROUNDS):
        questions = plan.questions()
        if not questions:
            break
        tasks = [asyncio.ensure_future(ask(q)) for q in questions]
        _, pending = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0.001))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for question, task in zip(questions, tasks):
            plan.add_response(question, None if task.cancelled() else task.result())
    return plan


async def discover(domains=None, nameservers=None, dev=False, timeout=None, rng=None,
                   browse=False, attempts=None, resolver=None, now=None, plan_class=dnssd.Discovery):
    """The usable authorization servers, in the order to try them (IS-10 DS-05, DS-12).

    `nameservers` are (ip, port) pairs or 'IP[:PORT]' strings; `timeout` is per server and
    attempt; `rng` is a random.Random-like object or a rand_below(n) function; `plan_class`
    another service's plan (registry_advert.RegistryDiscovery: IS-04 registries). Raises
    ResolverError when no service query was answered, ConfigError for bad settings.
    """
    if resolver is None:
        if nameservers:
            nameservers = [parse_nameserver(n) if isinstance(n, str) else n for n in nameservers]
        resolver = Resolver(nameservers, timeout=timeout, attempts=attempts)
    plan = await run_discovery(resolver, domains, dev, browse, plan_class=plan_class)
    if not plan.answered:
        raise ResolverError("no nameserver answered the DNS-SD query")
    rng = rng or _SYSRANDOM
    rand_below = getattr(rng, "randrange", rng)
    return plan.results(time.time() if now is None else now, rand_below)


class DiscoveryCache:
    """Discovered servers for the key store and the OAuth client.

    `get()` re-runs discovery when the shortest TTL has run out, or after `mark_failed()`
    (at most every MIN_REQUERY seconds). A failed server moves to the back of the list for
    FAILED_HOLD seconds. A re-query that gets no answer keeps the last good list.
    """

    def __init__(self, discover_fn=None, clock=time.monotonic, failed_hold=FAILED_HOLD,
                 min_requery=MIN_REQUERY, **discover_kwargs):
        self._discover = discover_fn or discover
        self._kwargs = discover_kwargs
        self._clock = clock
        self.failed_hold = failed_hold
        self.min_requery = min_requery
        self._servers = None
        self._expires = 0.0
        self._fetched = None
        self._dirty = False
        self._failed = {}
        self._lock = asyncio.Lock()

    def _stale(self, now):
        if self._servers is None or now >= self._expires:
            return True
        return self._dirty and now >= self._fetched + self.min_requery

    async def get(self):
        if self._stale(self._clock()):
            async with self._lock:  # single flight
                if self._stale(self._clock()):
                    await self._refresh()
        now = self._clock()
        good = [s for s in self._servers if self._failed.get(s.key(), 0) <= now]
        return good + [s for s in self._servers if self._failed.get(s.key(), 0) > now]

    async def _refresh(self):
        now = self._fetched = self._clock()
        self._dirty = False
        try:
            servers = await self._discover(**self._kwargs)
        except ResolverError:
            if self._servers is None:
                raise
            self._expires = now + self.min_requery  # keep the last good list, retry soon
            return
        self._servers = servers
        ttl = min([s.ttl for s in servers]) if servers else EMPTY_REQUERY
        self._expires = now + min(max(ttl, self.min_requery), MAX_REQUERY)

    def mark_failed(self, server):
        """Record that `server` did not answer or answered 5xx (IS-10 DS-11, RS-03)."""
        now = self._clock()
        self._failed = {k: t for k, t in self._failed.items() if t > now}
        self._failed[server.key()] = now + self.failed_hold
        self._dirty = True

    def address_map(self):
        """host name -> addresses over every known server (for connecting by address)."""
        out = {}
        for s in self._servers or []:
            for host, addrs in s.hosts.items():
                out.setdefault(host, [])
                out[host].extend(a for a in addrs if a not in out[host])
        return out
