#!/usr/bin/env python3
"""Simulate N resource servers refreshing one authorization server's JWKS for a day (issue 4).

Every simulated Node runs the real policy in nmosauth_lite.jwks_cache.IssuerKeys:
a fetch at boot, then hourly plus uniform 0-60 s jitter (IS-10 RS-02), and
randomized exponential back-off while the server is down (RS-03). All Nodes
boot within the same few seconds (a studio power-up) and the server has an
outage mid-day. Prints peak and mean requests/s at the server, for this policy
and for the same policy without jitter (exact hours, deterministic back-off).
"""

import argparse
import heapq
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nmosauth_lite.jwks_cache import IssuerKeys  # noqa: E402


def simulate(n, day, outage_start, outage_len, boot_spread, jitter, seed):
    rng = random.Random(seed)
    refresh_rng = rng.random if jitter else (lambda: 0.0)
    backoff_rng = rng.random if jitter else (lambda: 0.5)
    per_second = [0] * (day + 1)
    states = []
    events = []
    for i in range(n):
        s = IssuerKeys("https://as.example.com")
        states.append(s)
        t = rng.random() * boot_spread
        heapq.heappush(events, (t, i))
    outage_end = outage_start + outage_len
    while events:
        t, i = heapq.heappop(events)
        if t > day:
            break
        s = states[i]
        down = outage_start <= t < outage_end
        # a Node that knows the jwks_uri and had no failure sends one conditional GET;
        # otherwise it reads the metadata first (two requests) - unless the server is down.
        per_second[int(t)] += 1 if (down or (s.jwks_uri and not s.failures)) else 2
        if down:
            s.fetch_failed(t, backoff_rng, "down")
        else:
            s.jwks_uri = "https://as.example.com/jwks"
            s.failures = 0
            s.schedule_refresh(t, refresh_rng)
        heapq.heappush(events, (s.next_refresh, i))
    total = sum(per_second)
    after = per_second[outage_end : outage_end + 600]
    steady = per_second[2 * 3600 : outage_start]  # after the boot wave has spread, before the outage
    return {
        "boot": max(per_second[:600]),
        "steady": max(steady) if steady else 0,
        "after": max(after) if after else 0,
        "mean": total / day,
        "total": total,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10000, help="resource servers (default 10000)")
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--outage-at", type=float, default=12, help="hour the outage starts")
    ap.add_argument("--outage-minutes", type=float, default=30)
    ap.add_argument("--boot-spread", type=float, default=5, help="seconds over which all Nodes boot")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    day = int(a.hours * 3600)
    args = (a.n, day, int(a.outage_at * 3600), int(a.outage_minutes * 60), a.boot_spread)
    with_j = simulate(*args, jitter=True, seed=a.seed)
    without = simulate(*args, jitter=False, seed=a.seed)
    print("%d resource servers, %.0f h, outage of %.0f min at hour %.0f, boot within %.0f s"
          % (a.n, a.hours, a.outage_minutes, a.outage_at, a.boot_spread))
    print()
    print("| policy | peak req/s at boot | peak req/s, steady hours | peak req/s after the outage | mean req/s |")
    print("|---|---|---|---|---|")
    for name, r in (("hourly + 0-60 s jitter, randomized back-off (ours)", with_j),
                    ("exact hourly, deterministic back-off", without)):
        print("| %s | %d | %d | %d | %.2f |" % (name, r["boot"], r["steady"], r["after"], r["mean"]))
    print()
    print("without/with jitter: steady-state peak %.0fx, post-outage peak %.0fx"
          % (without["steady"] / max(1, with_j["steady"]), without["after"] / max(1, with_j["after"])))


if __name__ == "__main__":
    main()
