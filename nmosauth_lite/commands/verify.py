"""`nmosauth-lite verify`: decide one request offline and print the Decision as JSON.

Exit 0 when allowed, 1 when denied, 2 for usage or configuration errors.
"""

import json
import sys

from ..errors import ConfigError

HELP = "validate a bearer token for one request and print the decision as JSON"

MAX_JWKS_FILE = 1 << 20
MAX_STDIN_TOKEN = 65536


def add_arguments(p):
    p.add_argument("--jwks", metavar="FILE", help="JWK Set of the trusted issuer(s); or use --issuer")
    p.add_argument("--audience", action="append", required=True, metavar="HOST",
                   help="this resource server's host name (repeatable)")
    p.add_argument("--issuer", action="append", metavar="URL",
                   help="accept only tokens whose iss is this (repeatable); without --jwks, its keys come "
                        "from the persisted cache or are fetched over verified TLS (RFC 8414 metadata)")
    p.add_argument("--ca", metavar="FILE", help="extra CA certificates (PEM) for the authorization servers")
    p.add_argument("--state-dir", metavar="DIR", help="where fetched keys are persisted")
    p.add_argument("--method", default="GET")
    p.add_argument("--path", help="request path; absent = judge the token and audience only")
    p.add_argument("--now", type=float, metavar="EPOCH", help="evaluate at this UNIX time instead of the clock")
    p.add_argument("--leeway", type=float, default=0.0, metavar="S", help="clock skew allowed on exp/iat/nbf")
    p.add_argument("--backend", default="auto", help="auto, cryptography or pure")
    p.add_argument("--strict", action="store_true", help="IS-10 strict profile: accept RS512 only")
    p.add_argument("--token", metavar="TOKEN", help="the bare JWT, or - to read it from stdin; absent = no credentials")


def load_jwks(path):
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JWKS_FILE + 1)
    except OSError as e:
        raise ConfigError("cannot read JWKS file %s: %s" % (path, e.strerror or e))
    if len(raw) > MAX_JWKS_FILE:
        raise ConfigError("JWKS file %s is larger than 1 MiB" % path)
    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigError("JWKS file %s is not JSON" % path)


def run(args):
    from ..jws import DEFAULT_ALGORITHMS, IS10_STRICT_ALGORITHMS
    from ..validator import TokenValidator

    if args.backend not in ("auto", "cryptography", "pure"):
        raise ConfigError("unknown backend '%s' (choose auto, cryptography or pure)" % args.backend[:32])
    if args.jwks is None and not args.issuer:
        raise ConfigError("give --jwks FILE or --issuer URL")
    algorithms = IS10_STRICT_ALGORITHMS if args.strict else DEFAULT_ALGORITHMS
    token = args.token
    if token == "-":
        token = sys.stdin.read(MAX_STDIN_TOKEN + 1).strip()
        if len(token) > MAX_STDIN_TOKEN:
            token = token[:MAX_STDIN_TOKEN]  # still rejected as too long by jws
    if args.jwks is not None:
        v = TokenValidator(jwks=load_jwks(args.jwks), audience=args.audience, issuers=args.issuer,
                           leeway=args.leeway, backend=args.backend, algorithms=algorithms)
        v.backend  # resolve now so an unavailable backend is a configuration error (exit 2)
        d = v.check(token, method=args.method, path=args.path, now=args.now)
    else:
        import asyncio

        d = asyncio.run(_check_with_issuers(args, token, algorithms))
    sys.stdout.write(json.dumps(d.to_dict(), sort_keys=True) + "\n")
    return 0 if d.status == 200 else 1


async def _check_with_issuers(args, token, algorithms):
    """Keys from the persisted cache (refreshed when due), one on-demand fetch for an unknown kid."""
    from ..aio.files import default_state_dir
    from ..aio.keystore import KeyStore
    from ..validator import TokenValidator

    store = KeyStore(args.issuer, state_dir=args.state_dir or default_state_dir(), ca_file=args.ca,
                     algorithms=algorithms)
    try:
        v = TokenValidator(keys=store, audience=args.audience, leeway=args.leeway, backend=args.backend,
                           algorithms=algorithms)
        v.backend
        await store.refresh()  # only issuers whose refresh is due; failures keep the persisted keys
        d = v.check(token, method=args.method, path=args.path, now=args.now)
        if d.status == 503 and d.claims is None:
            iss = _unverified_iss(token)
            if iss is not None and await store.wait(iss, store.fetch_timeout * 2):
                d = v.check(token, method=args.method, path=args.path, now=args.now)
        return d
    finally:
        await store.close()


def _unverified_iss(token):
    from ..errors import TokenError
    from ..jws import parse

    try:
        return parse(token).claims.get("iss")
    except TokenError:
        return None
