"""`nmosauth-lite demo`: the whole IS-10 story on loopback over TLS, in under half a minute.

Exit 0 when every step behaved as IS-10 says, 1 otherwise. `--serve` keeps the
authorization server and the protected Node running and prints curl commands.
`--node-api HOST:PORT` serves only the sample plain-HTTP IS-04 Node API (what `protect`
stands in front of) until interrupted: a Node for the README's walkthrough.
"""

import asyncio
import logging
import sys

HELP = "run the IS-10 story on loopback: authorization server, protected Node, client"


def add_arguments(p):
    p.add_argument("--serve", action="store_true", help="keep running afterwards and print ready-to-paste curl commands")
    p.add_argument("--state-dir", metavar="DIR", help="keep the demo's state here (default: a temporary directory, removed)")
    p.add_argument("--verbose", action="store_true", help="show the components' logs")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="the demo clients' network waits: connect + TLS handshake, and each answer "
                        "(default 5 s and 10 s; raise it on a slow or emulated machine)")
    p.add_argument("--node-api", metavar="HOST:PORT",
                   help="only serve the sample plain-HTTP IS-04 Node API here until interrupted (for protect)")


def run(args):
    if args.node_api:
        from ..demo.node_api import serve_alone
        from .protect import parse_listen

        try:
            return asyncio.run(serve_alone(*parse_listen(args.node_api)))
        except KeyboardInterrupt:
            return 0
    import cryptography  # noqa: F401  the AS half needs it: fail before the first step is printed

    from ..demo.run import main

    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(main(sys.stdout, serve=args.serve, state_dir=args.state_dir, timeout=args.timeout))
    except KeyboardInterrupt:
        return 0
