"""DNS-SD adverts of IS-04 Registration APIs (`_nmos-register._tcp`): what `attach` forwards to.

IS-04 "Discovery: Registered Operation" over unicast DNS-SD (RFC 6763): the same query plan
as dnssd.Discovery (PTR -> SRV + TXT -> A/AAAA), other TXT rules: `api_proto` (https only
only: tokens never cross plain HTTP, BCP-003-01), `api_ver` (the Registration API versions offered),
`pri` (0-99 live, >= 100 development only) and `api_auth` (BCP-003-02 BCP-N-06: a Node in
authorized mode keeps only registries saying true; under the IPMX profile, TR-10-SEC SEC-76,
only registries saying false: IpmxRegistryDiscovery). Ordered like IS-10 servers: lowest
`pri` first, random among equals. Sans-I/O, MicroPython-compatible. Leaves out the
deprecated `_nmos-registration._tcp` name and mDNS.
"""

from . import dnssd, dnswire
from .dnssd import AdvertError

SERVICE = (b"_nmos-register", b"_tcp")  # IS-04 v1.3 registered operation
MAX_VERSIONS = 16  # api_ver entries; IS-04 has four versions so far
API_PATH = "/x-nmos/registration"


def parse_registry_advert(txt, dev=False, api_auth=True):
    """Validate the IS-04 TXT keys; return (api_proto, api_ver list, pri, api_auth).

    Raises AdvertError for missing or malformed keys, api_proto http (even in development mode:
    the bearer tokens attach adds never cross plain HTTP, IS-10 GEN-01; under IPMX registration
    is HTTPS only, RAP 1 or 2: SEC-78, SEC-79), pri >= 100 outside development mode and an
    api_auth other than the one wanted: `api_auth` True (IS-10, BCP-N-06: tokens go only to a
    registry that asks for them) or False (IPMX, SEC-75/SEC-76: TLS only, no token)."""
    proto = dnssd._value(txt, "api_proto", True)
    if proto not in ("http", "https"):
        raise AdvertError("TXT api_proto not http or https")
    if proto != "https":  # BCP-003-01, IS-10 GEN-01; IPMX RAP 0 (plain HTTP) is refused, SEC-80
        raise AdvertError("api_proto http: tokens are never sent over plain HTTP" if api_auth else
                          "api_proto http: IPMX registration is HTTPS only (SEC-78, SEC-79)")
    vers = dnssd._value(txt, "api_ver", True).split(",")
    if len(vers) > MAX_VERSIONS:
        raise AdvertError("TXT api_ver has too many entries")
    for v in vers:
        if dnssd._version(v) is None:
            raise AdvertError("TXT api_ver malformed")
    pri = dnssd._value(txt, "pri", True)
    if not pri.isdigit() or len(pri) > dnssd.MAX_PRI_DIGITS:
        raise AdvertError("TXT pri not an integer")
    pri = int(pri)
    if pri >= dnssd.DEV_PRI and not dev:
        raise AdvertError("pri >= 100 needs development mode")
    auth = dnssd._value(txt, "api_auth", True)
    if api_auth and auth != "true":  # BCP-003-02 BCP-N-06 (false, or anything else: not for us)
        raise AdvertError("api_auth is not true")
    if not api_auth and auth != "false":  # TR-10-SEC SEC-76: an IPMX Registry says false
        raise AdvertError("api_auth is not false (IPMX registration, SEC-76)")
    return proto, vers, pri, api_auth


class Registry(dnssd.Advert):
    """One usable Registration API advert: `base` is <api_proto>://<host>:<port> (no trailing
    slash); `addresses` are where to connect while TLS and Host use `host` (BCP-003-01)."""

    def __init__(self, instance, host, port, addresses, api_proto, api_ver, pri, ttl=0, expires=0, name="",
                 srv_priority=0):
        super().__init__(instance, host, port, addresses, api_proto, api_ver, pri, ttl, expires, name, srv_priority)
        self.base = "%s://%s:%d" % (api_proto, "[%s]" % host if ":" in host else host, port)

    def offers(self, version):
        """True when this registry advertises Registration API `version` (None: any version;
        an empty api_ver: a configured registry, which offers whatever the Node asks for)."""
        return version is None or not self.api_ver or version in self.api_ver

    def to_dict(self):
        d = super().to_dict()
        d["base"] = self.base
        return d

    def __repr__(self):
        return "Registry(%r, pri=%d, %s)" % (self.instance, self.pri, self.base)


class RegistryDiscovery(dnssd.Discovery):
    """dnssd.Discovery for `_nmos-register._tcp`: `results()` gives Registry objects in the
    order to try them."""

    service = SERVICE
    api_auth = True  # the api_auth an advert must carry to be used

    def parse_fields(self, txt):
        return parse_registry_advert(txt, self.dev, self.api_auth)

    def make_server(self, inst, host, port, addrs, fields, ttl, now, prio):
        proto, vers, pri, _auth = fields
        return Registry(dnssd.instance_text(inst), host, port, addrs, proto, vers, pri, ttl, now + ttl,
                        dnswire.name_to_text(inst), prio)


class IpmxRegistryDiscovery(RegistryDiscovery):
    """RegistryDiscovery under the IPMX profile: only adverts with api_auth=false (SEC-76) and
    api_proto=https (SEC-78 RAP 1, SEC-79 RAP 2), in the same order."""

    api_auth = False
