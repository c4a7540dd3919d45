"""`nmosauth-lite register`: register this device with an IS-10 authorization server (RFC 7591).

The server is given (--issuer) or found by unicast DNS-SD (--discover, IS-10 CL-01). The
registration is stored under the state directory keyed by the issuer, the secret sealed
with a key file kept elsewhere (--key-file); an existing registration is reused and printed,
never duplicated. The output is that stored record with secrets redacted. private_key_jwt
needs --jwks-uri: where this device will serve its public key (see `token --jwks-listen`).
Settings may also come from the `[client]` table of the device's config.toml (flags win);
client_name is then "<manufacturer> <product> <serial>" (IS-10 CL-09). The selection helpers
here are shared with `nmosauth-lite token`.
"""

import asyncio
import json
import sys

from ..errors import ConfigError
from . import issuers

HELP = "register this device with an IS-10 authorization server (RFC 7591)"
EXIT_AWAITING_APPROVAL = 3  # registered, but the operator has not approved it yet (no initial access token)
DEFAULT_TIMEOUT = 30.0
AUTHORIZE_TIMEOUT = 300.0  # token --grant authorization_code: a person logs in meanwhile
DEFAULT_CONFIG = "/etc/nmosauth-lite/config.toml"
MAX_CONFIG = 1 << 20
# [client] settings: name -> type (flags of the same name, with - for _, win)
CONFIG_KEYS = {"manufacturer": str, "product": str, "serial": str, "scope": str, "auth": str, "issuer": str,
               "discover": bool, "domain": list, "nameserver": list, "connect": list, "ca": str, "state_dir": str, "key_file": str,
               "initial_token_file": str, "jwks_uri": str, "jwks_listen": str, "jwks_cert": str, "jwks_key": str,
               "redirect_base": str}


def add_selection_arguments(p):
    p.add_argument("--config", metavar="FILE", help="device config with a [client] table (default %s when it "
                   "exists)" % DEFAULT_CONFIG)
    p.add_argument("--issuer", metavar="URL", help="the authorization server's issuer identifier")
    issuers.add_arguments(p)  # --discover --domain --nameserver --connect (IS-10 CL-01)
    p.add_argument("--dev", action="store_true", help="also accept development adverts (pri >= 100, IS-10 DS-09)")
    p.add_argument("--ca", metavar="FILE", help="CA certificates to trust besides the system store (IS-10 CL-04)")
    p.add_argument("--state-dir", metavar="DIR", help="where registrations are kept (default: $STATE_DIRECTORY, "
                   "/var/lib/nmosauth-lite as root, ~/.local/state/nmosauth-lite otherwise)")
    p.add_argument("--key-file", metavar="FILE", help="key sealing stored secrets, kept outside the state "
                   "directory (default: $CREDENTIALS_DIRECTORY/nmosauth-lite-client.key; with --state-dir DIR, "
                   "DIR-client-credentials.key beside it; else /etc/nmosauth-lite/client-credentials.key as "
                   "root, ~/.config/nmosauth-lite/ otherwise)")
    p.add_argument("--auth", choices=["client_secret_basic", "private_key_jwt"], default=None,
                   help="client authentication (default client_secret_basic; IS-10 CL-12)")
    p.add_argument("--initial-token", metavar="T", help="initial access token for registration (IS-10 CL-11)")
    p.add_argument("--redirect-base", metavar="URL", help="loopback base of the controller's redirect URIs "
                   "(authorization_code; default http://127.0.0.1:48573/callback)")
    p.add_argument("--jwks-uri", metavar="URL", help="https URL where this device serves its JWK Set "
                   "(private_key_jwt, IS-10 CL-16)")
    p.add_argument("--jwks-listen", metavar="HOST:PORT", help="serve the JWK Set here while running")
    p.add_argument("--jwks-cert", metavar="FILE", help="TLS certificate for --jwks-listen")
    p.add_argument("--jwks-key", metavar="FILE", help="TLS private key for --jwks-listen")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up after this many seconds, every network wait included (default %d; token "
                        "--grant authorization_code: %d, the user's time in the browser included)"
                        % (DEFAULT_TIMEOUT, AUTHORIZE_TIMEOUT))
    p.add_argument("-v", "--verbose", action="store_true", help="log failovers, retries and registrations")


def add_arguments(p):
    add_selection_arguments(p)
    p.add_argument("--name", help='client_name, unique per device: "<manufacturer> <product> '
                   '<serial>" (IS-10 CL-09)')
    p.add_argument("--scope", help='space-separated scopes, e.g. "registration"')
    p.add_argument("--grant", choices=["client_credentials", "authorization_code"], default="client_credentials")


def apply_config(args):
    """Fill unset flags from the [client] table; check that the required ones are set."""
    import os

    if args.timeout is None:
        browser = getattr(args, "grant", None) == "authorization_code" and getattr(args, "_browser", False)
        args.timeout = AUTHORIZE_TIMEOUT if browser else DEFAULT_TIMEOUT

    path = args.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    table = {}
    if path:
        import tomllib

        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CONFIG + 1)
            doc = tomllib.loads(raw[:MAX_CONFIG].decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError("config %s: %s" % (path, e))
        table = doc.get("client", {})
        if not isinstance(table, dict):
            raise ConfigError("config %s: [client] must be a table" % path)
    for key, value in table.items():
        want = CONFIG_KEYS.get(key)
        if want is None:
            raise ConfigError("config: unknown setting client.%s" % key)
        if not isinstance(value, want) or (want is list and not all(isinstance(v, str) for v in value)):
            raise ConfigError("config: client.%s must be a %s" % (key, want.__name__))
        if key in ("manufacturer", "product", "serial", "initial_token_file"):
            continue
        if getattr(args, key, None) in (None, [], False) and not (key in ("issuer", "discover") and
                                                                  (args.issuer or args.discover)):
            setattr(args, key, value)
    if getattr(args, "name", None) is None and any(k in table for k in ("manufacturer", "product", "serial")):
        from ..oauth import client_name

        args.name = client_name(table.get("manufacturer"), table.get("product"), table.get("serial"))
    if args.initial_token is None and "initial_token_file" in table:
        try:
            with open(table["initial_token_file"], encoding="ascii") as f:
                args.initial_token = f.read(65536).strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("cannot read client.initial_token_file: %s" % e)
    if args.issuer and args.discover:
        raise ConfigError("give --issuer or --discover, not both")
    if not args.issuer and not args.discover:
        raise ConfigError("give --issuer URL or --discover (or client.issuer / client.discover in the config)")
    if not args.scope:
        raise ConfigError("give --scope (or client.scope in the config)")
    if args.auth not in (None, "client_secret_basic", "private_key_jwt"):
        raise ConfigError("client.auth must be client_secret_basic or private_key_jwt")


def build(args, *, name, grant, client_id=None, client_secret=None):
    """(selector, OAuthClient, jwks server or None) from the shared flags."""
    import logging
    import os

    from ..aio.files import default_state_dir
    from ..aio.oauth import CredentialStore, OAuthClient, ServerSelector
    from ..aio.oauth.client import DEFAULT_REDIRECT_BASE

    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr,
                        format="nmosauth-lite: %(message)s")
    if args.auth:
        auth = args.auth
    elif grant == "authorization_code" and not client_secret:
        auth = "none"  # controllers are public clients (IS-10 CL-10, CL-24)
    else:
        auth = "client_secret_basic"
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    reach = issuers.read(args)
    discovery = reach.cache(dev=args.dev, timeout=min(issuers.DISCOVERY_TIMEOUT, args.timeout / 4))
    role = "controller" if grant == "authorization_code" else "node"
    store = None
    if client_id is None:
        from ..aio.oauth.secretbox import default_key_file

        # an explicit --state-dir keeps the key beside it, never in /etc or $HOME (issue 22 item 8)
        store = CredentialStore(args.state_dir or default_state_dir(), args.key_file or default_key_file(args.state_dir))
    key = None
    if auth == "private_key_jwt":
        if store is None:
            raise ConfigError("private_key_jwt with --client-id is not supported: register with this tool")
        key = store.signing_key()
    selector = ServerSelector(issuers=[args.issuer] if args.issuer else (), discovery=discovery, ca_file=args.ca,
                              role=role, auth_method=auth, register=client_id is None,
                              alg=key.alg if key else None, resolve=reach.connect)
    client = OAuthClient(selector, store, name=name, scope=args.scope, grant=grant, auth_method=auth,
                         initial_token=args.initial_token, jwks_uri=args.jwks_uri, signing_key=key,
                         client_id=client_id, client_secret=client_secret,
                         redirect_base=args.redirect_base or DEFAULT_REDIRECT_BASE)
    jwks = None
    if args.jwks_listen:
        if key is None:
            raise ConfigError("--jwks-listen goes with --auth private_key_jwt")
        if not (args.jwks_cert and args.jwks_key):
            raise ConfigError("--jwks-listen needs --jwks-cert and --jwks-key (the JWK Set is served over https)")
        for f in (args.jwks_cert, args.jwks_key):
            if not os.path.exists(f):
                raise ConfigError("no such file: %s" % f)
        jwks = (key, args.jwks_listen, args.jwks_cert, args.jwks_key)
    return selector, client, jwks


async def with_jwks(jwks, coro_fn):
    """Run `coro_fn()` while our JWK Set is served (when asked for)."""
    if jwks is None:
        return await coro_fn()
    from ..aio.oauth import JWKSServer
    from ..aio.tlsutil import server_context

    key, listen, cert, keyfile = jwks
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("--jwks-listen wants HOST:PORT, not %r" % listen)
    host, port = host.strip("[]"), int(port)
    server = JWKSServer(key, server_context(cert, keyfile), path=None)  # the public JWK Set at any path
    try:
        await server.start(host, port)
    except OSError as e:
        raise ConfigError("cannot listen on %s: %s" % (listen, e))
    try:
        return await coro_fn()
    finally:
        await server.close()


def report(exc):
    sys.stderr.write("nmosauth-lite: %s\n" % exc.message)
    return 1


def run(args):
    from ..aio.oauth import NoServerError, Unavailable
    from ..oauth import OAuthError

    apply_config(args)
    if not args.name:
        raise ConfigError("give --name (or client.manufacturer, product and serial in the config)")
    selector, client, jwks = build(args, name=args.name, grant=args.grant)

    async def main():
        async def op(c, meta):
            fresh = client.store.load(c.issuer) is None
            rec = await client.registration(c, meta)
            return rec, await awaits_approval(client, c, meta, rec, fresh and not args.initial_token)
        try:
            return await with_jwks(jwks, lambda: selector.run(op, args.timeout))
        finally:
            await selector.close()

    try:
        rec, waiting = asyncio.run(main())
    except (OAuthError, NoServerError, Unavailable) as e:
        return report(e)
    sys.stdout.write(json.dumps(client.store.redacted(rec), indent=2, sort_keys=True) + "\n")
    if waiting:
        sys.stderr.write("nmosauth-lite register: registered as %s, but the registration awaits the operator's "
                         "approval at %s (%s); no token until then: run register again to check\n"
                         % (rec["client_id"], rec["issuer"], waiting))
        return EXIT_AWAITING_APPROVAL
    return 0


async def awaits_approval(client, c, meta, rec, unauthenticated):
    """None when the registration can be used now; else why it cannot yet (issue 22 item 6).

    The lite AS marks a held registration (oauth.APPROVAL_FIELD). A Node's registration made
    without an initial access token, or still marked, is checked with one client_credentials
    request: a refusal as unauthorized_client or invalid_client means "awaits approval" (IS-10
    AS-21 2.); success clears the mark. A controller's (authorization_code) has only the mark."""
    from .. import oauth

    marked = rec.get("approval") == "pending"
    if not (marked or unauthenticated):
        return None
    if client.grant != "client_credentials":
        return "marked pending by the server" if marked else None
    try:
        await client.token_request(c, meta, oauth.client_credentials_form(client.scope))
    except oauth.OAuthError as e:
        if getattr(e, "error", None) not in ("unauthorized_client", "invalid_client"):
            raise
        if not marked:
            client.store.save(dict(rec, approval="pending"))
        return "the token endpoint said: %s" % (getattr(e, "description", None) or e.error)
    if marked:
        fresh = dict(rec)
        fresh.pop("approval", None)
        client.store.save(fresh)
        rec.pop("approval", None)
    return None
