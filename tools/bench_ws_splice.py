#!/usr/bin/env python3
"""WebSocket relay benchmark (issue 20 §3): what following frames to close at the token's expiry
costs `protect`'s splice, as ratios measured in one run on this machine.

An aiohttp echo server is the upstream; `AuthProxy` on our HTTPServer (plain HTTP on loopback, so
TLS is not measured) relays to it with ws_expiry "keep" (bytes copied as they come) and "close"
(each direction followed frame by frame, aio/splice.py), and a direct connection to the upstream
is the baseline. One aiohttp client sends messages and waits for each echo (round trips/s), then
streams messages and waits for the last echo (MB/s). Not a test: it prints numbers, never fails.
Usage: .venv/bin/python tools/bench_ws_splice.py [--rounds N]
"""

import argparse
import asyncio
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


async def echo_server():
    from aiohttp import web

    async def ws(request):
        sock = web.WebSocketResponse(max_msg_size=0)
        await sock.prepare(request)
        async for msg in sock:
            await sock.send_bytes(msg.data) if msg.type == web.WSMsgType.BINARY else await sock.send_str(msg.data)
        return sock
    app = web.Application()
    app.router.add_get("/x-nmos/query/v1.3/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def proxy(upstream_port, jwks, ws_expiry):
    from nmosauth_lite import TokenValidator
    from nmosauth_lite.aio.proxy import AuthProxy
    from nmosauth_lite.aio.server import HTTPServer
    from nmosauth_lite.guard import Guard

    guard = Guard(TokenValidator(jwks=jwks, audience=["node1.example.com"]), ws_expiry=ws_expiry)
    p = AuthProxy(guard, "http://127.0.0.1:%d" % upstream_port)
    srv = HTTPServer(p)
    await srv.start("127.0.0.1", 0)
    return srv, p


async def measure(url, rounds, size, stream):
    import aiohttp

    payload = os.urandom(size)
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, max_msg_size=0) as ws:
            t0 = time.perf_counter()
            if stream:  # a reader alongside the sender: the echoes must not fill the buffers both ways
                async def read_all():
                    for _ in range(rounds):
                        await ws.receive_bytes()
                reader = asyncio.ensure_future(read_all())
                for _ in range(rounds):
                    await ws.send_bytes(payload)
                await reader
            else:
                for _ in range(rounds):
                    await ws.send_bytes(payload)
                    await ws.receive_bytes()
            return time.perf_counter() - t0


async def main(rounds):
    from minting import Minter

    m = Minter()
    now = int(time.time())
    token = m.token("RS512", claims=m.claims(iat=now - 10, exp=now + 3600))
    runner, up = await echo_server()
    fronts = {"direct": up}
    servers = []
    for mode in ("keep", "close"):
        srv, p = await proxy(up, m.jwks, mode)
        servers.append((srv, p))
        fronts[mode] = srv.port
    rows = []
    for label, size, n, stream in (("round trips, 100 B", 100, rounds, False),
                                   ("round trips, 16 KiB", 16384, rounds // 2, False),
                                   ("stream, 64 KiB messages", 65536, rounds // 4, True)):
        best = {}
        for _ in range(3):  # the best of three per front, fronts interleaved
            for name, port in fronts.items():
                url = "ws://127.0.0.1:%d/x-nmos/query/v1.3/ws?access_token=%s" % (port, token)
                t = await measure(url, n, size, stream)
                best[name] = min(best.get(name, t), t)
        rate = {k: n / v for k, v in best.items()}
        rows.append({"case": label, "messages": n, "per_s": {k: round(v) for k, v in rate.items()},
                     "close/keep": round(rate["close"] / rate["keep"], 3),
                     "keep/direct": round(rate["keep"] / rate["direct"], 3)})
    for srv, p in servers:
        await srv.shutdown(1.0)
        await p.close()
    await runner.cleanup()
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4000)
    args = ap.parse_args()
    for row in asyncio.run(main(args.rounds)):
        print(json.dumps(row))
