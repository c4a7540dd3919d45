"""`nmosauth-lite as`: run and administer the lite IS-10 authorization server.

serve (HTTPS until SIGTERM/SIGINT, one JSON line on stdout when ready; --lab allows
client_credentials for every scope, BCP-003-02 BCP-G-03 permitting that only by a
deployment's choice), client add|list|update|remove|approve|iat (a client's own audience list
and ipmx permissions: --audience, --permission), keys list|rotate|withdraw,
user add|list, token (an operator-minted access token for tests, audited), zone
(DNS-SD records for BIND and dnsmasq). Administration commands open the server's SQLite store
directly; a running server sees their changes at once. Needs `cryptography`.
"""

import getpass
import json
import os
import sys
import time

from ..errors import ConfigError

HELP = "run and administer the lite IS-10 authorization server"


def add_arguments(p):
    common = p.__class__(add_help=False)
    common.add_argument("--state-dir", metavar="DIR", help="state directory (default: $STATE_DIRECTORY, "
                        "/var/lib/nmosauth-lite as root, ~/.local/state/nmosauth-lite otherwise)")
    common.add_argument("--config", metavar="FILE", help="TOML configuration ([authserver] table)")
    common.add_argument("--profile", choices=("is-10", "ipmx"),
                        help="tokens for IS-10 (default) or for the IPMX device profile (docs/ipmx.md): typ, "
                             "sub == client_id for client_credentials, 1-24 h lifetime, aud-index permissions, "
                             "claims in ext; client_credentials allowed for controllers")
    sub = p.add_subparsers(dest="as_command", metavar="ACTION", parser_class=p.__class__)
    s = sub.add_parser("serve", parents=[common], help="serve the Authorization API over HTTPS")
    s.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:8443)")
    s.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    s.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics on this separate listener (off by default)")
    s.add_argument("--lab", action="store_true", default=None,
                   help="LAB ONLY: allow client_credentials for every scope (Node APIs too); never in production")
    s.add_argument("--cert", action="append", metavar="FILE",
                   help="TLS certificate (PEM; e.g. from certs make); default: a local CA. Repeat with --key for a "
                        "second one (one RSA, one ECDSA: BCP-003-01)")
    s.add_argument("--key", action="append", metavar="FILE", help="TLS private key of the --cert in the same place")
    s.add_argument("--audience", action="append", metavar="HOST",
                   help="token aud value (repeatable; default tokens.audience, else a wildcard of this host's domain)")
    s.add_argument("--hsts-max-age", type=int, metavar="S",
                   help="Strict-Transport-Security max-age (default 31536000, BCP-003-01; 0: off)")

    from . import asclients

    asclients.add_arguments(sub, common)

    k = sub.add_parser("keys", help="signing keys").add_subparsers(dest="keys_command", metavar="ACTION",
                                                                   parser_class=p.__class__)
    k.add_parser("list", parents=[common], help="list signing keys and their states (JSON)")
    r = k.add_parser("rotate", parents=[common], help="publish a new key now; it signs after --delay")
    r.add_argument("--delay", type=int, metavar="SECONDS", help="default keys.publish_before_use (7200)")
    r.add_argument("--alg", choices=["RS512", "ES256"])
    w = k.add_parser("withdraw", parents=[common], help="remove a key from the JWKS and from signing at once")
    w.add_argument("kid")

    u = sub.add_parser("user", help="users who approve authorization requests").add_subparsers(
        dest="user_command", metavar="ACTION", parser_class=p.__class__)
    ua = u.add_parser("add", parents=[common], help="add or replace a user (password asked, or from stdin)")
    ua.add_argument("username")
    ua.add_argument("--scope", default="", help="scopes the user may grant (default: all)")
    ua.add_argument("--password-stdin", action="store_true")
    u.add_parser("list", parents=[common], help="list users (JSON)")

    t = sub.add_parser("token", parents=[common], help="mint an access token for testing (RS512 by default, "
                       "signed with this server's key, audited); prints the token alone")
    t.add_argument("--scope", required=True, help='space-separated scopes, e.g. "node connection"')
    t.add_argument("--audience", action="append", metavar="HOST",
                   help="aud value (repeatable; default: the audience the server last started with)")
    t.add_argument("--lifetime", type=int, metavar="SECONDS",
                   help="30..3600 (IS-10 TOK-07; ipmx 3600..86400, SEC-65; default tokens.lifetime)")
    t.add_argument("--sub", default="operator", help="the sub claim (default operator)")
    t.add_argument("--issuer", metavar="URL", help="default: the issuer the server last started as")

    z = sub.add_parser("zone", parents=[common], help="print _nmos-auth._tcp records for BIND and dnsmasq")
    z.add_argument("--domain", required=True)
    z.add_argument("--host", help="the server's host name (default: configured host)")
    z.add_argument("--port", type=int, help="default: the configured listen port")
    z.add_argument("--address", action="append", default=[], help="A/AAAA address (repeatable)")
    z.add_argument("--pri", type=int, default=0, help="0-99 live, 100+ development (IS-10 DS-09)")
    z.add_argument("--instance", default="nmosauth-lite")
    z.add_argument("--format", choices=["bind", "dnsmasq", "both"], default="both")


def _config(args, listen=None):
    from ..authserver import config

    audience = getattr(args, "audience", None) if getattr(args, "as_command", None) == "serve" else None
    if audience:
        audience = [check_audience_value(a) for a in audience]
    return config.load(args.config, listen=listen, state_dir=args.state_dir, lab=getattr(args, "lab", None),
                       profile=getattr(args, "profile", None),
                       cert_file=getattr(args, "cert", None), key_file=getattr(args, "key", None),
                       audience=audience, hsts_max_age=getattr(args, "hsts_max_age", None))


def _print(obj):
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def run(args):
    cmd = getattr(args, "as_command", None)
    if cmd == "serve":
        return _serve(args)
    sub = {"client": "client_command", "keys": "keys_command", "user": "user_command"}.get(cmd)
    action = getattr(args, sub, None) if sub else None
    if cmd == "zone":
        return _zone(args)
    if cmd == "token":
        action = "mint"
    if action is None:
        sys.stderr.write("nmosauth-lite as: choose serve, client, keys, user, token or zone (see --help)\n")
        return 2
    from ..authserver.service import open_store

    cfg = _config(args)
    if not os.path.exists(cfg.db_path):  # never create a server's state unannounced (e.g. as root in /var/lib)
        sys.stderr.write("nmosauth-lite as: no authorization server state at %s: creating it "
                         "(--state-dir chooses another directory)\n" % cfg.db_path)
    store = open_store(cfg)
    if cmd == "client":
        from . import asclients

        handler = getattr(asclients, "client_" + action)
    else:
        handler = globals()["_%s_%s" % (cmd, action)]
    try:
        return handler(args, cfg, store, time.time())
    finally:
        store.close()


def _serve(args):
    import asyncio
    import logging

    from ..authserver.service import serve

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(args.cert or ()) != len(args.key or ()):
        raise ConfigError("--cert and --key go together, in pairs")
    cfg = _config(args, listen=args.listen)
    os.umask(0o077)
    return asyncio.run(serve(cfg, metrics=args.metrics))


# --- keys ------------------------------------------------------------------------------------
def _keys_list(args, cfg, store, now):
    from ..authserver.service import open_keyring, utcnow_text

    out = []
    for k, state in open_keyring(cfg, store).states(now):
        out.append({"kid": k.kid, "alg": k.alg, "state": state, "created_at": utcnow_text(k.created_at),
                    "use_from": utcnow_text(k.use_from),
                    "withdrawn_at": utcnow_text(k.withdrawn_at) if k.withdrawn_at else None})
    _print(out)
    return 0


def _keys_rotate(args, cfg, store, now):
    from ..authserver.service import open_keyring, utcnow_text

    if args.delay is not None and args.delay < 0:
        raise ConfigError("--delay must be >= 0")
    ring = open_keyring(cfg, store)
    ring.ensure(now)
    kid = ring.rotate(now, args.delay, args.alg)
    delay = cfg.publish_delay if args.delay is None else args.delay
    _print({"kid": kid, "published_at": utcnow_text(now), "signs_from": utcnow_text(now + delay)})
    return 0


def _keys_withdraw(args, cfg, store, now):
    from ..authserver.service import open_keyring

    ring = open_keyring(cfg, store)
    if not ring.withdraw(args.kid, now):
        sys.stderr.write("no published key %s\n" % args.kid)
        return 1
    _print({"withdrawn": args.kid, "signing_kid": ring.signer(now).kid})
    return 0


# --- tokens for tests ------------------------------------------------------------------------
MAX_AUDIENCES = 16
MAX_SUB = 200  # an operator's name or a test identity, not a document


def check_audience_value(value):
    """An aud entry as IS-10 allows it: a host name (wildcards allowed) or https://host; no port,
    path or query (TOK aud). Returns it unchanged, or raises ConfigError."""
    from ..authserver.clientaccess import check_audience_entry

    return check_audience_entry(value)


def _token_mint(args, cfg, store, now):
    from ..authserver.service import open_keyring
    from ..authserver.tokens import build_claims, check_lifetime, parse_scope

    try:
        scopes = parse_scope(args.scope)
    except ValueError as e:
        raise ConfigError("--scope: %s" % e)
    bad = [s for s in scopes if s not in cfg.permissions]
    if not scopes or bad:
        raise ConfigError("--scope: give scopes among %s%s" % (" ".join(cfg.scopes),
                                                              " (unknown: %s)" % " ".join(bad) if bad else ""))
    lifetime = cfg.token_lifetime if args.lifetime is None else args.lifetime
    try:
        check_lifetime(lifetime, cfg.profile)
    except ConfigError:
        raise ConfigError("--lifetime must be 3600..86400 seconds (IPMX SEC-65)" if cfg.profile == "ipmx"
                          else "--lifetime must be 30..3600 seconds (IS-10 TOK-07)")
    recorded = store.get_meta("audience")  # what the server signs with (its --audience), when it ran here
    audience = args.audience or (json.loads(recorded) if recorded else cfg.token_audience())
    if len(audience) > MAX_AUDIENCES:
        raise ConfigError("at most %d --audience values" % MAX_AUDIENCES)
    audience = [check_audience_value(a) for a in audience]
    if cfg.profile == "ipmx":  # the permissions index this token's aud (SEC-39)
        from ..authserver.tokens import check_ipmx_value

        for s in scopes:
            for k, v in cfg.permissions[s].items():
                check_ipmx_value(v, len(audience), "permissions.%s.%s" % (s, k))
    issuer = args.issuer or store.get_meta("issuer") or cfg.issuer()
    from ..issuer import check_issuer

    check_issuer(issuer)  # ConfigError naming the value
    ring = open_keyring(cfg, store)
    ring.ensure(now)
    key = ring.signer(now)
    if not 0 < len(args.sub) <= MAX_SUB or any(c < " " or c == "\x7f" for c in args.sub):
        raise ConfigError("--sub: 1..%d characters, no control characters" % MAX_SUB)
    claims = build_claims(issuer=issuer, audience=audience, client_id="nmosauth-lite-operator", sub=args.sub,
                          scopes=scopes, permissions=cfg.permissions, now=now, lifetime=lifetime,
                          claims_location=cfg.claims_location)
    token = key.encode(claims)
    store.audit("token.operator", now, actor="operator", scope=claims["scope"], jti=claims["jti"],
                aud=" ".join(audience), kid=key.kid)
    sys.stdout.write(token + "\n")
    sys.stderr.write("token for testing: %s\n" % json.dumps({"iss": issuer, "aud": audience, "scope": claims["scope"],
                                                             "exp": claims["exp"], "alg": key.alg, "jti": claims["jti"]}))
    return 0


# --- users -----------------------------------------------------------------------------------
def _user_add(args, cfg, store, now):
    from ..authserver.tokens import parse_scope
    from ..authserver.users import MAX_PASSWORD, check_username, hash_password

    try:
        name = check_username(args.username)
        scopes = parse_scope(args.scope)
    except ValueError as e:
        raise ConfigError(str(e))
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password for %s: " % name)
        if getpass.getpass("Again: ") != password:
            raise ConfigError("passwords differ")
    else:
        raise ConfigError("no terminal: use --password-stdin")
    if not 8 <= len(password) <= MAX_PASSWORD:
        raise ConfigError("passwords are 8..%d characters" % MAX_PASSWORD)
    with store.transaction():
        store.put_user(name, hash_password(password), " ".join(scopes), now)
        store.audit("user.add", now, actor="operator", username=name, scope=" ".join(scopes))
    _print({"user": name, "scope": " ".join(scopes), "password": "set"})
    return 0


def _user_list(args, cfg, store, now):
    _print(store.list_users())
    return 0


# --- DNS-SD records ------------------------------------------------------------------------------
def _zone(args):
    from ..authserver.zone import ZoneRecords, primary_address

    cfg = _config(args)
    port = args.port or cfg.listen_port
    if not port:
        raise ConfigError("give --port: the configured listen port is 0 (chosen at start)")
    addresses = args.address
    if not addresses:
        a = cfg.listen_host if cfg.listen_host not in ("0.0.0.0", "::", "localhost") else primary_address()
        addresses = [a] if a else []
    host = args.host or cfg.host
    if host == "localhost":
        raise ConfigError("give --host: the server's name in %s" % args.domain)
    try:
        z = ZoneRecords(domain=args.domain, host=host, port=port, addresses=addresses,
                        issuer_path=cfg.issuer_path, pri=args.pri, instance=args.instance)
    except ValueError as e:
        raise ConfigError(str(e))
    if args.pri >= 100:
        sys.stderr.write("note: pri >= 100 marks a development server (IS-10 DS-09)\n")
    if args.format in ("bind", "both"):
        sys.stdout.write(("; --- BIND zone file ---\n" if args.format == "both" else "") + z.bind())
    if args.format in ("dnsmasq", "both"):
        sys.stdout.write(("# --- dnsmasq.conf ---\n" if args.format == "both" else "") + z.dnsmasq())
    return 0
