#!/usr/bin/env python3
"""Every benchmark in one run, summarized as ONE markdown table of ratios (`make bench`, issue 8 item 5).

Runs, on this machine and in this run: tools/bench_validate.py (validation vs raw verify
and PyJWT, cold start of `verify`), tools/bench_http.py (protected vs unprotected vs
aiohttp + PyJWT; skipped with a note while it does not exist), tools/bench_as.py (token
endpoint), tools/sim_jwks_fanin.py (JWKS refresh fan-in), then its own measurements:
`nmosauth-lite protect` cold start (spawn to ready line) and peak RSS idle and after a
load of first-seen tokens, with each backend; and the firmware bundle's size with and
without byte-code. The sub-benchmarks' own tables are echoed first (unless --summary-only);
the summary table comes last. Not a test: it prints numbers and never fails on them.

    .venv/bin/python tools/bench_all.py [--quick] [--summary-only]
"""

import argparse
import asyncio
import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time

from benchproc import peak_rss_mib, stop
from figures import FIGURES, Table, run_header, update_readme, write_figures

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AUD = "node1.example.com"
PATH = "/x-nmos/node/v1.3/self"
START_TIMEOUT = 60.0
STEP_TIMEOUT = 1800  # seconds any one sub-benchmark may take


def x(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def run_tool(args, echo, timeout=STEP_TIMEOUT):
    """Run a tools/ script with this Python; return its stdout (None when it failed)."""
    cmd = [sys.executable, os.path.join(HERE, args[0])] + list(args[1:])
    print("\n## %s\n" % " ".join(["tools/" + args[0]] + list(args[1:])), flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=ROOT))
    except subprocess.TimeoutExpired:
        print("(timed out after %d s)" % timeout)
        return None
    if echo:
        print(p.stdout.strip())
    if p.returncode != 0:
        print("(failed, exit %d)\n%s" % (p.returncode, p.stderr.strip()[-2000:]))
        return None
    return p.stdout


# --- the sub-benchmarks ----------------------------------------------------------------------------
def validation(t, quick, echo):
    out = run_tool(["bench_validate.py", "--json"] + (["--quick"] if quick else []), echo)
    if out is None:
        t.note("bench_validate.py failed: no validation rows")
        return
    doc = json.loads(out[out.index("\n{") + 1:])
    v, cold = doc["validate"], doc["cold"]
    targets = {"RS512": ("<= 1.5", ">= 2.5"), "ES256": ("<= 1.3", "")}
    for alg in [a for a in ("RS512", "ES256", "ES512", "RS256") if a in v]:
        r, q = v[alg], v[alg]["ratios"]
        if alg not in targets:  # ES512 (IPMX) and RS256: the floor ratio and the Rust library beside it
            t.add("validation %s" % alg, "first-seen token, full IS-10 checks / raw `cryptography` verify",
                  "%.1f / %.1f µs" % (r["first"][0], r["floor"][0]), "%.2fx" % q["first_floor"])
            if "oxyjwt" in r:
                t.add("validation %s" % alg, "ours first-seen (full IS-10) / oxyjwt `decode` (Rust, no path rules)",
                      "%.1f / %.1f µs" % (r["first"][0], r["oxyjwt"][0]), "%.2fx" % q["first_oxyjwt"])
            continue
        if "oxyjwt" in r:
            t.add("validation %s" % alg, "oxyjwt `decode` (Rust, no IS-10 path rules) / raw `cryptography` verify",
                  "%.1f / %.1f µs" % (r["oxyjwt"][0], r["floor"][0]), "%.2fx" % q["oxyjwt_floor"])
            t.add("validation %s" % alg, "ours first-seen (full IS-10) / oxyjwt `decode`",
                  "%.1f / %.1f µs" % (r["first"][0], r["oxyjwt"][0]), "%.2fx" % q["first_oxyjwt"])
        t.add("validation %s" % alg, "first-seen token, full IS-10 checks / raw `cryptography` verify (target %s)"
              % targets[alg][0], "%.1f / %.1f µs (p99 %.1f / %.1f)" % (r["first"][0], r["floor"][0], r["first"][1],
                                                                    r["floor"][1]), "%.2fx" % q["first_floor"])
        t.add("validation %s" % alg, "PyJWT `decode` / ours first-seen" + (" (target %s)" % targets[alg][1]
                                                                          if targets[alg][1] else ""),
              "%.1f / %.1f µs" % (r["pyjwt"][0], r["first"][0]), "%.2fx" % q["pyjwt_first"])
        st = r["stages"]
        t.add("validation %s" % alg, "first-seen stages, µs: " + ", ".join("%s %.1f" % kv for kv in st.items())
              + ", rest %.1f" % (r["first"][0] - sum(st.values())), "", "")
    lacking = [a for a in v if "oxyjwt" not in v[a]]
    if lacking:
        t.note("oxyjwt: no figure for %s (not installed, or it does not do that algorithm; 0.9.0 has no ES512)"
               % " ".join(lacking))
    r = v["RS512"]
    t.add("validation RS512", "cached token / first-seen", "%.2f / %.1f µs" % (r["cached"][0], r["first"][0]),
          "%.2fx" % r["ratios"]["cached_first"])
    for alg in [a for a in ("RS512", "ES512") if a in v and "ipmx_first" in v[a]]:  # issue 21
        t.add("validation %s" % alg, "first-seen token, IPMX profile / IS-10 profile",
              "%.1f / %.1f µs" % (v[alg]["ipmx_first"][0], v[alg]["first"][0]),
              "%.2fx" % v[alg]["ratios"]["ipmx_first_first"])
    if "pure" in r:
        t.add("validation RS512", "pure backend verify / bare `pow()` + sha512 (target <= 1.3)",
              "%.1f / %.1f µs" % (r["pure"][0], r["bare_pow"][0]), "%.2fx" % r["ratios"]["pure_bare"])
        t.add("validation RS512", "pure backend first-seen / cryptography first-seen",
              "%.1f / %.1f µs" % (r["pure_first"][0], r["first"][0]), "%.2fx" % r["ratios"]["pure_first_first"])
    t.add("cold start", "`verify` process / python + import cryptography + one verify (target <= 1.15)",
          "%.1f / %.1f ms (p99 %.1f / %.1f)" % (cold["ours_ms"], cold["base_ms"], cold["ours_p99"], cold["base_p99"]),
          "%.2fx" % cold["ratio"])
    t.add("cold start", "`verify` peak RSS / the same baseline",
          "%.1f / %.1f MiB" % (cold["ours_rss"], cold["base_rss"]), x(cold["ours_rss"], cold["base_rss"]))


def http(t, quick, echo):
    if not os.path.exists(os.path.join(HERE, "bench_http.py")):
        t.note("tools/bench_http.py does not exist yet: no HTTP rows (protected vs unprotected vs aiohttp + PyJWT)")
        return
    out = run_tool(["bench_http.py"] + (["--duration", "2", "--rounds", "3"] if quick else ["--rounds", "5"]), echo)
    if out is None:
        t.note("bench_http.py failed: no HTTP rows")
        return
    header = None  # the cells of the ratio table's header once inside it
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ratio"):
            header = [c.split(" (")[0] for c in cells]
            continue
        if header is None or line.startswith("|---"):
            continue
        if not line.startswith("| "):
            header = None
            continue
        row = dict(zip(header, cells))
        what = row.get("ratio", cells[0])
        if row.get("target"):
            what += " (target %s)" % row["target"]
        value = row.get("measured", "")
        t.add("HTTP", what, "range " + row["range"] if row.get("range") else "",
              value + "x" if re.match(r"^[0-9.]+$", value) else value)
    m = re.search(r"load: ([a-z]+)", out)
    if m:
        t.note("HTTP load generator: %s (bench_http.py)" % m.group(1))


def authserver(t, quick, echo):
    out = run_tool(["bench_as.py"] + (["--duration", "2", "--warmup", "0.5"] if quick else []), echo)
    if out is None:
        t.note("bench_as.py failed: no authorization server rows")
        return
    rates = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] in ("RS512", "ES256"):
            rates[cells[0]] = (float(cells[2]), float(cells[3]), float(cells[4]))
    if "RS512" in rates and "ES256" in rates:
        rs, es = rates["RS512"], rates["ES256"]
        t.add("authorization server", "client_credentials tokens/s, ES256 / RS512", "%.0f / %.0f" % (es[0], rs[0]),
              x(es[0], rs[0]))
        t.add("authorization server", "token p99 latency, RS512 / ES256", "%.1f / %.1f ms" % (rs[2], es[2]),
              x(rs[2], es[2]))


def fanin(t, quick, echo):
    out = run_tool(["sim_jwks_fanin.py"] + (["-n", "2000"] if quick else []), echo)
    if out is None:
        t.note("sim_jwks_fanin.py failed: no fan-in rows")
        return
    m = re.search(r"steady-state peak ([0-9.]+)x, post-outage peak ([0-9.]+)x", out)
    n = re.match(r"(\d+) resource servers", out)
    if m:
        who = "%s Nodes" % n.group(1) if n else "Nodes"
        t.add("JWKS fan-in (%s)" % who, "steady-state peak req/s, exact hourly / hourly + jitter", "",
              m.group(1) + "x")
        t.add("JWKS fan-in (%s)" % who, "peak req/s after an outage, deterministic / randomized back-off", "",
              m.group(2) + "x")


# --- protect: cold start and peak RSS, with each backend ---------------------------------------------
UPSTREAM = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from nmosauth_lite.aio.server import HTTPServer
from nmosauth_lite.aio.web import Response

async def handler(request):
    return Response(200, b'{"id":"bench","label":"node"}', [("content-type", "application/json")])

async def main():
    server = HTTPServer(handler)
    await server.start("127.0.0.1", 0)
    print(server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def start_protect(backend, upstream_port, files):
    """Spawn protect; return (process, port, seconds from spawn to its ready line)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("NOTIFY_SOCKET", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "protect", "--listen", "127.0.0.1:0",
                             "--upstream", "http://127.0.0.1:%d" % upstream_port, "--audience", AUD,
                             "--jwks", files["jwks"], "--cert", files["cert"], "--key", files["key"],
                             "--backend", backend, "--audit", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
                            text=True, cwd=ROOT)
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    elapsed = time.perf_counter() - t0
    if not line:
        stop(proc)
        raise RuntimeError("protect --backend %s did not start" % backend)
    return proc, int(json.loads(line)["listen"].rpartition(":")[2]), elapsed


async def drive(port, tokens, ca, workers):
    """Send one GET per token (each first-seen by protect) over `workers` keep-alive TLS connections."""
    from nmosauth_lite.aio.client import HTTPClient

    queue = list(tokens)
    bad = 0
    async with HTTPClient(ca_file=ca) as client:
        async def worker():
            nonlocal bad
            while queue:
                tok = queue.pop()
                resp = await client.request("GET", "https://localhost:%d%s" % (port, PATH),
                                            headers=[("authorization", "Bearer " + tok)],
                                            connect_host="127.0.0.1")
                bad += resp.status != 200
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(workers)])
        return len(tokens) / (time.perf_counter() - t0), bad


def protect(t, quick, echo):
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    if not os.path.exists(os.path.join(ROOT, "nmosauth_lite", "commands", "protect.py")):
        t.note("`protect` does not exist yet: no protect rows")
        return
    from minting import Minter

    from nmosauth_lite.aio.tlsutil import make_test_pki

    rounds, n_tokens, workers = (3, 800, 8) if quick else (5, 3000, 16)
    print("\n## protect: cold start (%d rounds), peak RSS idle and after %d first-seen tokens, requests/s "
          "(median of %d interleaved rounds) over %d TLS connections\n" % (rounds, n_tokens, rounds, workers),
          flush=True)
    m = Minter()
    now = int(time.time())
    tokens = [m.token("RS512", claims=m.claims(aud=[AUD], iat=now - 10, exp=now + 3600, jti="bench-%d" % i))
              for i in range(n_tokens)]
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench-protect-") as tmp:
        pki = make_test_pki(os.path.join(tmp, "pki"), dns_names=["localhost"])
        files = {"jwks": os.path.join(tmp, "jwks.json"), "cert": pki.cert, "key": pki.key}
        with open(files["jwks"], "w") as f:
            json.dump({"keys": [m.jwks["keys"][0]]}, f)
        up = subprocess.Popen([sys.executable, "-c", UPSTREAM, ROOT], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              text=True)
        try:
            ready, _, _ = select.select([up.stdout], [], [], START_TIMEOUT)
            up_port = int(up.stdout.readline()) if ready else 0
            if not up_port:
                raise RuntimeError("upstream did not start")
            cold = {"cryptography": [], "pure": []}
            for _ in range(rounds):  # interleaved so drift hits both backends
                for backend in cold:
                    proc, _port, secs = start_protect(backend, up_port, files)
                    stop(proc)
                    cold[backend].append(secs * 1000)
            procs = {}
            try:
                for backend in ("cryptography", "pure"):
                    proc, port, _ = start_protect(backend, up_port, files)
                    procs[backend] = (proc, port)
                time.sleep(0.2)
                idle = dict((b, peak_rss_mib(p.pid)) for b, (p, _port) in procs.items())
                rps = {"cryptography": [], "pure": []}
                bad = {"cryptography": 0, "pure": 0}
                per = len(tokens) // (rounds + 1)
                for r in range(rounds + 1):  # round 0 warms up; then interleaved, each token first-seen
                    for b, (proc, port) in procs.items():
                        got, nbad = asyncio.run(asyncio.wait_for(
                            drive(port, tokens[r * per:(r + 1) * per], pki.ca_cert, workers), 600))
                        bad[b] += nbad
                        if r:
                            rps[b].append(got)
                for b, (proc, _port) in procs.items():
                    res[b] = {"cold_ms": statistics.median(cold[b]), "idle": idle[b], "load": peak_rss_mib(proc.pid),
                              "rps": statistics.median(rps[b]), "bad": bad[b]}
            finally:
                for proc, _port in procs.values():
                    stop(proc)
        finally:
            stop(up)
    if echo:
        print("| backend | cold start ms (median) | peak RSS idle MiB | peak RSS after load MiB | first-seen req/s |")
        print("|---|---:|---:|---:|---:|")
        for b, r in res.items():
            print("| %s | %.1f | %.1f | %.1f | %.0f%s |" % (b, r["cold_ms"], r["idle"], r["load"], r["rps"],
                                                          " (%d non-200!)" % r["bad"] if r["bad"] else ""))
    c, p = res["cryptography"], res["pure"]
    t.add("protect", "cold start to ready line, pure / cryptography backend",
          "%.0f / %.0f ms" % (p["cold_ms"], c["cold_ms"]), x(p["cold_ms"], c["cold_ms"]))
    t.add("protect", "peak RSS idle, pure / cryptography", "%.1f / %.1f MiB" % (p["idle"], c["idle"]),
          x(p["idle"], c["idle"]))
    t.add("protect", "peak RSS after %d first-seen RS512 tokens, pure / cryptography" % n_tokens,
          "%.1f / %.1f MiB" % (p["load"], c["load"]), x(p["load"], c["load"]))
    t.add("protect", "first-seen RS512 requests/s over TLS, pure / cryptography", "%.0f / %.0f" % (p["rps"], c["rps"]),
          x(p["rps"], c["rps"]))
    if c["bad"] or p["bad"]:
        t.note("protect answered %d/%d load requests with a non-200 status: those rows are void"
               % (c["bad"], p["bad"]))


def bundle(t, quick, echo):
    sys.path.insert(0, HERE)
    import build_bundle

    print("\n## firmware bundle (tools/build_bundle.py)\n", flush=True)
    rows = build_bundle.measure(sys.executable, rounds=5 if quick else 9)
    if echo:
        print("| bytecode | size KiB | cold `verify` ms (pure, median) |\n|---|---:|---:|")
        for mode, size, ms in rows:
            print("| %s | %.1f | %.1f |" % (mode, size / 1024, ms))
    r = dict((mode, (size, ms)) for mode, size, ms in rows)
    t.add("bundle", "dist/nmosauth-lite.pyz size, sources only (default) / with .pyc (target <= 300 KiB)",
          "%.0f / %.0f KiB" % (r["none"][0] / 1024, r["pyc"][0] / 1024), x(r["none"][0], r["pyc"][0]))
    t.add("bundle", "cold `verify` from the bundle, sources only / with .pyc",
          "%.0f / %.0f ms" % (r["none"][1], r["pyc"][1]), x(r["none"][1], r["pyc"][1]))


STEPS = (("validation", validation), ("http", http), ("as", authserver), ("fanin", fanin), ("protect", protect),
         ("bundle", bundle))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier numbers), e.g. on a Pi Zero")
    ap.add_argument("--summary-only", action="store_true", help="print only the summary table")
    ap.add_argument("--only", help="comma-separated steps: " + ",".join(n for n, _ in STEPS))
    ap.add_argument("--write", action="store_true",
                    help="write docs/FIGURES.md and the README figures block (make bench; not with --only)")
    args = ap.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    t = Table()
    started = time.time()
    for name, step in STEPS:
        if chosen is not None and name not in chosen:
            continue
        try:
            step(t, args.quick, not args.summary_only)
        except Exception as e:  # noqa: BLE001 (one broken benchmark must not hide the others)
            t.note("%s: %s: %s" % (name, type(e).__name__, e))
    header = run_header(started, args.quick)
    print("\n## Summary: ratios measured in this run\n\n" + header + "\n")
    print(t.markdown())
    if args.write and not args.only:
        write_figures(t, header)
        print("\nwrote %s%s" % (os.path.relpath(FIGURES, ROOT),
                                 " and the README figures block" if update_readme(t, header) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
