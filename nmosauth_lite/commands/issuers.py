"""Finding the issuer from a device: the shared --discover/--domain/--nameserver/--connect options.

`protect`, `verify`, `jwks refresh`, `register` and `token` take the same options from
DISCOVERY_OPTIONS and reach the authorization server through one path: `read(args)` checks
them once; `key_store(...)` builds the resource server's KeyStore (configured issuers plus,
with --discover, what unicast DNS-SD advertises: IS-10 RS-43, DS-05, DS-14) and `selector(...)`
the client's ServerSelector. `--connect HOST=ADDR` makes every connection to HOST go to ADDR
while TLS SNI, certificate verification and the Host header keep HOST (IS-10 CL-03, DS-13),
for devices whose resolver cannot resolve the issuer's name; it also wins over DNS-SD answers.
"""

from ..errors import ConfigError

# (flag, kind, default, metavar, help): the table verify's fast parser reads too
DISCOVERY_OPTIONS = (
    ("--discover", "flag", False, None,
     "trust the authorization servers unicast DNS-SD advertises (_nmos-auth._tcp; IS-10 RS-43)"),
    ("--domain", "append", None, "D", "DNS-SD domain to search (repeatable; default: resolv.conf search)"),
    ("--nameserver", "append", None, "IP[:PORT]", "DNS server to ask (repeatable; default: resolv.conf)"),
    ("--connect", "append", None, "HOST=ADDR",
     "connect to ADDR whenever a URL names HOST; the certificate is still verified for HOST (repeatable)"),
)
DISCOVERY_TIMEOUT = 5.0  # seconds per DNS server and attempt (resolv.conf(5) default)


def add_arguments(p, skip=()):
    """Add DISCOVERY_OPTIONS to an argparse parser (`skip`: flags the command defines itself)."""
    for flag, kind, default, metavar, help_text in DISCOVERY_OPTIONS:
        if flag in skip:
            continue
        if kind == "flag":
            p.add_argument(flag, action="store_true", default=None, help=help_text)
        else:
            p.add_argument(flag, action="append", default=default, metavar=metavar, help=help_text)


class Reach:
    """The checked settings: `discover`, `domains`, `nameservers` (lists), `connect` {host: addr}."""

    def __init__(self, discover=False, domains=None, nameservers=None, connect=None):
        from ..aio.address import parse_connect
        from ..aio.dns import parse_nameserver

        self.discover = bool(discover)
        self.domains = list(domains or [])
        self.nameservers = list(nameservers or [])
        if (self.domains or self.nameservers) and not self.discover:
            raise ConfigError("--domain and --nameserver go with --discover")
        for n in self.nameservers:
            parse_nameserver(n)  # a bad one is a usage error now, not a silent miss later
        self.connect = parse_connect(connect)

    def cache(self, dev=False, timeout=DISCOVERY_TIMEOUT):
        """An aio.dns.DiscoveryCache for these settings, or None without --discover."""
        if not self.discover:
            return None
        from ..aio.dns import DiscoveryCache

        return DiscoveryCache(domains=self.domains or None, nameservers=self.nameservers or None, dev=dev,
                              timeout=timeout)


def read(args):
    """Reach from argparse args (or a settings dict with the same names)."""
    get = args.get if isinstance(args, dict) else (lambda name, default=None: getattr(args, name, default))
    return Reach(get("discover"), get("domain"), get("nameserver"), get("connect"))


def key_store(issuers, reach, **kw):
    """The resource server's KeyStore for configured `issuers`, with --connect applied."""
    from ..aio.keystore import KeyStore

    try:
        return KeyStore(issuers or (), resolve=reach.connect, **kw)
    except ValueError as e:
        raise ConfigError(str(e))


async def trust_discovered(store, reach, timeout):
    """With --discover: one DNS-SD pass (bounded by `timeout` s) whose usable adverts become
    trusted issuers of `store`. Returns (issuers found, the DiscoveryCache to keep following)."""
    import asyncio

    cache = reach.cache(timeout=min(DISCOVERY_TIMEOUT, max(timeout / 4, 0.5)))
    if cache is None:
        return [], None
    try:
        found = await asyncio.wait_for(store.discover_once(cache), timeout)
    except asyncio.TimeoutError:
        found = store.discovered
    return found, cache
