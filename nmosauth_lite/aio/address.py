"""Addresses typed by an operator: listen addresses and per-host connect overrides.

`parse_listen("HOST:PORT" | "[V6]:PORT")` is the one reader of every `--listen`, `--metrics`
and `[authserver] listen` value (protect, the AS, the metrics listener, probe). `parse_connect`
reads `--connect HOST=ADDR`: connect to ADDR when a URL names HOST, while TLS SNI, certificate
verification and the Host header keep HOST (the same rule as DNS-SD answers, IS-10 DS-13,
CL-03). Pure string work with explicit limits; ConfigError for anything unusable.
"""

import ipaddress

from ..errors import ConfigError

MAX_ADDRESS = 300  # a DNS name is <= 253 octets (RFC 1035 §2.3.4) plus brackets and a port
MAX_CONNECT_OVERRIDES = 32  # --connect is for a handful of servers, not a hosts file


def parse_listen(text):
    """'HOST:PORT' or '[V6]:PORT' -> (host, port). Port 0 picks a free port."""
    if not isinstance(text, str) or len(text) > MAX_ADDRESS:
        raise ConfigError("listen address too long (over %d characters)" % MAX_ADDRESS)
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port = rest[1:] if sep and rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or len(port) > 5 or not 0 <= int(port) <= 65535 \
            or not _is_host(host):
        raise ConfigError("listen address %r: use HOST:PORT or [IPv6]:PORT" % text[:80])
    return host, int(port)


def format_listen(host, port):
    """(host, port) -> 'HOST:PORT', brackets around an IPv6 address."""
    return "%s:%d" % ("[%s]" % host if ":" in host else host, port)


def parse_connect(values):
    """['HOST=ADDR', ...] (repeatable --connect) -> {host: address}.

    HOST is a DNS name or an address as a URL would name it (lower-cased, no trailing dot);
    ADDR is an IPv4 or IPv6 address (brackets allowed) or a host name. A HOST given twice
    with different addresses is refused rather than one silently winning.
    """
    out = {}
    values = list(values or ())
    if len(values) > MAX_CONNECT_OVERRIDES:
        raise ConfigError("at most %d --connect overrides" % MAX_CONNECT_OVERRIDES)
    for text in values:
        if not isinstance(text, str) or len(text) > MAX_ADDRESS:
            raise ConfigError("--connect value too long (over %d characters)" % MAX_ADDRESS)
        host, sep, addr = text.strip().partition("=")
        host = host.strip().rstrip(".").lower()
        addr = addr.strip()
        if addr.startswith("[") and addr.endswith("]"):
            addr = addr[1:-1]
        if not sep or not host or not addr or not _is_host(host) or not _is_host(addr):
            raise ConfigError("--connect %r: use HOST=ADDRESS, e.g. auth.example.com=192.0.2.10" % text[:80])
        if out.get(host, addr) != addr:
            raise ConfigError("--connect names %s twice with different addresses" % host)
        out[host] = addr
    return out


def _is_host(text):
    """An IP address, or a DNS name of letters, digits, '-', '_' and dots (RFC 1123 §2.1)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    if not text.isascii() or len(text) > 253:
        return False
    labels = text.rstrip(".").split(".")
    if labels[-1].isdigit():  # RFC 3696 §2: never an all-numeric top label (1.2.3 is a typo'd address)
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() or c in "-_" for c in label):
            return False
    return True
