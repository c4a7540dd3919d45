"""`nmosauth-lite verify`: decide one request offline and print the Decision as JSON.

Exit 0 when allowed, 1 when denied, 2 for usage or configuration errors.
"""

import json
import sys

from ..errors import ConfigError
from .issuers import DISCOVERY_OPTIONS

HELP = "validate a bearer token for one request and print the decision as JSON"

MAX_JWKS_FILE = 1 << 20
MAX_STDIN_TOKEN = 65536


# The one definition of verify's options: (flag, kind, default, metavar, help). add_arguments
# builds the argparse parser from it; parse_fast reads the same table for the common command
# lines so a cold `verify` need not build parsers (argparse's gettext/locale work is ~3 ms).
# kind: "str", "float", "append" (repeatable str), "flag" (store_true); "req" marks required.
OPTIONS = (
    ("--jwks", "str", None, "FILE", "JWK Set of the trusted issuer(s); or use --issuer"),
    ("--audience", "append req", None, "HOST",
     "this resource server's host name (repeatable); under --profile ipmx: the names (CN, DNS SANs) of "
     "its TLS server certificate"),
    ("--issuer", "append", None, "URL",
     "accept only tokens whose iss is this (repeatable); without --jwks, its keys come "
     "from the persisted cache or are fetched over verified TLS (RFC 8414 metadata)"),
    ("--ca", "str", None, "FILE", "extra CA certificates (PEM) for the authorization servers"),
    ("--state-dir", "str", None, "DIR", "where fetched keys are persisted"),
    ("--method", "str", "GET", None, None),
    ("--path", "str", None, None, "request path; absent = judge the token and audience only"),
    ("--now", "float", None, "EPOCH", "evaluate at this UNIX time instead of the clock"),
    ("--leeway", "float", None, "S", "clock skew allowed on exp/iat/nbf (default 0; ipmx: 1800, its 30 minutes)"),
    ("--backend", "str", "auto", None, "auto, cryptography or pure"),
    ("--strict", "flag", False, None, "IS-10 strict profile: accept RS512 only"),
    ("--token", "str", None, "TOKEN", "the bare JWT, or - to read it from stdin; absent = no credentials"),
    ("--profile", "str", "is-10", "NAME", "is-10 (default) or ipmx (docs/ipmx.md)"),
    ("--oaim", "str", "0", "N", "ipmx: audience mode: 0 serial number (default), 1 certificate names, 2 either"),
    ("--instance-id", "str", None, "ID", "ipmx: this Node's BCP-002-02 instance id (serial number), for --oaim 0 and 2"),
    ("--grant-policy", "str", "both", "GRANT",
     "ipmx: accept both (default), client_credentials or authorization_code tokens only"),
    ("--guest-path", "append", None, "PATH", "ipmx: a read-only WebSocket endpoint (repeatable; PREFIX* allowed)"),
    ("--claims-location", "str", None, "top|ext|either",
     "where the x-nmos-* claims are: top level (IS-10, the default), under ext (Ory Hydra), or either "
     "(in both: 401; ipmx's default, where a claim in both places must be identical)"),
    ("--api-alias", "append", None, "ALIAS=API",
     "a claim/scope name the authorization server uses for an NMOS API, e.g. nc=ncp (repeatable)"),
) + DISCOVERY_OPTIONS  # --discover --domain --nameserver --connect (commands/issuers.py)
DISCOVERY_WAIT = 10.0  # --discover: the most verify waits for DNS-SD and the advertised metadata


def parse_alias_args(items):
    """['nc=ncp', 'control=ncp'] -> {'nc': 'ncp', 'control': 'ncp'}; the validator checks the names."""
    out = {}
    for item in items or ():
        alias, eq, api = str(item).partition("=")
        if not eq or not alias.strip() or not api.strip():
            raise ConfigError("API alias %r: write ALIAS=API, e.g. nc=ncp" % str(item)[:64])
        out[alias.strip()] = api.strip()
    return out


def add_arguments(p):
    for flag, kind, default, metavar, help_text in OPTIONS:
        kw = {"help": help_text}
        if kind == "flag":
            kw["action"] = "store_true"
        else:
            kw["default"] = default
            if metavar is not None:
                kw["metavar"] = metavar
            if kind.startswith("append"):
                kw["action"] = "append"
            if kind == "float":
                kw["type"] = float
            if kind.endswith(" req"):
                kw["required"] = True
        if help_text is None:
            del kw["help"]
        p.add_argument(flag, **kw)


class FastArgs:
    """What argparse's Namespace would hold for a command line parse_fast understood."""

    def __init__(self, values):
        self.__dict__.update(values)


def parse_fast(argv):
    """The verify options of `argv` (after the command name) from OPTIONS, or None whenever
    argparse might read the line differently (then the caller builds the real parser, which
    also gives help and error messages): only exact `--flag value` and `--flag=value` forms,
    values that do not start with '-' (except '-' itself), every required option present."""
    table = {}
    values = {"command": "verify", "_run": run}
    for flag, kind, default, _, _ in OPTIONS:
        table[flag] = kind
        values[flag[2:].replace("-", "_")] = default
    i = 0
    n = len(argv)
    seen = set()
    while i < n:
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        kind = table.get(flag)
        if kind is None:
            return None  # -h, abbreviations, positionals, "--", unknown options: argparse decides
        if kind == "flag":
            if eq:
                return None
            values[flag[2:].replace("-", "_")] = True
            i += 1
            seen.add(flag)
            continue
        if not eq:
            i += 1
            if i >= n:
                return None
            value = argv[i]
            if value.startswith("-") and value != "-":
                return None
        dest = flag[2:].replace("-", "_")
        if kind == "float":
            try:
                value = float(value)
            except ValueError:
                return None
        if kind.startswith("append"):
            values[dest] = (values[dest] or []) + [value]
        else:
            values[dest] = value
        seen.add(flag)
        i += 1
    for flag, kind, _, _, _ in OPTIONS:
        if kind.endswith(" req") and flag not in seen:
            return None
    return FastArgs(values)


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


def profile_options(args):
    """The TokenValidator keywords of --profile and the ipmx options. Raises ConfigError."""
    profile = getattr(args, "profile", None) or "is-10"
    if profile not in ("is-10", "ipmx"):
        raise ConfigError("unknown profile %r (choose is-10 or ipmx)" % profile[:32])
    if profile == "is-10":
        return {}
    try:
        oaim = int(args.oaim)
    except (TypeError, ValueError):
        raise ConfigError("--oaim must be 0, 1 or 2")
    return {"profile": "ipmx", "oaim": oaim, "instance_id": args.instance_id, "cert_names": args.audience or (),
            "grant_policy": args.grant_policy or "both", "guest_paths": args.guest_path or ()}


def run(args):
    from ..jws import DEFAULT_ALGORITHMS, IS10_STRICT_ALGORITHMS
    from ..validator import TokenValidator

    if args.backend not in ("auto", "cryptography", "pure"):
        raise ConfigError("unknown backend '%s' (choose auto, cryptography or pure)" % args.backend[:32])
    if args.jwks is None and not args.issuer and not args.discover:
        raise ConfigError("give --jwks FILE, --issuer URL or --discover")
    if args.jwks is not None and (args.discover or args.connect):
        raise ConfigError("--discover and --connect fetch issuers' keys: they do not go with --jwks")
    popts = profile_options(args)
    if popts and args.strict:
        raise ConfigError("--strict is the IS-10 RS512-only profile; not with --profile ipmx")
    algorithms = IS10_STRICT_ALGORITHMS if args.strict else (None if popts else DEFAULT_ALGORITHMS)
    args.popts = popts
    token = args.token
    if token == "-":
        token = sys.stdin.read(MAX_STDIN_TOKEN + 1).strip()
        if len(token) > MAX_STDIN_TOKEN:
            token = token[:MAX_STDIN_TOKEN]  # still rejected as too long by jws
    if args.jwks is not None:
        v = TokenValidator(jwks=load_jwks(args.jwks), audience=() if popts else args.audience, issuers=args.issuer,
                           leeway=args.leeway, backend=args.backend, algorithms=algorithms,
                           claims_location=args.claims_location, api_aliases=parse_alias_args(args.api_alias),
                           **popts)
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
    from ..profile import IPMX
    from ..validator import TokenValidator
    from . import issuers

    popts = args.popts
    reach = issuers.read(args)
    store = issuers.key_store(args.issuer, reach, state_dir=args.state_dir or default_state_dir(), ca_file=args.ca,
                              algorithms=algorithms or IPMX.algorithms, profile=popts.get("profile", "is-10"))
    try:
        if reach.discover:
            found, _ = await issuers.trust_discovered(store, reach, DISCOVERY_WAIT)
            if not found and not args.issuer:
                sys.stderr.write("nmosauth-lite verify: --discover found no usable authorization server\n")
        v = TokenValidator(keys=store, audience=() if popts else args.audience, leeway=args.leeway,
                           backend=args.backend, algorithms=algorithms, claims_location=args.claims_location,
                           api_aliases=parse_alias_args(args.api_alias), **popts)
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
