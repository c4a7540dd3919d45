#!/usr/bin/env python3
"""HTTP benchmark (issue 3 item 8): ratios measured in one run, on this machine.

Three servers, each in its own process, answer GET /x-nmos/node/v1.3/self with the same
small JSON body and the same headers: our HTTPServer unprotected; our HTTPServer with the
resource-server guard in front of the handler (a cached token: the steady state of a
Node), with the default crypto backend (cryptography) and with the pure one (the device
profile: no OpenSSL bindings loaded); aiohttp with a middleware that validates the token with PyJWT on every request
(signature, exp/iat, iss, aud, sub, client_id or azp, the x-nmos-node read rule); uvicorn with
httptools and a bare ASGI app doing the same checks with PyJWT once per token (a dict caches the
claims, exp and the path rule are re-checked per request); granian (a Rust HTTP server, ASGI,
one in-process worker, HTTP/1.1) serving that same ASGI app: the fastest Python server stack
today (issue 20 §5; installed by `make bench`, skipped with a note when missing). Load
comes from a separate process over keep-alive connections: `wrk` when installed (see
tools/sysdeps.sh), else a small asyncio load generator (which can be the bottleneck on
small machines: the table says which was used). Plain HTTP on loopback, so the numbers
measure the HTTP stack and the token check, not TLS. Peak RSS is the server process's
VmHWM after the load; server CPU per request is its utime+stime over the measured
requests, a figure other work on the machine disturbs less than requests/s. Not a test: it prints numbers, it never fails on them.
"""

import argparse
import json
import os
import re
import sys
import time

from benchproc import peak_rss_mib, stop

# shutil, signal, statistics, subprocess, tempfile: imported where used, so that the server
# processes (this script with --serve) carry only what they need into the RSS figures.

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PATH = "/x-nmos/node/v1.3/self"
AUD = "node1.example.com"
ISS = "https://auth.example.com"
BODY = b'{"id":"3b8be755-08ff-452b-b217-c9151eb21193","label":"bench node","version":"1700000000:0"}'
HEADERS = [("content-type", "application/json"), ("access-control-allow-origin", "*"),
           ("access-control-expose-headers", "WWW-Authenticate, Retry-After")]
KINDS = ("ours-unprotected", "ours-protected", "ours-protected-pure", "aiohttp-pyjwt", "uvicorn-pyjwt",
         "granian-pyjwt")
OPTIONAL = {"granian-pyjwt": "granian"}  # kind -> module it needs (bench-only: tools/bench-requirements.txt)


# --- the servers (each run as `bench_http.py --serve KIND`: only what it needs is imported) --------

def serve_ours(kind, jwks_path, ready):
    import asyncio

    from nmosauth_lite.aio.server import HTTPServer, Response

    if kind.startswith("ours-protected"):
        from nmosauth_lite.aio.proxy import answer_response, guard_headers
        from nmosauth_lite.guard import Guard
        from nmosauth_lite.validator import TokenValidator

        with open(jwks_path) as f:
            # "-pure": the device profile, RSA through pow() and no OpenSSL bindings loaded
            backend = "pure" if kind.endswith("-pure") else "auto"
            guard = Guard(TokenValidator(jwks=json.load(f), audience=[AUD], issuers=[ISS], backend=backend))
        clock = time.time

        def handler(request):
            verdict = guard.check(request.method, request.target, guard_headers(request.headers), clock())
            if verdict.answer is not None:
                return answer_response(verdict.answer)
            return Response(200, BODY, HEADERS)
    else:
        def handler(request):
            return Response(200, BODY, HEADERS)

    async def main():
        server = HTTPServer(handler)
        await server.start("127.0.0.1", 0)
        ready(server.port)
        await server.serve_forever()
    asyncio.run(main())


def serve_aiohttp(jwks_path, ready):
    import socket

    import jwt
    from aiohttp import web

    with open(jwks_path) as f:
        jwks = jwt.PyJWKSet.from_dict(json.load(f))
    keys = dict((k.key_id, k.key) for k in jwks.keys)

    def deny(status, error):
        www = 'Bearer realm="%s"' % AUD + (",error=%s" % error if error else "")
        body = json.dumps({"code": status, "error": error or "no token", "debug": None})
        return web.Response(status=status, text=body, content_type="application/json",
                            headers={"WWW-Authenticate": www, "Access-Control-Allow-Origin": "*"})

    @web.middleware
    async def pyjwt_auth(request, handler):
        auth = request.headers.get("Authorization")
        if auth is None or auth[:7].lower() != "bearer ":
            return deny(401, None)
        token = auth[7:]
        try:
            key = keys.get(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(token, key, algorithms=["RS512"], audience=AUD, issuer=ISS,
                                options={"require": ["iss", "sub", "aud", "exp"]})
        except (jwt.PyJWTError, TypeError, ValueError):
            return deny(401, "invalid_token")
        if "client_id" not in claims and "azp" not in claims:
            return deny(401, "invalid_token")
        parts = request.path.split("/")  # /x-nmos/node/<ver>/<rest>: the IS-10 read rule
        rest = "/".join(parts[4:])
        specs = (claims.get("x-nmos-node") or {}).get("read") or []
        if not any(s == "*" or re.fullmatch(re.escape(s).replace(r"\*", ".*"), rest) for s in specs):
            return deny(403, "insufficient_scope")
        return await handler(request)

    async def node_self(request):
        return web.Response(body=BODY, headers=dict(HEADERS))

    app = web.Application(middlewares=[pyjwt_auth])
    app.router.add_get(PATH, node_self)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # connections wait in the backlog until aiohttp accepts: ready now
    ready(sock.getsockname()[1])
    web.run_app(app, sock=sock, access_log=None, print=None, handle_signals=True)


def pyjwt_asgi_app(jwks_path):
    """A bare ASGI app: PyJWT validates a token the first time it is seen, a dict caches its
    claims; later requests re-check exp and the path rule (served by uvicorn and by granian)."""
    import jwt

    with open(jwks_path) as f:
        jwks = jwt.PyJWKSet.from_dict(json.load(f))
    keys = dict((k.key_id, k.key) for k in jwks.keys)
    cache = {}
    headers = [(n.encode(), v.encode()) for n, v in HEADERS] + [(b"content-length", str(len(BODY)).encode())]

    def claims_for(token):
        c = cache.get(token)
        if c is None:
            key = keys.get(jwt.get_unverified_header(token).get("kid"))
            c = jwt.decode(token, key, algorithms=["RS512"], audience=AUD, issuer=ISS,
                           options={"require": ["iss", "sub", "aud", "exp"]})
            if "client_id" not in c and "azp" not in c:
                raise ValueError("no client")
            if len(cache) > 1024:
                cache.clear()
            cache[token] = c
        elif c["exp"] <= time.time():
            raise ValueError("expired")
        return c

    async def app(scope, receive, send):
        status = 200
        auth = None
        for n, v in scope["headers"]:
            if n == b"authorization":
                auth = v.decode("latin-1")
        if auth is None or auth[:7].lower() != "bearer ":
            status = 401
        else:
            try:
                c = claims_for(auth[7:])
                rest = "/".join(scope["path"].split("/")[4:])
                specs = (c.get("x-nmos-node") or {}).get("read") or []
                if not any(s == "*" or re.fullmatch(re.escape(s).replace(r"\*", ".*"), rest) for s in specs):
                    status = 403
            except (jwt.PyJWTError, TypeError, ValueError):
                status = 401
        body = BODY if status == 200 else b'{"code":%d,"error":"denied","debug":null}' % status
        await send({"type": "http.response.start", "status": status,
                    "headers": headers if status == 200 else [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


def serve_uvicorn(jwks_path, ready):
    """uvicorn + httptools (asyncio loop, as ours) and pyjwt_asgi_app: the fastest pure-Python
    stack a vendor would pick instead of ours (issue 13)."""
    import socket

    import uvicorn

    app = pyjwt_asgi_app(jwks_path)
    sock = socket.socket()
    # Accepted sockets inherit TCP_NODELAY: without it the head and body writes meet delayed
    # ACKs (40 ms per request), which would measure the kernel, not uvicorn.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    ready(sock.getsockname()[1])
    config = uvicorn.Config(app, http="httptools", loop="asyncio", lifespan="off", access_log=False,
                            log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def serve_granian(jwks_path, ready):
    """granian (Rust HTTP/1.1, ASGI interface), embedded: one process, one worker, the asyncio loop,
    serving pyjwt_asgi_app. Its own socket: a free port is picked, then polled until it answers."""
    import asyncio
    import socket

    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    app = pyjwt_asgi_app(jwks_path)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    async def main():
        server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, http=HTTPModes.http1,
                        log_enabled=False, backlog=512)
        task = asyncio.ensure_future(server.serve())
        for _ in range(500):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        ready(port)
        await task
    asyncio.run(main())


def serve(kind, jwks_path):
    def ready(port):
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
    if kind == "aiohttp-pyjwt":
        serve_aiohttp(jwks_path, ready)
    elif kind == "uvicorn-pyjwt":
        serve_uvicorn(jwks_path, ready)
    elif kind == "granian-pyjwt":
        serve_granian(jwks_path, ready)
    else:
        serve_ours(kind, jwks_path, ready)


# --- load -------------------------------------------------------------------------------------------

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_load(port, token, connections, duration):
    import subprocess

    out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency", "--timeout", "5s",
                          "-H", "Authorization: Bearer " + token, "http://127.0.0.1:%d%s" % (port, PATH)],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit("wrk failed:\n" + out)
    rps = float(found.group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    count = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors:.*", out)
    return (rps, float(m.group(1)) * _UNIT[m.group(2)], count, int(bad.group(1)) if bad else 0,
            errors.group(0) if errors else "")


def py_load(port, token, connections, duration):
    """The fallback load generator, in its own process (this script with --load)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--load", str(port), "--connections", str(connections),
                          "--duration", str(duration)], input=token, capture_output=True, text=True,
                         timeout=duration + 60)
    doc = json.loads(out.stdout)
    return doc["rps"], doc["p99_ms"], doc["count"], doc["bad"], ""


def load_main(port, token, connections, duration):
    import asyncio

    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n" % (PATH, port, token)).encode()

    async def worker(stop_at, lat, bad):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        clock = time.perf_counter
        while True:
            t0 = clock()
            if t0 >= stop_at:
                break
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                bad.append(1)
            i = head.lower().find(b"content-length:")
            n = int(head[i + 15:head.find(b"\r\n", i)]) if i >= 0 else 0
            await reader.readexactly(n)
            lat.append(clock() - t0)
        writer.close()

    async def main():
        lat, bad = [], []
        stop_at = time.perf_counter() + duration
        await asyncio.gather(*(worker(stop_at, lat, bad) for _ in range(connections)))
        lat.sort()
        return {"rps": len(lat) / duration, "p99_ms": lat[int(len(lat) * 0.99)] * 1e3, "count": len(lat),
                "bad": len(bad)}
    sys.stdout.write(json.dumps(asyncio.run(main())) + "\n")


# --- the run ----------------------------------------------------------------------------------------

def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def cpu_seconds(pid):
    """utime + stime of a process (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind, jwks_path, token, args, load):
    import subprocess

    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--jwks", jwks_path], cwd=ROOT,
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        port = int(proc.stdout.readline())
        load(port, token, args.connections, 1)  # warm-up: caches, first validation, allocator
        cpu0 = cpu_seconds(proc.pid)
        rps, p99, count, bad, errors = load(port, token, args.connections, args.duration)
        cpu_us = (cpu_seconds(proc.pid) - cpu0) / max(count, 1) * 1e6
        rss = peak_rss_mib(proc.pid)
    finally:
        stop(proc)
    if bad:
        raise SystemExit("%s answered %d requests with a non-2xx status: the measurement is void" % (kind, bad))
    return rps, p99, rss, cpu_us, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=3, help="measured seconds per server and round")
    ap.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    ap.add_argument("--rounds", type=int, default=7, help="each server measured this often, interleaved; medians shown")
    ap.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--servers", default=",".join(KINDS), help="which servers (comma-separated; ratios need all)")
    ap.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--jwks", help=argparse.SUPPRESS)
    ap.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.jwks)
    if args.load:
        return load_main(args.load, sys.stdin.read().strip(), args.connections, args.duration)

    import shutil
    import statistics
    import tempfile

    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from minting import Minter

    m = Minter()
    now = int(time.time())
    token = m.token("RS512", claims=m.claims(aud=[AUD], iat=now - 10, exp=now + 3600))
    use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk"))
    load = wrk_load if use_wrk else py_load
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure: shown with them
    tmp = tempfile.mkdtemp(prefix="bench-http-")
    kinds = [k for k in args.servers.split(",") if k in KINDS]
    missing = [k for k in kinds if k in OPTIONAL and not _importable(OPTIONAL[k])]
    kinds = [k for k in kinds if k not in missing]
    results = dict((k, []) for k in kinds)
    try:
        jwks_path = os.path.join(tmp, "jwks.json")
        with open(jwks_path, "w") as f:
            json.dump(m.jwks, f)
        for _ in range(args.rounds):
            for kind in kinds:
                results[kind].append(measure(kind, jwks_path, token, args, load))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = dict((k, [statistics.median(r[i] for r in results[k]) for i in range(4)]) for k in kinds)
    print("\nGET %s, %d keep-alive connections, %d s x %d rounds (medians), load: %s, plain HTTP on loopback, "
          "Python %s, %d CPUs, load average before %.2f\n" % (PATH, args.connections, args.duration, args.rounds,
                                     "wrk -t1" if use_wrk else "python asyncio", sys.version.split()[0],
                                     os.cpu_count() or 0, load_before))
    print("| server | requests/s | p99 ms | server CPU us/request | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for k in kinds:
        print("| %s | %.0f | %.2f | %.0f | %.1f |" % (k, med[k][0], med[k][1], med[k][3], med[k][2]))
    for k in missing:
        print("note: %s skipped: %s is not installed (make bench installs tools/bench-requirements.txt)"
              % (k, OPTIONAL[k]))
    if len(kinds) + len(missing) != len(KINDS):
        return 0
    def ratio(label, num, den, i, target, invert=False):
        # Per-round pairs (measured a few seconds apart) resist drifting background load
        # better than a ratio of medians: their median and range are shown.
        if num not in results or den not in results:
            return
        rs = sorted((results[den][j][i] / results[num][j][i]) if invert else
                    (results[num][j][i] / results[den][j][i]) for j in range(args.rounds))
        print("| %s | %.2f | %.2f - %.2f | %s |" % (label, statistics.median(rs), rs[0], rs[-1], target))
    print("\n| ratio (median of per-round ratios) | measured | range | target |")
    print("|---|---:|---:|---:|")
    ratio("protected / unprotected requests/s", "ours-protected", "ours-unprotected", 0, ">= 0.9")
    ratio("same, from server CPU per request", "ours-protected", "ours-unprotected", 3, ">= 0.9", invert=True)
    ratio("protected / aiohttp+PyJWT requests/s", "ours-protected", "aiohttp-pyjwt", 0, ">= 1.5")
    ratio("protected / aiohttp+PyJWT peak RSS", "ours-protected", "aiohttp-pyjwt", 2, "<= 0.5")
    ratio("protected (pure backend) / unprotected requests/s", "ours-protected-pure", "ours-unprotected", 0, ">= 0.9")
    ratio("protected (pure backend) / aiohttp+PyJWT requests/s", "ours-protected-pure", "aiohttp-pyjwt", 0, ">= 1.5")
    ratio("protected (pure backend) / aiohttp+PyJWT peak RSS", "ours-protected-pure", "aiohttp-pyjwt", 2, "<= 0.5")
    ratio("unprotected / aiohttp+PyJWT peak RSS (the floor)", "ours-unprotected", "aiohttp-pyjwt", 2, "")
    ratio("protected / uvicorn+httptools+PyJWT (dict token cache) requests/s", "ours-protected", "uvicorn-pyjwt", 0,
          ">= 1.2")
    ratio("same, from server CPU per request", "ours-protected", "uvicorn-pyjwt", 3, ">= 1.2", invert=True)
    ratio("protected / granian+PyJWT (dict token cache) requests/s", "ours-protected", "granian-pyjwt", 0, "")
    ratio("same, from server CPU per request", "ours-protected", "granian-pyjwt", 3, "", invert=True)
    ratio("protected / granian+PyJWT peak RSS", "ours-protected", "granian-pyjwt", 2, "")
    for k in kinds:
        for r in results[k]:
            if r[4]:
                print("note: %s: %s" % (k, r[4]))


if __name__ == "__main__":
    sys.exit(main())
