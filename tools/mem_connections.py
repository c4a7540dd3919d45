"""Memory per held TLS connection (issue 23): RSS of a server idle, holding N connections, and after they close.

Starts the server in a child process (`protect`: the real CLI with a test PKI and the IS-10 example
JWKS; `server`: aio.server.HTTPServer alone; `stock`: asyncio.start_server with ssl=, the stdlib
baseline), opens N TLS connections from loopback addresses 127.0.1.x (a few per address, under the
per-address share), in one of two states:

  idle    TLS handshake done, nothing sent (a silent client)
  active  TLS up and half a request head sent (the slow-header client's state)

and reads the child's VmRSS from /proc before, while held, and after every client closed. Prints one
JSON line per run; per-connection figures are (held - before) / N. Linux only (/proc).

    .venv/bin/python tools/mem_connections.py [--kind protect|server|stock] [--state idle|active] [-n 512]
"""

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

from nmosauth_lite.aio.tlsutil import make_test_pki  # noqa: E402

SERVER_NAME = "localhost"
PER_ADDRESS = 32  # connections per client address (protect's share at 512 is 64)

_CHILD = r"""
import asyncio, json, sys
sys.path.insert(0, %(here)r)
from nmosauth_lite.aio.tlsutil import server_context

async def main():
    ctx = server_context(%(cert)r, %(key)r)
    if %(kind)r == "stock":
        async def handle(reader, writer):
            try:
                await reader.read(65536)
                await asyncio.sleep(3600)
            finally:
                writer.close()
        srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=1024)
        port = srv.sockets[0].getsockname()[1]
    else:
        from nmosauth_lite.aio.server import HTTPServer, Response
        srv = HTTPServer(lambda r: Response(200, b"ok"), ssl=ctx, max_connections=%(n)d + 16,
                         head_timeout=600, idle_timeout=600, max_per_address=%(n)d)
        await srv.start("127.0.0.1", 0, backlog=1024)
        port = srv.port
    print(json.dumps({"listen": "127.0.0.1:%%d" %% port}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_child(kind, n, pki, workdir):
    if kind == "protect":
        jwks = os.path.join(HERE, "nmosauth_lite", "data", "is10-example-jwks.json")
        cmd = [sys.executable, "-m", "nmosauth_lite", "protect", "--listen", "127.0.0.1:0",
               "--upstream", "http://127.0.0.1:9", "--audience", "node.example.com", "--jwks", jwks,
               "--cert", pki.cert, "--key", pki.key, "--audit", "off", "--state-dir", workdir,
               "--head-timeout", "600", "--idle-timeout", "600", "--max-connections", str(max(512, n + 16))]
    else:
        cmd = [sys.executable, "-c", _CHILD % dict(here=HERE, cert=pki.cert, key=pki.key, kind=kind, n=n)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=HERE, text=True)
    line = child.stdout.readline()
    if not line:
        child.kill()
        raise RuntimeError("%s did not start" % kind)
    port = int(json.loads(line)["listen"].rsplit(":", 1)[1])
    return child, port


async def hold(port, ctx, n, state):
    """Open `n` TLS connections; returns their writers."""
    sem = asyncio.Semaphore(32)
    writers = []

    async def one(i):
        source = "127.0.1.%d" % (1 + i // PER_ADDRESS)
        async with sem:
            for _ in range(3):
                try:
                    r, w = await asyncio.wait_for(asyncio.open_connection(
                        "127.0.0.1", port, ssl=ctx, server_hostname=SERVER_NAME, local_addr=(source, 0)), 20)
                    break
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(0.2)
            else:
                return
            if state == "active":
                w.write(b"GET /x-nmos/ HTTP/1.1\r\nHost: node.example.com\r\nX-Slow: ")
                await w.drain()
            writers.append(w)
    await asyncio.gather(*(one(i) for i in range(n)))
    return writers


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kib(pid)


def measure(kind="protect", state="idle", n=512, workdir=None):
    """-> dict of RSS figures (KiB) for one child server."""
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="memconn-")
    pki = make_test_pki(os.path.join(workdir, "pki"), dns_names=[SERVER_NAME])
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    child, port = start_child(kind, n, pki, os.path.join(workdir, "state"))
    try:
        loop = asyncio.new_event_loop()
        try:
            # one warm-up connection (first-use allocations are not per-connection costs)
            for w in loop.run_until_complete(hold(port, ctx, 4, state)):
                w.transport.abort()
            before = settle(child.pid)
            writers = loop.run_until_complete(hold(port, ctx, n, state))
            held = settle(child.pid)
            for w in writers:
                w.transport.abort()
            loop.run_until_complete(asyncio.sleep(0.2))
            after = settle(child.pid, 2.0)
        finally:
            loop.close()
        opened = len(writers)
        return {"kind": kind, "state": state, "connections": opened, "rss_before_kib": before,
                "rss_held_kib": held, "rss_after_close_kib": after,
                "per_connection_kib": round((held - before) / max(opened, 1), 1),
                "kept_after_close_kib": after - before}
    finally:
        child.kill()
        child.wait()
        if own:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=("protect", "server", "stock"), action="append")
    ap.add_argument("--state", choices=("idle", "active"), action="append")
    ap.add_argument("-n", type=int, default=512)
    args = ap.parse_args(argv)
    for kind in args.kind or ["protect", "stock"]:
        for state in args.state or ["idle", "active"]:
            print(json.dumps(measure(kind, state, args.n)), flush=True)


if __name__ == "__main__":
    main()
