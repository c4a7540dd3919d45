"""`nmosauth-lite as client ...`: add, list, update, remove, approve, iat (administration of the
authorization server's clients through its SQLite store; a running server sees changes at once).

`add` and `update` also set a client's own token audience list and, under the ipmx profile, its
own x-nmos-<api> permissions as indexes into that list (issue 21; TR-10-SEC SEC-39, SEC-68,
SEC-69; checks in authserver/clientaccess.py). Split from commands/authserver.py along the
`client` subcommand.
"""

import json
import sys

from ..errors import ConfigError


def add_arguments(sub, common):
    """The `client` subcommand's parsers under `as` (`sub`: the `as` subparsers)."""
    c = sub.add_parser("client", help="manage registered clients").add_subparsers(
        dest="client_command", metavar="ACTION", parser_class=common.__class__)
    a = c.add_parser("add", parents=[common], help="register a client; prints its JSON with the secret")
    a.add_argument("--name", required=True)
    a.add_argument("--scope", required=True, help='space-separated scopes, e.g. "registration"')
    a.add_argument("--grant", action="append", metavar="GRANT",
                   help="authorization_code, client_credentials, refresh_token (repeatable or comma-separated)")
    a.add_argument("--auth", default="client_secret_basic", choices=["client_secret_basic", "private_key_jwt", "none"])
    a.add_argument("--redirect-uri", action="append", default=[], metavar="URI")
    a.add_argument("--jwks-uri", metavar="URL")
    a.add_argument("--jwks", metavar="FILE", help="the client's public JWK Set (private_key_jwt)")
    a.add_argument("--lab", action="store_true", default=None,
                   help="as for a server run with --lab: client_credentials may have any scope")
    _access_arguments(a)
    c.add_parser("list", parents=[common], help="list clients (JSON)")
    up = c.add_parser("update", parents=[common], help="change a client's own audience list or ipmx permissions; "
                      "prints what it changed (JSON)")
    up.add_argument("client_id")
    _access_arguments(up)
    up.add_argument("--clear-audience", action="store_true",
                    help="drop the client's own list: its tokens carry tokens.audience again")
    up.add_argument("--clear-permission", action="append", default=[], metavar="API",
                    help="drop the client's own permissions for API (repeatable): tokens.permissions apply")
    for name, text in (("remove", "delete a client and revoke its refresh tokens"),
                       ("approve", "approve a registration held for the operator")):
        x = c.add_parser(name, parents=[common], help=text)
        x.add_argument("client_id")
    i = c.add_parser("iat", parents=[common], help="issue an initial access token for RFC 7591 registration")
    i.add_argument("--scope", default="", help="scopes clients registered with it may have (default: any)")
    i.add_argument("--ttl", type=int, default=86400, metavar="SECONDS")


def _access_arguments(p):
    p.add_argument("--audience", action="append", metavar="NAME",
                   help="the client's own token aud list, in order (repeatable; replaces tokens.audience for its "
                        "tokens): host names, *.domain wildcards, * or https://host")
    p.add_argument("--permission", action="append", default=[], metavar="API=READ:WRITE",
                   help="ipmx only: the client's x-nmos-API permissions (repeatable, one per API). READ and WRITE "
                        "are * (allow), nothing (deny) or aud indexes into --audience, non-negative first: "
                        "connection=*:0,-1; API=READ alone leaves write out (denied)")


def _print(obj):
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


# --- clients ---------------------------------------------------------------------------------
def client_add(args, cfg, store, now):
    from ..authserver.protocol import OAuthError
    from ..authserver.registration import check_metadata, create_client

    grants = [g.strip() for item in (args.grant or ["authorization_code"]) for g in item.split(",") if g.strip()]
    meta = {"client_name": args.name, "scope": args.scope, "grant_types": grants,
            "token_endpoint_auth_method": args.auth}
    if args.redirect_uri:
        meta["redirect_uris"] = args.redirect_uri
    if args.jwks_uri:
        meta["jwks_uri"] = args.jwks_uri
    if args.jwks:
        try:
            with open(args.jwks, "rb") as f:
                meta["jwks"] = json.loads(f.read(1 << 20))
        except (OSError, ValueError) as e:
            raise ConfigError("cannot read JWK Set %s: %s" % (args.jwks, e))
    try:
        meta = check_metadata(meta, cfg)
    except OAuthError as e:
        raise ConfigError("%s: %s" % (e.error, e.description))
    who = repr(args.name[:60])
    audience, permissions = _access_values(args, who, cfg, meta["scope"].split(), None, None)
    _note_identity_scopes(args.scope)
    with store.transaction():
        body = create_client(store, meta, now, status="active", actor="operator", audience=audience,
                             permissions=permissions)
        if audience is not None or permissions is not None:
            store.audit("client.access", now, client_id=body["client_id"], actor="operator", audience=audience,
                        permissions=permissions)
    if audience is not None or permissions is not None:
        body.update(audience=audience, permissions=permissions)  # what its tokens carry (not RFC 7591 fields)
    _print(body)
    return 0


def _access_values(args, who, cfg, scopes, audience, permissions):
    """The client's (audience, permissions) after --audience/--permission/--clear-* over the current
    ones, checked (clientaccess.check_client_access: SEC-39, SEC-68): ConfigError names the client."""
    from ..authserver.clientaccess import check_client_access, parse_permission

    if getattr(args, "clear_audience", False):
        if args.audience:
            raise ConfigError("--audience and --clear-audience: choose one")
        audience = None
    if args.audience:
        audience = list(args.audience)
    perms = dict(permissions or {})
    for api in getattr(args, "clear_permission", ()):
        if api not in perms:
            raise ConfigError("client %s has no permissions of its own for %s" % (who, api[:40]))
        del perms[api]
    given = set()
    for text in args.permission:
        api, perm = parse_permission(text, who)
        if api in given:
            raise ConfigError("client %s: --permission %s given twice" % (who, api[:40]))
        given.add(api)
        perms[api] = perm
    return check_client_access(audience, perms or None, config=cfg, scopes=scopes, who=who)


def client_update(args, cfg, store, now):
    client = store.get_client(args.client_id)
    if client is None:
        sys.stderr.write("no client %s\n" % args.client_id)
        return 1
    if not (args.audience or args.permission or args.clear_audience or args.clear_permission):
        raise ConfigError("nothing to change: give --audience, --permission, --clear-audience or --clear-permission")
    who = client["client_id"]
    before = (client["audience"], client["permissions"])
    audience, permissions = _access_values(args, who, cfg, client["scopes"], *before)
    changed = [k for k, old, new in (("audience", before[0], audience), ("permissions", before[1], permissions))
               if old != new]
    with store.transaction():
        store.set_client_access(who, audience, permissions)
        store.audit("client.access", now, client_id=who, actor="operator", audience=audience,
                    permissions=permissions)
    # None: the server's tokens.audience / tokens.permissions
    _print({"client_id": who, "changed": changed, "audience": audience, "permissions": permissions})
    return 0


def _note_identity_scopes(text):
    """Say which OpenID Connect scopes were left out (as /register, /authorize and /token do)."""
    from ..authserver.tokens import IDENTITY_SCOPES

    left = [s for s in text.split() if s in IDENTITY_SCOPES]
    if left:
        sys.stderr.write("note: %s left out: this server grants NMOS scopes only; a client asking for them "
                         "gets its NMOS scopes (RFC 6749 §3.3)\n" % " ".join(left))


def client_list(args, cfg, store, now):
    _print([{"client_id": c["client_id"], "client_name": c["metadata"].get("client_name"), "status": c["status"],
             "token_endpoint_auth_method": c["auth_method"], "grant_types": c["grant_types"],
             "scope": c["scope"], "redirect_uris": c["redirect_uris"], "created_at": int(c["created_at"]),
             "approved_by": c["approved_by"], "audience": c["audience"], "permissions": c["permissions"]}
            for c in store.list_clients()])
    return 0


def client_remove(args, cfg, store, now):
    client = store.get_client(args.client_id)
    if not store.remove_client(args.client_id, now):
        sys.stderr.write("no client %s\n" % args.client_id)
        return 1
    store.audit("client.remove", now, client_id=args.client_id, actor="operator")
    # issue 22: say what was done (its refresh tokens are revoked with it: IS-10 AS-27)
    _print({"removed": args.client_id, "client_name": (client or {}).get("metadata", {}).get("client_name"),
            "was": (client or {}).get("status"), "refresh_tokens": "revoked"})
    return 0


def client_approve(args, cfg, store, now):
    with store.transaction():
        # a registration past registration.pending_lifetime is gone, even between housekeeping runs
        store.expire_pending(now - cfg.pending_lifetime)
        ok = store.approve_client(args.client_id, "operator")
        if ok:
            store.audit("client.approve", now, client_id=args.client_id, actor="operator")
    if not ok:
        sys.stderr.write("no registration %s awaits approval\n" % args.client_id)
        return 1
    client = store.get_client(args.client_id) or {}
    _print({"approved": args.client_id, "client_name": client.get("metadata", {}).get("client_name"),
            "status": client.get("status"), "approved_by": client.get("approved_by"),
            "scope": client.get("scope"), "grant_types": client.get("grant_types")})
    return 0


def client_iat(args, cfg, store, now):
    from ..authserver.registration import issue_initial_access_token
    from ..authserver.service import open_keyring
    from ..authserver.tokens import parse_scope

    scopes = parse_scope(args.scope)
    bad = [s for s in scopes if s not in cfg.permissions]
    if bad:
        raise ConfigError("unsupported scope(s): " + " ".join(bad))
    if not 60 <= args.ttl <= 366 * 86400:
        raise ConfigError("--ttl must be 60 s .. 366 days")
    issuer = cfg.issuer()
    token, jti = issue_initial_access_token(store, open_keyring(cfg, store), issuer=issuer,
                                            registration_endpoint=issuer + "/register", scope=" ".join(scopes),
                                            ttl=args.ttl, now=now)
    _print({"initial_access_token": token, "jti": jti, "expires_at": int(now + args.ttl), "scope": " ".join(scopes)})
    return 0
