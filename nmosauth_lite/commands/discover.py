"""`nmosauth-lite discover`: list the IS-10 authorization servers unicast DNS-SD advertises.

Prints a JSON list in the order the servers will be tried (IS-10 DS-12). Exit 0 when at
least one usable server was found, 1 when none (or no nameserver answered), 2 on usage or
configuration errors. Domains and nameservers default to /etc/resolv.conf.
"""

import argparse
import sys

HELP = "find IS-10 authorization servers by unicast DNS-SD; print them as JSON in try order"


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text) from None
    if not 0 < value <= 30:  # resolv.conf(5) caps timeouts at 30 s
        raise argparse.ArgumentTypeError("timeout must be > 0 and <= 30 seconds")
    return value


def add_arguments(parser):
    parser.add_argument("--domain", action="append", metavar="D",
                        help="DNS-SD domain to search (repeatable; default: resolv.conf search)")
    parser.add_argument("--nameserver", action="append", metavar="IP[:PORT]",
                        help="DNS server to ask (repeatable; default: resolv.conf)")
    parser.add_argument("--dev", action="store_true",
                        help="development mode: also accept pri >= 100 and api_proto http")
    parser.add_argument("--timeout", type=_seconds, metavar="S",
                        help="seconds per server and attempt (default: resolv.conf, else 5)")
    parser.add_argument("--browse", action="store_true",
                        help="also search the domains listed at b._dns-sd._udp.<domain>")


def run(args):
    import asyncio

    from .. import jsonshim
    from ..aio import dns

    nameservers = [dns.parse_nameserver(n) for n in args.nameserver or ()]
    try:
        servers = asyncio.run(dns.discover(domains=args.domain, nameservers=nameservers or None,
                                           dev=args.dev, timeout=args.timeout,
                                           browse=args.browse))
    except dns.ResolverError as e:
        sys.stderr.write("nmosauth-lite discover: %s\n" % e.message)
        servers = []
    sys.stdout.write(jsonshim.dumps([s.to_dict() for s in servers]) + "\n")
    return 0 if servers else 1
