"""Unicast DNS-SD records that advertise the authorization server (IS-10 DS-01..DS-10).

Builds the `_nmos-auth._tcp` PTR, the instance's SRV and TXT (api_proto, api_ver,
api_selector, pri), the host's A/AAAA record and the RFC 6763 §9 service enumeration
PTR, printed for a BIND zone file and for dnsmasq options. pri 0..99 are live
servers, 100 and above development (DS-09); SRV priority repeats it.
"""

import ipaddress

SERVICE = "_nmos-auth._tcp"
API_VER = "v1.0"  # DS-08: information only, ascending, comma-separated
MAX_LABEL = 63


def _check_name(name, what):
    name = name.strip().rstrip(".")
    if not name or len(name) > 253 or any(not l or len(l) > MAX_LABEL for l in name.split(".")):
        raise ValueError("%s %r is not a DNS name" % (what, name))
    for c in name:
        if not (c.isalnum() or c in "-._") or ord(c) > 127:
            raise ValueError("%s %r is not a DNS name" % (what, name))
    return name.lower()


def _txt_quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


class ZoneRecords:
    """The records for one AS instance; `bind()` and `dnsmasq()` give configuration text."""

    def __init__(self, *, domain, host, port, addresses, issuer_path="/x-nmos/auth/v1.0", pri=0,
                 instance="nmosauth-lite", ttl=3600, proto="https"):
        self.domain = _check_name(domain, "domain")
        host = _check_name(host, "host")
        self.host = host if host.endswith("." + self.domain) or host == self.domain else host + "." + self.domain
        if not 0 < port < 65536:
            raise ValueError("port out of range")
        if not 0 <= pri <= 65535:
            raise ValueError("pri must be 0..65535 (IS-10 DS-09)")
        if proto not in ("https", "http"):
            raise ValueError("api_proto is https (or http outside production, IS-10 DS-07)")
        self.port = port
        self.addresses = [ipaddress.ip_address(a) for a in addresses]
        self.pri = pri
        self.instance = _check_name(instance, "instance")
        self.ttl = ttl
        self.proto = proto
        self.selector = issuer_path.strip("/")  # DS-10: without leading and trailing /

    @property
    def service(self):
        return "%s.%s" % (SERVICE, self.domain)

    @property
    def instance_name(self):
        return "%s.%s" % (self.instance, self.service)

    def txt(self):
        out = ["api_proto=" + self.proto, "api_ver=" + API_VER]
        if self.selector:
            out.append("api_selector=" + self.selector)
        out.append("pri=%d" % self.pri)
        return out

    def bind(self):
        t = self.ttl
        lines = [
            "; nmosauth-lite authorization server: unicast DNS-SD (IS-10 Discovery)",
            "$ORIGIN %s." % self.domain,
            "_services._dns-sd._udp %d IN PTR %s." % (t, self.service),
            "%s %d IN PTR %s." % (SERVICE, t, self.instance_name),
            "%s.%s %d IN SRV %d 0 %d %s." % (self.instance, SERVICE, t, self.pri, self.port, self.host),
            "%s.%s %d IN TXT %s" % (self.instance, SERVICE, t, " ".join(_txt_quote(x) for x in self.txt())),
        ]
        for a in self.addresses:
            lines.append("%s. %d IN %s %s" % (self.host, t, "A" if a.version == 4 else "AAAA", a))
        return "\n".join(lines) + "\n"

    def dnsmasq(self):
        lines = [
            "# nmosauth-lite authorization server: unicast DNS-SD (IS-10 Discovery)",
            "ptr-record=_services._dns-sd._udp.%s,%s" % (self.domain, self.service),
            "ptr-record=%s,%s" % (self.service, self.instance_name),
            "srv-host=%s,%s,%d,%d,0" % (self.instance_name, self.host, self.port, self.pri),
            "txt-record=%s,%s" % (self.instance_name, ",".join(_txt_quote(x) for x in self.txt())),
        ]
        for a in self.addresses:
            lines.append("host-record=%s,%s" % (self.host, a))
        return "\n".join(lines) + "\n"


def primary_address():
    """This host's address on the default route (no packet is sent), or None."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects a route
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
