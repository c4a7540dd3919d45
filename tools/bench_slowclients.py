"""Slow clients against `protect` (issue 11 §2): well-behaved clients' latency with and without an attacker.

A child process runs protect's stack (HTTPServer over TLS + AuthProxy + a local upstream) with
--max-connections N. The parent measures well-behaved clients from 127.0.0.2 (a new TLS connection
per request, GET /x-nmos/, forwarded upstream) alone, then again while N slow connections from
127.0.0.1 hold on (--kind head: trickle a request head at 1 byte/s; silent: TCP only, a TLS
handshake that never starts; mix: half each) and reconnect as soon as they are dropped. (A slow
body needs a valid token to be read at all: without one protect answers before the body.) Prints p50/p99, failures, and the ratio of the
two runs, measured in the same run (the machine may be shared: compare ratios, not absolutes).

    .venv/bin/python tools/bench_slowclients.py [--quick] [--connections 64] [--requests 400] [--kind head]
"""

import argparse
import asyncio
import multiprocessing
import os
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nmosauth_lite.aio.tlsutil import make_test_pki, server_context  # noqa: E402

SERVER_NAME = "localhost"


def serve(pki_dir, max_connections, queue):
    from nmosauth_lite import TokenValidator
    from nmosauth_lite.aio.proxy import AuthProxy
    from nmosauth_lite.aio.server import HTTPServer
    from nmosauth_lite.aio.web import json_response
    from nmosauth_lite.guard import Guard

    import json

    pki = make_test_pki(pki_dir, dns_names=[SERVER_NAME])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(here, "nmosauth_lite", "data", "is10-example-jwks.json")) as f:
        jwks = json.load(f)

    async def main():
        upstream = HTTPServer(lambda req: json_response(["node/", "connection/"]))
        await upstream.start("127.0.0.1", 0)
        guard = Guard(TokenValidator(jwks=jwks, audience=["node.example.com"]))
        proxy = AuthProxy(guard, "http://127.0.0.1:%d" % upstream.port)
        server = HTTPServer(proxy, ssl=server_context(pki.cert, pki.key), max_connections=max_connections)
        await server.start("127.0.0.1", 0)
        queue.put((server.port, pki.ca_cert))
        await asyncio.Event().wait()
    asyncio.run(main())


async def one_request(port, ctx):
    t0 = time.perf_counter()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname=SERVER_NAME, local_addr=("127.0.0.2", 0)), 10)
        w.write(b"GET /x-nmos/ HTTP/1.1\r\nHost: node.test\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 10)
        w.transport.abort()
        ok = data.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        ok = False
    return time.perf_counter() - t0, ok


async def measure(port, ctx, requests, workers):
    lat, failed = [], 0
    per = requests // workers

    async def worker():
        nonlocal failed
        for _ in range(per):
            t, ok = await one_request(port, ctx)
            if ok:
                lat.append(t)
            else:
                failed += 1
    await asyncio.gather(*(worker() for _ in range(workers)))
    return sorted(lat), failed


async def attacker(port, ctx, kind, stop, counts):
    """One slow connection from 127.0.0.1, re-opened whenever the server drops it."""
    while not stop.is_set():
        try:
            if kind == "silent":  # TCP only: a TLS handshake that never starts
                r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0))
            else:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname=SERVER_NAME, local_addr=("127.0.0.1", 0)), 5)
            counts["opened"] += 1
            payload = b"GET /x-nmos/ HTTP/1.1\r\nHost: node.test\r\nX-Slow: " + b"a" * 10000
            i = 0
            while not stop.is_set() and not r.at_eof():
                if kind != "silent":
                    w.write(payload[i:i + 1])
                    i += 1
                try:
                    await asyncio.wait_for(r.read(65536), 1.0)  # 1 byte/s, and notice being closed
                except asyncio.TimeoutError:
                    pass
            w.transport.abort()
            counts["dropped"] += 1
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            counts["refused"] += 1
        await asyncio.sleep(0.05)  # then straight back in: at most 20 reconnects/s per slot


def pct(lat, q):
    return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else float("nan")


async def run(args, port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    await measure(port, ctx, 8, 2)  # warm-up
    base, base_failed = await measure(port, ctx, args.requests, args.workers)
    stop = asyncio.Event()
    counts = {"opened": 0, "refused": 0, "dropped": 0}
    kinds = ("silent", "head") if args.kind == "mix" else (args.kind,)
    attackers = [asyncio.ensure_future(attacker(port, ctx, kinds[i % len(kinds)], stop, counts))
                 for i in range(args.connections)]
    await asyncio.sleep(args.settle)
    hit, hit_failed = await measure(port, ctx, args.requests, args.workers)
    stop.set()
    await asyncio.gather(*attackers, return_exceptions=True)
    print("slow-client benchmark: global cap %d, %d slow connections (%s) from 127.0.0.1, %d requests from "
          "127.0.0.2 (new TLS connection each, %d at a time)"
          % (args.connections, args.connections, args.kind, args.requests, args.workers))
    print("%-22s %8s %8s %8s" % ("", "p50 ms", "p99 ms", "failed"))
    print("%-22s %8.2f %8.2f %8d" % ("without attackers", pct(base, 0.5), pct(base, 0.99), base_failed))
    print("%-22s %8.2f %8.2f %8d" % ("with attackers", pct(hit, 0.5), pct(hit, 0.99), hit_failed))
    print("%-22s %8.2f %8.2f" % ("ratio", pct(hit, 0.5) / pct(base, 0.5), pct(hit, 0.99) / pct(base, 0.99)))
    print("attacker connections opened %d, dropped by the server %d, refused/reset before use %d"
          % (counts["opened"], counts["dropped"], counts["refused"]))
    return 0 if hit_failed == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (< 60 s)")
    ap.add_argument("--connections", type=int, default=64, help="global cap = slow connections (default 64)")
    ap.add_argument("--requests", type=int, default=400, help="well-behaved requests per phase")
    ap.add_argument("--workers", type=int, default=4, help="well-behaved clients at a time")
    ap.add_argument("--kind", choices=("head", "silent", "mix"), default="head",
                    help="head: 1 byte/s request heads; silent: no TLS ClientHello; mix: both")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds the attack runs before measuring")
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.settle = 100, 2.0
    queue = multiprocessing.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        child = multiprocessing.Process(target=serve, args=(tmp, args.connections, queue), daemon=True)
        child.start()
        try:
            port, ca = queue.get(timeout=30)
            return asyncio.run(asyncio.wait_for(run(args, port, ca), 300))
        finally:
            child.terminate()
            child.join(5)
            if child.is_alive():
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
