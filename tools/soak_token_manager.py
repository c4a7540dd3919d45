#!/usr/bin/env python3
"""Soak test of the Node's TokenManager (issue 7, "done when"): a long run with 60-second tokens.

Two `nmosauth-lite as serve` processes (A, pri 0; B, pri 10) are advertised by a real dnsmasq on
loopback under host names only the DNS-SD answer knows. A Node (TokenManager over DNS-SD,
client_secret_basic) asks for its token every --interval seconds, as a heartbeat would, and a
resource-server validator trusting both discovered issuers checks it. During the run A is
restarted (at 25 %), then stopped (at 50 %, failover to B) and started again (at 70 %). It asserts
that every check got a valid token with time left and that each server holds exactly one
registration of the Node; prints a JSON summary. Processes it starts are stopped by PID.

    .venv/bin/python tools/soak_token_manager.py [--minutes 60] [--lifetime 60] [--interval 5]
"""

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "client"))

DOMAIN = "soak.nmos-client.test"


async def soak(args, work):
    from client_support import ServeProc, advertise

    from nmosauth_lite.aio import dns as adns
    from nmosauth_lite.aio.keystore import KeyStore
    from nmosauth_lite.aio.oauth import CredentialStore, OAuthClient, ServerSelector, TokenManager
    from nmosauth_lite.jws import parse
    from nmosauth_lite.validator import TokenValidator

    a = ServeProc(os.path.join(work, "a"), "auth-a." + DOMAIN, lifetime=args.lifetime).start()
    b = ServeProc(os.path.join(work, "b"), "auth-b." + DOMAIN, lifetime=args.lifetime).start()
    dns = None
    try:
        dns = advertise(os.path.join(work, "dns"), [("a", "auth-a", a.port, 0), ("b", "auth-b", b.port, 10)],
                        domain=DOMAIN)
        ca = os.path.join(work, "cas.pem")
        with open(ca, "w") as f:
            f.write(open(a.ca_file).read() + open(b.ca_file).read())
        iats = {a.issuer: a.iat(), b.issuer: b.iat()}
        adverts = await adns.discover(domains=[DOMAIN], nameservers=[dns.server], timeout=2.0)
        keys = KeyStore([], state_dir=os.path.join(work, "rs"), ca_file=ca)
        for adv in adverts:
            await keys.add_discovered(adv)
        await keys.refresh()
        validator = TokenValidator(keys=keys, audience=["registry." + DOMAIN])

        cache = adns.DiscoveryCache(domains=[DOMAIN], nameservers=[dns.server], timeout=2.0)
        selector = ServerSelector(discovery=cache, ca_file=ca)
        client = OAuthClient(selector, CredentialStore(os.path.join(work, "node"), os.path.join(work, "keys", "k")),
                             name="ACME Encoder-9 SN-SOAK", scope="registration")
        register = client._register

        async def register_with_its_iat(c, meta):  # each server issued its own initial access token
            client.initial_token = iats[c.issuer]
            return await register(c, meta)
        client._register = register_with_its_iat

        manager = TokenManager(client)
        await manager.start()
        total = args.minutes * 60.0
        t0 = time.monotonic()
        events = [(0.25, "restart A"), (0.50, "stop A"), (0.70, "start A")]
        stats = {"checks": 0, "bad": 0, "min_left": None, "by_issuer": {}, "events": []}
        while time.monotonic() - t0 < total:
            frac = (time.monotonic() - t0) / total
            while events and frac >= events[0][0]:
                _, what = events.pop(0)
                if what == "restart A":
                    a.stop()
                    await asyncio.sleep(3)
                    await asyncio.to_thread(a.start)
                elif what == "stop A":
                    a.stop()
                else:
                    await asyncio.to_thread(a.start)
                stats["events"].append([round(time.monotonic() - t0, 1), what])
                logging.info("%s at %.0f s", what, time.monotonic() - t0)
            token = await manager.token()
            now = time.time()
            d = validator.check(token, "POST", "/x-nmos/registration/v1.3/health/nodes/soak", now)
            claims = parse(token).claims
            left = claims["exp"] - now
            stats["checks"] += 1
            stats["by_issuer"][claims["iss"]] = stats["by_issuer"].get(claims["iss"], 0) + 1
            stats["min_left"] = left if stats["min_left"] is None else min(stats["min_left"], left)
            if d.status != 200 or left < 1:
                stats["bad"] += 1
                logging.error("check %d: status %d (%s), %.1f s left", stats["checks"], d.status, d.reason, left)
            await asyncio.sleep(args.interval)
        await manager.close()
        await selector.close()
        await keys.close()
        stats.update(minutes=args.minutes, lifetime=args.lifetime, tokens_obtained=manager.refreshes,
                     registrations_made=client.registrations,
                     registrations_in_a=len(a.clients()), registrations_in_b=len(b.clients()),
                     elapsed_s=round(time.monotonic() - t0, 1), min_left=round(stats["min_left"], 1))
        return stats
    finally:
        if dns is not None:
            dns.stop()
        a.stop()
        b.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--lifetime", type=int, default=60, help="token lifetime in seconds (30..3600)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between checks (a heartbeat)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    work = tempfile.mkdtemp(prefix="soak-token-manager-")
    try:
        stats = asyncio.run(soak(args, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ok = (stats["bad"] == 0 and stats["checks"] > 0 and stats["registrations_in_a"] == 1
          and stats["registrations_in_b"] <= 1 and stats["min_left"] > 1)
    if args.minutes >= 3:  # long enough for the failover to happen
        ok = ok and stats["registrations_in_b"] == 1 and len(stats["by_issuer"]) == 2
    stats["ok"] = ok
    print(json.dumps(stats, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
