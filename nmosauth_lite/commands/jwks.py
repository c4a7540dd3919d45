"""`nmosauth-lite jwks show|refresh`: the persisted issuer key caches of this device.

show: prints every persisted cache (issuer, where its metadata was found, kids, age, next
refresh) as JSON; `metadata_form` names the place that answered (rfc8414, issuer-appended
or openid-configuration: see docs/authorization-servers.md).
refresh: fetches the named (or, with --discover, the DNS-SD advertised) issuers' keys now;
exit 0 when every fetch worked, 1 otherwise. --connect HOST=ADDR reaches a host the resolver
cannot resolve (commands/issuers.py).
"""

import asyncio
import json
import sys
import time

from ..errors import ConfigError
from . import issuers

HELP = "show or refresh the persisted JWKS cache of trusted issuers"
DISCOVERY_WAIT = 10.0  # refresh --discover: the most spent on DNS-SD and the advertised metadata


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the persisted key caches as JSON")
    show.add_argument("--state-dir", metavar="DIR", help="state directory (default: $STATE_DIRECTORY, /var/lib/nmosauth-lite or ~/.local/state/nmosauth-lite)")
    ref = sub.add_parser("refresh", help="fetch the issuers' keys now")
    ref.add_argument("--issuer", action="append", metavar="URL", help="trusted issuer (repeatable; or --discover)")
    ref.add_argument("--ca", metavar="FILE", help="extra CA certificates (PEM) for the authorization servers")
    ref.add_argument("--state-dir", metavar="DIR")
    ref.add_argument("--insecure-http", action="store_true", help="LAB ONLY: allow http:// issuers")
    issuers.add_arguments(ref)


def _state_dir(args):
    from ..aio.files import default_state_dir

    return args.state_dir or default_state_dir()


def _text(v):
    return v if isinstance(v, str) else None


def run(args):
    from ..aio.keyfiles import read_persisted

    state_dir = _state_dir(args)
    if args.action == "show":
        now = time.time()
        out = []
        for doc in read_persisted(state_dir):
            keys = (doc.get("jwks") or {}).get("keys", []) if isinstance(doc.get("jwks"), dict) else doc.get("jwks") or []
            fetched = doc.get("fetched_at")
            nxt = doc.get("next_refresh")
            out.append({
                "issuer": doc["issuer"],
                "jwks_uri": doc.get("jwks_uri"),
                "metadata_form": _text(doc.get("metadata_form")),
                "metadata_url": _text(doc.get("metadata_url")),
                "kids": [k.get("kid") for k in keys if isinstance(k, dict)],
                "age": round(now - fetched, 1) if isinstance(fetched, (int, float)) else None,
                "next_refresh_in": round(nxt - now, 1) if isinstance(nxt, (int, float)) else None,
            })
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return 0

    reach = issuers.read(args)
    if not args.issuer and not reach.discover:
        raise ConfigError("give --issuer URL or --discover")

    async def refresh():
        store = issuers.key_store(args.issuer, reach, state_dir=state_dir, ca_file=args.ca,
                                  insecure_http=args.insecure_http)
        try:
            if reach.discover:
                found, _ = await issuers.trust_discovered(store, reach, DISCOVERY_WAIT)
                if not found:
                    sys.stderr.write("nmosauth-lite jwks refresh: --discover found no usable authorization server\n")
                    if not args.issuer:
                        return store.status(), {"(discovery)": "nothing found"}
            errors = await store.refresh(force=True)
            return store.status(), errors
        finally:
            await store.close()

    status, errors = asyncio.run(refresh())
    sys.stdout.write(json.dumps(status, indent=1) + "\n")
    return 0 if not any(errors.values()) else 1
