"""`nmosauth-lite demo`: the whole IS-10 story on loopback over TLS, in under half a minute.

Exit 0 when every step behaved as IS-10 says, 1 otherwise. `--serve` keeps the
authorization server and the protected Node running and prints curl commands.
"""

import asyncio
import logging
import sys

HELP = "run the IS-10 story on loopback: authorization server, protected Node, client"


def add_arguments(p):
    p.add_argument("--serve", action="store_true", help="keep running afterwards and print ready-to-paste curl commands")
    p.add_argument("--state-dir", metavar="DIR", help="keep the demo's state here (default: a temporary directory, removed)")
    p.add_argument("--verbose", action="store_true", help="show the components' logs")


def run(args):
    import cryptography  # noqa: F401  the AS half needs it: fail before the first step is printed

    from ..demo.run import main

    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(main(sys.stdout, serve=args.serve, state_dir=args.state_dir))
    except KeyboardInterrupt:
        return 0
