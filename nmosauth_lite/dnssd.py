"""DNS-SD discovery of NMOS authorization servers: the query plan and the answer assembly.

IS-10 §7 (DS-01..DS-13) over unicast DNS-SD (RFC 6763): PTR `_nmos-auth._tcp.<domain>` ->
SRV + TXT per instance -> A/AAAA per SRV target. Sans-I/O and MicroPython-compatible:
`Discovery` says which questions to ask and takes the messages that come back (additional
records included, so nothing is asked twice); `results()` checks the TXT keys, drops what we
cannot use and orders by `pri` with randomness handed in. Left out: sockets, clocks, mDNS,
SRV weights (the TXT `pri` governs, DS-09).
"""

from . import dnswire
from .dnswire import A, AAAA, IN, PTR, SRV, TXT, DNSError, name_key

SERVICE = (b"_nmos-auth", b"_tcp")  # IS-10 DS-01
BROWSE = (b"b", b"_dns-sd", b"_udp")  # RFC 6763 §11 browsing domains
WELL_KNOWN = "/.well-known/oauth-authorization-server"  # IS-10 DS-06, RFC 8414 §3
API_VERSION = "v1.0"  # the Authorization API version this package speaks
DEV_PRI = 100  # IS-10 DS-09: pri 0-99 live servers, >= 100 development only
MAX_DOMAINS = 8  # configured plus browsed domains
MAX_INSTANCES = 128  # instances assembled per run; the rest is ignored
MAX_RECORDS = 4096  # records kept per run, whatever the answers hold
MAX_PRI_DIGITS = 9  # keeps `pri` a small int
MAX_SELECTOR = 255  # api_selector octets (a TXT string holds at most 255 with its key)
_KEEP = (PTR, SRV, TXT, A, AAAA)
# RFC 3986 §3.3 path characters: unreserved, sub-delims, ':', '@', '/' and '%' escapes
_SELECTOR_CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   "-._~!$&'()*+,;=:@/%")
_HEX = "0123456789abcdefABCDEF"


class AdvertError(DNSError):
    """An advertised instance we cannot use; the message says why."""


def parse_txt(strings):
    """TXT strings -> {lower-case key: bytes value, or None for a key without '='}.

    RFC 6763 §6: keys are case-insensitive printable ASCII without '=' (§6.4); the first
    occurrence of a key wins and later ones are ignored (§6.4); empty strings and strings
    starting with '=' carry no key and are ignored (§6.1, §6.4).
    """
    out = {}
    for s in strings:
        cut = s.find(b"=")
        key = s if cut < 0 else s[:cut]
        if not key or any(c < 0x20 or c > 0x7E for c in key):
            continue
        k = dnswire.lower_label(key).decode("ascii")
        if k not in out:
            out[k] = None if cut < 0 else s[cut + 1:]
    return out


def _value(txt, key, required):
    v = txt.get(key)
    if v is None:
        if required:
            raise AdvertError("TXT %s missing" % key)
        return ""
    if any(c > 127 for c in v):  # checked by hand: MicroPython's decode does not
        raise AdvertError("TXT %s not ASCII" % key)
    return v.decode("ascii")


def _version(text):
    # IS-10 DS-08 versions look like v1.0: 'v', major, '.', minor, decimal digits.
    major, dot, minor = text[1:].partition(".")
    if text[:1] != "v" or not dot or not major.isdigit() or not minor.isdigit():
        return None
    if len(major) > 4 or len(minor) > 4:
        return None
    return (int(major), int(minor))


def _check_selector(sel):
    # IS-10 DS-10: the issuer path without its leading and trailing '/'; it ends up in a URL.
    if len(sel) > MAX_SELECTOR or sel.startswith("/") or sel.endswith("/"):
        raise AdvertError("TXT api_selector malformed")
    for seg in sel.split("/"):
        if seg in ("", ".", ".."):
            raise AdvertError("TXT api_selector malformed")
    for i in range(len(sel)):
        c = sel[i]
        if c not in _SELECTOR_CHARS:
            raise AdvertError("TXT api_selector malformed")
        if c == "%" and not (i + 2 < len(sel) and sel[i + 1] in _HEX and sel[i + 2] in _HEX):
            raise AdvertError("TXT api_selector malformed")


def parse_advert(txt, dev=False):
    """Validate the IS-10 TXT keys; return (api_proto, api_ver list, api_selector, pri).

    Raises AdvertError for missing or malformed keys and for adverts we cannot use here:
    api_proto http or pri >= 100 outside development mode, no api_ver we speak.
    """
    proto = _value(txt, "api_proto", True)
    if proto not in ("http", "https"):  # IS-10 DS-07
        raise AdvertError("TXT api_proto not http or https")
    if proto == "http" and not dev:  # IS-10 DS-07, GEN-01: https in production
        raise AdvertError("api_proto http needs development mode")
    vers = _value(txt, "api_ver", True).split(",")
    last = None
    for v in vers:  # IS-10 DS-08: comma-separated, no spaces, ascending
        parsed = _version(v)
        if parsed is None or (last is not None and parsed <= last):
            raise AdvertError("TXT api_ver malformed")
        last = parsed
    if API_VERSION not in vers:  # IS-10 DS-12
        raise AdvertError("no supported api_ver")
    pri = _value(txt, "pri", True)  # IS-10 DS-09
    if not pri.isdigit() or len(pri) > MAX_PRI_DIGITS:
        raise AdvertError("TXT pri not an integer")
    pri = int(pri)
    if pri >= DEV_PRI and not dev:
        raise AdvertError("pri >= 100 needs development mode")
    selector = _value(txt, "api_selector", False)
    if selector:
        _check_selector(selector)
    return proto, vers, selector, pri


def host_text(labels):
    """An SRV target as a URL host: lower case, no trailing dot (IS-10 DS-13), LDH only."""
    for label in labels:
        for c in label:
            if not (48 <= c <= 57 or 97 <= c <= 122 or 65 <= c <= 90 or c == 45):
                raise AdvertError("SRV target not a host name")
        if label[:1] == b"-" or label[-1:] == b"-":
            raise AdvertError("SRV target not a host name")
    return ".".join(dnswire.lower_label(x).decode("ascii") for x in labels)


def metadata_url(api_proto, host, port, api_selector=""):
    """IS-10 DS-06: <api_proto>://<host>:<port>/.well-known/oauth-authorization-server[/<sel>]."""
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # IS-10 DS-13
    url = "%s://%s:%d%s" % (api_proto, host, port, WELL_KNOWN)
    return url + "/" + api_selector if api_selector else url


def instance_text(labels):
    """The <Instance> part of a service instance name, as UTF-8 text (RFC 6763 §4.1.1)."""
    try:
        return labels[0].decode("utf-8")
    except UnicodeError:
        return dnswire.name_to_text(labels[:1])


class Advert:
    """What every usable DNS-SD API advert carries (IS-10 DS-05, IS-04 registration): where to
    connect, what it offers, its `pri`. `hosts` maps the host name to the addresses DNS-SD gave,
    for connecting while TLS and `Host` use the name. `expires` = now + ttl; `name` is the full
    service instance name, as text."""

    def __init__(self, instance, host, port, addresses, api_proto, api_ver, pri, ttl=0, expires=0, name="",
                 srv_priority=0):
        self.instance = instance
        self.host = host
        self.port = port
        self.addresses = list(addresses)
        self.api_proto = api_proto
        self.api_ver = list(api_ver)
        self.pri = pri
        self.ttl = ttl
        self.expires = expires
        self.name = name
        self.srv_priority = srv_priority
        self.hosts = {host: self.addresses}

    def key(self):
        return (self.name.lower(), self.host, self.port)

    def to_dict(self):
        return {"instance": self.instance, "host": self.host, "port": self.port,
                "addresses": list(self.addresses), "api_proto": self.api_proto,
                "api_ver": list(self.api_ver), "pri": self.pri}


class AuthServer(Advert):
    """One usable authorization server advert, with its RFC 8414 metadata URL."""

    def __init__(self, instance, host, port, addresses, api_proto, api_ver, api_selector,
                 pri, ttl=0, expires=0, name="", srv_priority=0):
        super().__init__(instance, host, port, addresses, api_proto, api_ver, pri, ttl, expires, name, srv_priority)
        self.api_selector = api_selector
        self.metadata_url = metadata_url(api_proto, host, port, api_selector)

    def to_dict(self):
        d = super().to_dict()
        pri = d.pop("pri")  # the keys in the order `discover` has always printed them
        d["api_selector"] = self.api_selector
        d["pri"] = pri
        d["metadata_url"] = self.metadata_url
        return d

    def __repr__(self):
        return "AuthServer(%r, pri=%d, %s)" % (self.instance, self.pri, self.metadata_url)


def order_servers(servers, rand_below):
    """Lowest `pri` first, then lowest SRV priority; random among equals (IS-10 DS-12).

    `rand_below(n)` returns an int in [0, n): the caller's randomness.
    """
    # The index makes the sort key total: MicroPython's sort is not stable, and the result
    # must depend on the randomness handed in only.
    keyed = [((servers[i].pri, servers[i].srv_priority), i) for i in range(len(servers))]
    keyed.sort()
    keys = [k for k, _ in keyed]
    items = [servers[i] for _, i in keyed]
    i = 0
    while i < len(items):
        j = i + 1
        while j < len(items) and keys[j] == keys[i]:
            j += 1
        for k in range(j - 1, i, -1):  # Fisher-Yates over items[i:j]
            r = i + rand_below(k - i + 1)
            items[k], items[r] = items[r], items[k]
        i = j
    return items


class Discovery:
    """The discovery of one run: ask `questions()`, feed `add_response()`, until none are left.

    Domains are label tuples (dnswire.name_from_text). A response of None means that
    question got no answer; `answered` says whether any service PTR query was answered.
    """

    service = SERVICE  # a subclass asks for another service (registry_advert: IS-04 registries)

    def __init__(self, domains, dev=False, browse=False):
        self.dev = dev
        self.browse = browse
        self.domains = []
        self._initial = []
        for d in domains:
            self._add_domain(d, self._initial)
        self._asked = {}  # (name key, type) -> None pending, True answered, False failed
        self._rrsets = {}  # (name key, type) -> [Record]
        self._stored = 0
        self.answered = False
        self.rejected = []  # (instance, reason)
        self.rcodes = {}  # (name key, type) -> RCODE of the answer, None when none came (for `explain`)

    def _add_domain(self, labels, also=None):
        dnswire.check_name(labels + self.service)
        key = name_key(labels)
        if len(self.domains) < MAX_DOMAINS and key not in [name_key(d) for d in self.domains]:
            self.domains.append(labels)
            if also is not None:
                also.append(labels)

    def rrset(self, name, rtype):
        return self._rrsets.get((name_key(name), rtype), [])

    def instances(self):
        """Service instance names from the PTR answers, in answer order, bounded."""
        out, seen = [], []
        for d in self.domains:
            svc = name_key(self.service + d)
            for rec in self.rrset(self.service + d, PTR):
                key = name_key(rec.data)
                if key[1:] != svc or len(key) != len(svc) + 1 or key in seen:
                    continue  # RFC 6763 §4.1: <Instance>.<Service>.<Domain> only
                seen.append(key)
                out.append((rec.data, rec.ttl))
                if len(out) >= MAX_INSTANCES:
                    return out
        return out

    def questions(self):
        """The (name labels, type) questions to ask now; each is handed out once."""
        want = []
        if self.browse:
            want.extend((BROWSE + d, PTR) for d in self._initial)
        want.extend((self.service + d, PTR) for d in self.domains)
        for inst, _ in self.instances():
            want.append((inst, SRV))
            want.append((inst, TXT))
            for srv in self.rrset(inst, SRV):
                target = srv.data[3]
                if target and not (self.rrset(target, A) or self.rrset(target, AAAA)):
                    want.append((target, A))
                    want.append((target, AAAA))
        out = []
        for name, qtype in want:
            key = (name_key(name), qtype)
            if key in self._asked or (qtype in (SRV, TXT) and key in self._rrsets):
                continue
            self._asked[key] = None
            out.append((name, qtype))
        return out

    def add_response(self, question, msg):
        """Take the answer to `question` (a parsed dnswire.Message), or None for no answer."""
        name, qtype = question
        key = (name_key(name), qtype)
        ok = msg is not None and msg.rcode in (dnswire.NOERROR, dnswire.NXDOMAIN)
        self._asked[key] = ok
        self.rcodes[key] = None if msg is None else msg.rcode
        if not ok:
            return
        if qtype == PTR and name_key(name)[:2] == self.service:
            self.answered = True
        for rec in msg.answers + msg.additional:
            if rec.rtype not in _KEEP or rec.rclass != IN or self._stored >= MAX_RECORDS:
                continue
            rkey = (name_key(rec.name), rec.rtype)
            rrs = self._rrsets.setdefault(rkey, [])
            if all(r.data != rec.data for r in rrs):
                rrs.append(rec)
                self._stored += 1
                if rec.rtype == PTR and self.browse and rkey[0][:3] == BROWSE:
                    self._browsed(rec)

    def _browsed(self, rec):
        # RFC 6763 §11: b._dns-sd._udp.<domain> PTR names a domain to browse as well.
        if name_key(rec.name[3:]) in [name_key(d) for d in self._initial]:
            try:
                self._add_domain(rec.data)
            except DNSError:
                pass  # too long to hold our service name: not browsable

    def _assemble(self, inst, ptr_ttl, now):
        srvs = self.rrset(inst, SRV)
        txts = self.rrset(inst, TXT)
        if not srvs:
            raise AdvertError("no SRV record")  # IS-10 DS-03
        if not txts:
            raise AdvertError("no TXT record")
        if len(txts) > 1:
            raise AdvertError("more than one TXT record")  # RFC 6763 §6
        fields = self.parse_fields(parse_txt(txts[0].data))
        out = []
        for srv in srvs:
            prio, _, port, target = srv.data
            if not target:
                raise AdvertError("SRV target '.': service not offered")  # RFC 2782
            if not port:
                raise AdvertError("SRV port 0")
            host = host_text(target)
            ttl = min(ptr_ttl, srv.ttl, txts[0].ttl)
            addrs = []
            for rec in self.rrset(target, A) + self.rrset(target, AAAA):
                if rec.data not in addrs:
                    addrs.append(rec.data)
                ttl = min(ttl, rec.ttl)
            out.append(self.make_server(inst, host, port, addrs, fields, ttl, now, prio))
        return out

    # The two hooks a subclass for another service overrides: its TXT rules and its result.
    def parse_fields(self, txt):
        """The checked TXT keys of one instance (IS-10 DS-07..DS-10); AdvertError when unusable."""
        return parse_advert(txt, self.dev)

    def make_server(self, inst, host, port, addrs, fields, ttl, now, prio):
        proto, vers, selector, pri = fields
        return AuthServer(instance_text(inst), host, port, addrs, proto, vers, selector, pri, ttl, now + ttl,
                          dnswire.name_to_text(inst), prio)

    def results(self, now, rand_below):
        """The usable servers in the order to try them; unusable ones go to `rejected`."""
        out = []
        self.rejected = []
        for inst, ptr_ttl in self.instances():
            try:
                out.extend(self._assemble(inst, ptr_ttl, now))
            except AdvertError as e:
                self.rejected.append((instance_text(inst), e.message))
        return order_servers(out, rand_below)
