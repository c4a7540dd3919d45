"""`nmosauth-lite token`: get an access token and print the token response (RFC 6749 §5.1).

Credentials: --client-id (and --client-secret for a confidential client) given here, or
the registration stored by `nmosauth-lite register` for the chosen issuer, or, with
--name (or the config's [client] identity), a registration made now. client_credentials is for Nodes (BCP-003-02 BCP-G-02);
authorization_code prints the authorization URL on stderr, waits for the browser's
redirect on a loopback listener and exchanges the code (PKCE S256, IS-10 CL-22, CL-23).
"""

import asyncio
import json
import sys

from ..errors import ConfigError
from .register import EXIT_AWAITING_APPROVAL, add_selection_arguments, apply_config, build, report, with_jwks

HELP = "get an IS-10 access token (client_credentials or authorization code + PKCE)"


def add_arguments(p):
    add_selection_arguments(p)
    p.add_argument("--client-id", metavar="ID", help="a client registered beforehand (e.g. by `as client add`)")
    p.add_argument("--client-secret", metavar="S", help="its secret (client_secret_basic)")
    p.add_argument("--name", help="register with this client_name when nothing is stored (IS-10 CL-09)")
    p.add_argument("--scope", help='space-separated scopes (IS-10 CL-30)')
    p.add_argument("--grant", choices=["client_credentials", "authorization_code"], default="client_credentials")


def _printer(timeout):
    def show(url):
        sys.stderr.write("Open this URL in a browser to authorize (waiting up to %g s, --timeout):\n%s\n"
                         % (timeout, url))
        sys.stderr.flush()
    return show


def run(args):
    from ..aio.oauth import NoServerError, Unavailable
    from ..oauth import OAuthError

    args._browser = True  # authorization_code: the default --timeout leaves time to log in
    apply_config(args)
    if args.client_secret and not args.client_id:
        raise ConfigError("--client-secret goes with --client-id")
    if args.client_id:
        args.name = None  # a given client is used as is, never registered
    selector, client, jwks = build(args, name=args.name, grant=args.grant, client_id=args.client_id,
                                   client_secret=args.client_secret)

    async def main():
        async def op(c, meta):
            if client.static is None and client.name is None and client.store.load(c.issuer) is None:
                raise ConfigError("no registration stored for %s: run `nmosauth-lite register` or give "
                                  "--name or --client-id" % c.issuer)
            return await client.token_request(c, meta, _form(client))

        async def get():
            if args.grant == "authorization_code":
                return await client.authorize(_printer(args.timeout), args.timeout)  # issue 19 §3
            return await selector.run(op, args.timeout)
        try:
            return await with_jwks(jwks, get)
        finally:
            await selector.close()

    try:
        tokens = asyncio.run(main())
    except OAuthError as e:
        report(e)
        if e.error == "unauthorized_client" and "approval" in (e.description or ""):
            return EXIT_AWAITING_APPROVAL  # the same status as `register` (issue 22 item 6)
        return 1
    except (NoServerError, Unavailable) as e:
        return report(e)
    out = {k: tokens[k] for k in ("access_token", "token_type", "expires_in", "scope")}
    if tokens.get("refresh_token"):
        out["refresh_token"] = tokens["refresh_token"]
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


def _form(client):
    from .. import oauth

    return oauth.client_credentials_form(client.scope)
