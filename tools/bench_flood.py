#!/usr/bin/env python3
"""Floods from many addresses against `protect` and the AS (issue 23): the share of legitimate requests served.

Starts `nmosauth-lite protect` (with a small upstream) and `nmosauth-lite as serve` as their own
processes on loopback TLS. For each attack it measures a legitimate workload alone, then again while
an attacker process runs the attack from --addresses loopback addresses (127.0.5.1, 127.0.5.2, ...),
and prints the share of legitimate requests served in each run and their ratio (same run, same
machine: compare ratios, not absolutes). Attacks (the issue's list):

  protect-head      slow request heads, 8 connections per address, reconnecting when dropped
  protect-silent    TCP connections that never start TLS, 8 per address
  as-head           the same slow heads against the AS
  as-body           POST /register bodies at 600 B/s (over the 512 B/s floor), 8 per address
  as-authorize      GET /authorize without credentials, as fast as each address can
  as-register       unauthenticated registrations into the approval queue, as fast as each address can
  as-guess          wrong passwords for the user, as fast as each address can

Legitimate workloads: protect GET /x-nmos/ (a new TLS connection each); as-head/as-body: the metadata;
as-authorize/as-guess: a full sign-in (form + password) ending in a code; as-register: a registration
from a fresh address. Not a test: it prints numbers and never fails on them.

    .venv/bin/python tools/bench_flood.py [--addresses 100] [--requests 30] [--attacks as-guess,protect-head]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

from benchproc import stop

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from nmosauth_lite.aio.tlsutil import make_test_pki  # noqa: E402
from nmosauth_lite.probe.run import read_answer  # noqa: E402

SERVER_NAME = "localhost"
CB = "https://controller.example.com/cb"
USER, PASSWORD = "operator", "a long and right password"
ATTACKS = ("protect-head", "protect-silent", "as-head", "as-body", "as-authorize", "as-register", "as-guess")
PER_ADDRESS = 8  # slow connections per attacking address
REQUEST_TIMEOUT = 10.0
START_TIMEOUT = 60.0
_UPSTREAM = r"""
import asyncio, json, sys
sys.path.insert(0, %r)
from nmosauth_lite.aio.server import HTTPServer, json_response
async def main():
    s = HTTPServer(lambda r: json_response(["node/"]))
    await s.start("127.0.0.1", 0)
    print(json.dumps({"port": s.port}), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


# --- the children ---------------------------------------------------------------------------------
def _ready(proc, what, log):
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if not line:
        stop(proc)
        raise SystemExit("%s did not start; see %s" % (what, log))
    return json.loads(line)


def _child(cmd, workdir, name):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    log_path = os.path.join(workdir, name + ".log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                text=True)
    return proc, _ready(proc, name, log_path)


def start_protect(workdir, pki):
    up, info = _child([sys.executable, "-c", _UPSTREAM % ROOT], workdir, "upstream")
    jwks = os.path.join(ROOT, "nmosauth_lite", "data", "is10-example-jwks.json")
    proc, ready = _child([sys.executable, "-m", "nmosauth_lite", "protect", "--listen", "127.0.0.1:0",
                          "--upstream", "http://127.0.0.1:%d" % info["port"], "--audience", "node.example.com",
                          "--jwks", jwks, "--cert", pki.cert, "--key", pki.key, "--audit", "off",
                          "--state-dir", os.path.join(workdir, "protect")], workdir, "protect")
    return [proc, up], int(ready["listen"].rsplit(":", 1)[1])


def start_as(workdir, pki):
    state = os.path.join(workdir, "as")
    os.makedirs(state)
    cfg = os.path.join(state, "config.toml")
    with open(cfg, "w") as f:
        f.write('[authserver]\n[authserver.tls]\ncert_file = "%s"\nkey_file = "%s"\nca_file = "%s"\n'
                '[authserver.tokens]\naudience = ["*.example.com"]\n' % (pki.cert, pki.key, pki.ca_cert))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    base = [sys.executable, "-m", "nmosauth_lite", "as"]
    where = ["--state-dir", state, "--config", cfg]
    proc, info = _child(base + ["serve", "--listen", "127.0.0.1:0", "--log-level", "ERROR"] + where, workdir, "as")
    subprocess.run(base + ["user", "add", USER, "--password-stdin"] + where, input=PASSWORD + "\n", env=env,
                   check=True, capture_output=True, text=True)
    out = subprocess.run(base + ["client", "add", "--name", "controller", "--grant", "authorization_code",
                                 "--auth", "none", "--scope", "query", "--redirect-uri", CB] + where, env=env,
                         check=True, capture_output=True, text=True)
    return [proc], info, json.loads(out.stdout)["client_id"]


# --- one HTTPS exchange from a chosen source address ---------------------------------------------------
async def https(port, ctx, source, method, target, body=None, headers=()):
    """-> (status, {name: value}, body) or None when the connection failed or timed out."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=SERVER_NAME,
                                                 local_addr=(source, 0))
            try:
                lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % SERVER_NAME, "Connection: close"]
                lines += ["%s: %s" % h for h in headers]
                if body is not None:
                    lines.append("Content-Length: %d" % len(body))
                w.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
                answer = await read_answer(r, method)  # the probe's reader: one HTTP/1.1 parser loop
                return answer.status, answer.headers, answer.body
            finally:
                w.transport.abort()
    except (OSError, ConnectionError, asyncio.TimeoutError, ssl.SSLError, Exception):
        return None


def _authorize_target(issuer, client_id):
    path = urllib.parse.urlsplit(issuer).path
    return path + "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": CB, "scope": "query", "state": "s",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})


async def sign_in(port, ctx, source, target, password):
    """GET the form, POST user name and password -> the POST's status (302: a code), or None."""
    got = await https(port, ctx, source, "GET", target)
    if got is None or got[0] != 200:
        return None if got is None else got[0]
    page = got[2].decode("utf-8", "replace")
    action = re.search(r'action="([^"]+)"', page)
    rid = re.search(r'name="request_id" value="([^"]+)"', page)
    if not action or not rid:
        return None
    form = urllib.parse.urlencode({"request_id": rid.group(1), "username": USER, "password": password,
                                   "action": "approve"}).encode()
    got = await https(port, ctx, source, "POST", action.group(1).replace("&amp;", "&"), form,
                      [("Content-Type", "application/x-www-form-urlencoded")])
    return None if got is None else got[0]


REGISTRATION = json.dumps({"client_name": "device", "scope": "registration",
                           "grant_types": ["client_credentials"]}).encode()


# --- the attacker (its own process) ------------------------------------------------------------------
_STOP = {"at": 0.0}  # the attacker's end (monotonic); SIGTERM sets it to 0


async def _slow(port, ctx, source, kind, stop_at, tally):
    while time.monotonic() < stop_at["at"]:
        try:
            if kind == "silent":
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)
            else:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname=SERVER_NAME, local_addr=(source, 0)), 5)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            tally["refused"] = tally.get("refused", 0) + 1
            await asyncio.sleep(0.1)
            continue
        tally["connections"] = tally.get("connections", 0) + 1
        try:
            if kind == "head":
                w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            elif kind == "body":
                w.write(b"POST /x-nmos/auth/v1.0/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 18000\r\n\r\n")
            while time.monotonic() < stop_at["at"] and not r.at_eof():
                if kind == "head":
                    w.write(b"X: y\r\n")
                elif kind == "body":
                    w.write(b" " * 300)  # 600 B/s
                try:
                    await asyncio.wait_for(r.read(4096), 0.5)
                except asyncio.TimeoutError:
                    pass
        except (OSError, ConnectionError, ssl.SSLError):
            pass
        finally:
            w.transport.abort()


async def _repeat(fn, stop_at, tally):
    while time.monotonic() < stop_at["at"]:
        got = await fn()
        status = got if got is None or isinstance(got, int) else got[0]
        tally[status] = tally.get(status, 0) + 1
        if got is None:
            await asyncio.sleep(0.05)


def attacker(attack, port, ca_file, addresses, seconds, extra, queue):
    ctx = ssl.create_default_context(cafile=ca_file)
    sources = ["127.0.5.%d" % i for i in range(1, addresses + 1)]

    tally = {}  # the attacker's answers by status (None: no answer)

    async def main():
        _STOP["at"] = time.monotonic() + seconds
        stop_at = _STOP
        kind = attack.split("-", 1)[1]
        if kind in ("head", "silent", "body"):
            jobs = [_slow(port, ctx, s, kind, stop_at, tally) for s in sources for _ in range(PER_ADDRESS)]
        elif kind == "authorize":
            jobs = [_repeat(lambda s=s: https(port, ctx, s, "GET", extra["target"]), stop_at, tally)
                    for s in sources]
        elif kind == "register":
            jobs = [_repeat(lambda s=s: https(port, ctx, s, "POST", extra["register"], REGISTRATION,
                                              [("Content-Type", "application/json")]), stop_at, tally)
                    for s in sources]
        else:  # guess: 200 is the form again after a judged wrong password, 429 a refused guess
            jobs = [_repeat(lambda s=s: sign_in(port, ctx, s, extra["target"], "guess"), stop_at, tally)
                    for s in sources]
        try:
            await asyncio.wait_for(asyncio.gather(*jobs), seconds + REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            pass
    signal.signal(signal.SIGTERM, lambda *a: _STOP.update(at=0))  # finish what is in flight, then report
    asyncio.run(main())
    queue.put(dict(tally))


# --- legitimate load and the two runs ------------------------------------------------------------
async def legit(attack, port, ctx, n, extra):
    served = 0
    for i in range(n):
        source = "127.0.9.%d" % (1 + i % 200)
        if attack.startswith("protect"):
            got = await https(port, ctx, source, "GET", "/x-nmos/")
            ok = got is not None and got[0] == 200
        elif attack in ("as-head", "as-body"):
            got = await https(port, ctx, source, "GET", extra["metadata"])
            ok = got is not None and got[0] == 200
        elif attack == "as-register":
            got = await https(port, ctx, "127.0.%d.%d" % (10 + extra["round"], 1 + i), "POST", extra["register"],
                              REGISTRATION, [("Content-Type", "application/json")])
            ok = got is not None and got[0] == 201
        else:
            ok = await sign_in(port, ctx, source, extra["target"], PASSWORD) == 302
        served += ok
    return served / n


def one_attack(attack, port, ca_file, args, extra):
    ctx = ssl.create_default_context(cafile=ca_file)
    extra["round"] = 0
    alone = asyncio.run(legit(attack, port, ctx, args.requests, extra))
    queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=attacker, args=(attack, port, ca_file, args.addresses,
                                                          args.warmup + args.seconds, extra, queue))
    proc.start()
    tally = {}
    try:
        time.sleep(args.warmup)
        extra["round"] = 1
        t0 = time.monotonic()
        under = asyncio.run(legit(attack, port, ctx, args.requests, extra))
        took = time.monotonic() - t0
    finally:
        proc.terminate()  # by its PID (multiprocessing keeps it)
        try:
            tally = queue.get(timeout=2 * REQUEST_TIMEOUT + 5)
        except Exception:
            pass
        proc.join(10)
    return alone, under, took, tally


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addresses", type=int, default=100, help="attacking loopback addresses (127.0.5.x)")
    ap.add_argument("--requests", type=int, default=30, help="legitimate requests per run")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of attack before measuring")
    ap.add_argument("--seconds", type=float, default=60.0, help="longest attack after the warm-up")
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-flood-")
    procs = []
    rows = []
    try:
        pki = make_test_pki(os.path.join(work, "pki"), dns_names=[SERVER_NAME])
        attacks = args.attacks.split(",")
        if any(a.startswith("protect") for a in attacks):
            ps, protect_port = start_protect(work, pki)
            procs += ps
        if any(a.startswith("as") for a in attacks):
            ps, info, client_id = start_as(work, pki)
            procs += ps
            as_port = int(info["listen"].rsplit(":", 1)[1])
            path = urllib.parse.urlsplit(info["issuer"]).path
            extra = {"target": _authorize_target(info["issuer"], client_id), "register": path + "/register",
                     "metadata": "/.well-known/oauth-authorization-server" + path}
        for attack in attacks:
            port = protect_port if attack.startswith("protect") else as_port
            alone, under, took, tally = one_attack(attack, port, pki.ca_cert, args, dict(extra) if attack.startswith("as")
                                            else {})
            answers = " ".join("%s:%d" % (k, v) for k, v in sorted(tally.items(), key=lambda kv: str(kv[0])))
            rows.append((attack, args.addresses, alone, under, under / alone if alone else float("nan"), took,
                         answers or "-"))
            print("%s: %.0f%% alone, %.0f%% under attack" % (attack, alone * 100, under * 100), file=sys.stderr,
                  flush=True)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)
    print("\nLegitimate requests served during floods from many loopback addresses, %s, %d CPUs\n"
          % (sys.platform, os.cpu_count() or 0))
    print("| attack | addresses | served alone | served under attack | ratio | legit run s | attacker's answers |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print("| %s | %d | %.0f %% | %.0f %% | %.2f | %.1f | %s |" % (r[0], r[1], r[2] * 100, r[3] * 100, r[4], r[5],
                                                                   r[6]))


if __name__ == "__main__":
    main()
