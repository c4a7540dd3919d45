"""`nmosauth-lite probe`: IS-10 / BCP-003-02 resource-server conformance of a Node in one command.

Starts the probe's own issuer (nmosauth_lite.probe.issuer), says how the Node must trust
it, then sends every check of nmosauth_lite.probe to each --api and prints a table and
`N passed, N failed, N warnings` (or one JSON document with --json). Exit 0 only when
nothing failed, 1 when a check failed, 2 for usage errors. --issuer-only serves the
issuer until interrupted, so the Node can be configured before the run.
"""

import sys

from ..errors import ConfigError

HELP = "check a Node's IS-10 resource-server behaviour (tokens, errors, CORS, WebSocket) with its own issuer"


def add_arguments(p):
    p.add_argument("url", nargs="?", metavar="URL", help="the Node, https://HOST[:PORT]")
    p.add_argument("--api", action="append", default=[], metavar="NAME/VER",
                   help="an API to check, e.g. node/v1.3 (repeatable)")
    p.add_argument("--ws", action="append", default=[], metavar="PATH",
                   help="a WebSocket path to check with access_token in the query (repeatable; RS-37..RS-39)")
    p.add_argument("--ca", metavar="FILE", help="CA certificate(s) the Node's TLS certificate chains to")
    p.add_argument("--audience", metavar="HOST", help="the Node's name for the token aud (default: the URL's host)")
    p.add_argument("--connect", metavar="ADDR", help="connect to this address instead of resolving the URL's host")
    p.add_argument("--listen", metavar="ADDR:PORT", default="127.0.0.1:0",
                   help="where the probe's issuer listens (default 127.0.0.1, any port)")
    p.add_argument("--issuer-host", metavar="NAME", help="host name in the issuer URL (default: the listen address)")
    p.add_argument("--domain", metavar="DOMAIN", help="DNS-SD domain for the printed zone lines")
    p.add_argument("--state-dir", metavar="DIR", help="where the issuer's CA and key are kept (default: state dir/probe)")
    p.add_argument("--issuer-only", action="store_true", help="only serve the issuer until interrupted")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout (for CI)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per request (default 10)")


def _settings(args):
    from ..probe import parse_api
    from ..aio.address import parse_listen

    if not args.issuer_only:
        if not args.url:
            raise ConfigError("give the Node's URL (or --issuer-only)")
        if not args.api:
            raise ConfigError("give at least one --api NAME/VER, e.g. --api node/v1.3")
    try:
        apis = [parse_api(a) for a in args.api]
    except ValueError as e:
        raise ConfigError(str(e))
    for path in args.ws:
        if not path.startswith("/") or len(path) > 1024 or any(c <= " " or c > "~" for c in path):
            raise ConfigError("--ws %r: an absolute path" % path[:80])
    if not args.timeout > 0:
        raise ConfigError("--timeout must be > 0")
    return apis, parse_listen(args.listen)


def run(args):
    import asyncio

    apis, listen = _settings(args)
    return asyncio.run(_main(args, apis, listen))


async def _main(args, apis, listen):
    import asyncio
    import json
    import signal
    import ssl

    from ..aio.files import default_state_dir
    from ..aio.tlsutil import client_context
    from ..probe import FAIL, build_checks, format_table, summary, summary_line, unprotected_apis, unprotected_line
    from ..probe.issuer import ProbeIssuer
    from ..probe.run import Target, run_checks

    target = None
    if not args.issuer_only:
        try:
            target = Target(args.url, client_context(args.ca), connect=args.connect, timeout=args.timeout)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError("cannot load --ca: %s" % (getattr(e, "strerror", None) or e))
        except ValueError as e:
            raise ConfigError(str(e))
    issuer = ProbeIssuer(args.state_dir or default_state_dir(), host=args.issuer_host, listen=listen)
    try:
        await issuer.start()
    except OSError as e:
        raise ConfigError("cannot start the probe issuer on %s: %s" % (args.listen, e.strerror or e))
    info = sys.stderr if args.json else sys.stdout
    try:
        info.write(issuer.trust_text(args.domain))
        info.flush()
        if args.issuer_only:
            if args.json:
                sys.stdout.write(json.dumps({"issuer": issuer.url, "ca_file": issuer.ca_file,
                                             "jwks_file": issuer.jwks_file}) + "\n")
            else:
                sys.stdout.write("serving until interrupted (Ctrl-C)\n")
            sys.stdout.flush()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            return 0
        mint = issuer.minter(args.audience or target.host)
        checks = build_checks(apis, mint, args.ws)
        info.write("\nprobing %s (%s)\n\n" % (args.url, ", ".join("%s/%s" % a for a in apis)))
        info.flush()
        context = {"issuer": issuer.url, "ca_file": issuer.ca_file, "jwks_file": issuer.jwks_file,
                   "audience": args.audience or target.host}
        results = await run_checks(target, checks, issuer, context=context)
    finally:
        await issuer.stop()
    if args.json:
        n = summary(results)
        doc = {"node": args.url, "issuer": issuer.url, "results": [r.to_dict() for r in results],
               "passed": n["pass"], "failed": n["fail"], "warnings": n["warn"], "summary": summary_line(results)}
        unprotected = unprotected_apis(results)
        doc["unprotected"] = unprotected
        if unprotected:
            sys.stderr.write(unprotected_line(unprotected) + "\n")
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        sys.stdout.write(format_table(results))
    return 1 if any(r.verdict == FAIL for r in results) else 0
