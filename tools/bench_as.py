#!/usr/bin/env python3
"""Authorization server benchmark (issue 6): client_credentials tokens per second and latency.

For each signing algorithm (RS512, the IS-10 default, and ES256) it starts
`nmosauth-lite as serve` as its own process on loopback TLS with a fresh state
directory, registers one client_credentials client through the CLI, then drives the
token endpoint from this (separate) process, or from several with --processes: each
concurrent worker holds one keep-alive TLS connection (our aio HTTP client) and
sends client_secret_basic requests back to back. After a warm-up it reports tokens/s
and p50/p99 latency as a markdown table. The server is stopped by its PID.
Not a test: it prints numbers and never fails on them.

    .venv/bin/python tools/bench_as.py [--duration 5] [--concurrency 16] [--processes 1]
"""

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

from benchproc import stop

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

START_TIMEOUT = 60.0


def start_server(state_dir, alg):
    cfg = os.path.join(state_dir, "config.toml")
    with open(cfg, "w") as f:
        f.write('[authserver]\n[authserver.tokens]\nalg = "%s"\naudience = ["*.example.com"]\n' % alg)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    log = open(os.path.join(state_dir, "server.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "as", "serve", "--listen", "127.0.0.1:0",
                             "--state-dir", state_dir, "--config", cfg, "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env, text=True)
    log.close()
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if not line:
        stop(proc)
        raise SystemExit("server did not start; see %s/server.log" % state_dir)
    info = json.loads(line)
    out = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "client", "add", "--name", "bench",
                          "--grant", "client_credentials", "--scope", "registration", "--state-dir", state_dir,
                          "--config", cfg], capture_output=True, text=True, env=env, check=True)
    return proc, info, json.loads(out.stdout)


async def _worker(url, ca_file, auth, warm_until, stop_at, lat, errors):
    from nmosauth_lite.aio.client import HTTPClient

    async with HTTPClient(ca_file=ca_file, pool_size=1) as c:
        headers = [("authorization", auth)]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            resp = await c.post_form(url, {"grant_type": "client_credentials"}, headers=headers)
            t1 = time.perf_counter()
            if resp.status != 200:
                errors.append(resp.status)
            elif t0 >= warm_until:
                lat.append(t1 - t0)


def load_process(url, ca_file, auth, concurrency, warmup, duration, queue):
    async def main():
        lat, errors = [], []
        now = time.perf_counter()
        await asyncio.gather(*(_worker(url, ca_file, auth, now + warmup, now + warmup + duration, lat, errors)
                               for _ in range(concurrency)))
        return lat, errors

    queue.put(asyncio.run(main()))


def run_load(info, client, args):
    url = info["issuer"] + "/token"
    auth = "Basic " + base64.b64encode(("%s:%s" % (client["client_id"], client["client_secret"])).encode()).decode()
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=load_process, args=(url, info["ca_file"], auth, args.concurrency,
                                                                args.warmup, args.duration, queue))
             for _ in range(args.processes)]
    for p in procs:
        p.start()
    lat, errors = [], []
    for _ in procs:
        lt, er = queue.get(timeout=args.warmup + args.duration + 120)
        lat += lt
        errors += er
    for p in procs:
        p.join(30)
    return lat, errors


def pct(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per algorithm")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=16, help="keep-alive connections per load process")
    ap.add_argument("--processes", type=int, default=1, help="load-generating processes")
    ap.add_argument("--algs", default="RS512,ES256")
    args = ap.parse_args()
    rows = []
    for alg in args.algs.split(","):
        state = tempfile.mkdtemp(prefix="bench-as-")
        proc = None
        try:
            proc, info, client = start_server(state, alg)
            lat, errors = run_load(info, client, args)
        finally:
            if proc is not None:
                stop(proc)
            shutil.rmtree(state, ignore_errors=True)
        lat.sort()
        rows.append((alg, args.processes * args.concurrency, len(lat) / args.duration, pct(lat, 0.5) * 1e3,
                     pct(lat, 0.99) * 1e3, len(errors)))
    print("\nclient_credentials at the token endpoint, TLS keep-alive, server and load in separate processes, "
          "%s, %d CPUs\n" % (sys.platform, os.cpu_count() or 0))
    print("| alg | connections | tokens/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %d | %.0f | %.1f | %.1f | %d |" % r)


if __name__ == "__main__":
    main()
