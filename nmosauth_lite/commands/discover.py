"""`nmosauth-lite discover`: list the IS-10 authorization servers unicast DNS-SD advertises.

Prints a JSON list in the order the servers will be tried (IS-10 DS-12). Exit 0 when at
least one usable server was found, 1 when none (or no nameserver answered), 2 on usage or
configuration errors. Domains and nameservers default to /etc/resolv.conf. With nothing
usable, stderr says what was asked of which servers and what came back (NXDOMAIN, no PTR,
no answer, each advertised instance and why it was not usable).
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


RCODE_TEXT = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def explain(plan, resolver):
    """Lines telling an operator why discovery found nothing usable."""
    from .. import dnssd, dnswire

    servers = ", ".join("%s:%d" % (h if ":" not in h else "[%s]" % h, p) for h, p in resolver.nameservers)
    out = ["no usable authorization server: asked %s for PTR %s" % (
        servers, ", ".join(dnswire.name_to_text(dnssd.SERVICE + d) for d in plan.domains))]
    found = {dnssd.name_key(inst) for inst, _ in plan.instances()}
    for d in plan.domains:
        name = dnssd.SERVICE + d
        key = (dnssd.name_key(name), dnssd.PTR)
        text = dnswire.name_to_text(name)
        rcode = plan.rcodes.get(key, "unasked")
        if rcode == "unasked" or rcode is None:
            out.append("%s: no answer (time-out %g s x %d attempt(s) per server)" % (
                text, resolver.timeout, resolver.attempts))
        elif rcode == dnswire.NXDOMAIN:
            out.append("%s: NXDOMAIN (no such name: nothing advertised in %s)" % (
                text, dnswire.name_to_text(d)))
        elif rcode != dnswire.NOERROR:
            out.append("%s: %s" % (text, RCODE_TEXT.get(rcode, "RCODE %d" % rcode)))
        elif not any(k[1:] == key[0] for k in found):
            out.append("%s: no PTR record (the name exists, no _nmos-auth._tcp instance listed)" % text)
    for instance, reason in plan.rejected:
        hint = " (use --dev to accept it)" if "development mode" in reason else ""
        out.append("instance %s: not usable: %s%s" % (instance, reason, hint))
    return out


def run(args):
    import asyncio
    import random
    import time

    from .. import jsonshim
    from ..aio import dns

    nameservers = [dns.parse_nameserver(n) for n in args.nameserver or ()]
    resolver = dns.Resolver(nameservers or None, timeout=args.timeout)
    plan = asyncio.run(dns.run_discovery(resolver, args.domain, args.dev, args.browse))
    servers = plan.results(time.time(), random.SystemRandom().randrange)
    sys.stdout.write(jsonshim.dumps([s.to_dict() for s in servers]) + "\n")
    if not servers:
        sys.stderr.write("".join("nmosauth-lite discover: %s\n" % line for line in explain(plan, resolver)))
    return 0 if servers else 1
