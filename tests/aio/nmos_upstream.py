"""A tiny IS-04-like Node API on our HTTPServer, the upstream behind `protect` in tests.

Routes: `/` and `/x-nmos` (public listings); `/x-nmos/node/v1.3/...` echoes what arrived
(method, target, headers, the proxy's connection port); `/x-nmos/connection/v1.1/single/upload`
hashes a streamed body; `.../single/download?n=N` streams N bytes; `.../single/slow` answers
after 5 s; `/x-nmos/query/v1.3/ws` is a minimal RFC 6455 echo server that first sends the
request target it saw. Plus a WebSocket frame codec for clients that speak raw frames.
"""

import asyncio
import base64
import hashlib
import os
import struct

from nmosauth_lite.aio.web import Response, Router, json_response

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def pattern(n):
    """Deterministic download content."""
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


class NodeUpstream:
    def __init__(self):
        self.hits = []  # (method, target) of every request that reached us
        self.router = r = Router()
        r.add("GET", "/", lambda req: self._hit(req) or json_response(["x-nmos/"]))
        for path in ("/x-nmos", "/x-nmos/"):
            r.add("GET", path, lambda req: self._hit(req) or json_response(["node/", "connection/", "query/"]))
        r.add("*", "/x-nmos/node", self.echo, prefix=True)
        r.add(["POST", "PUT", "PATCH"], "/x-nmos/connection/v1.1/single/upload", self.upload)
        r.add("GET", "/x-nmos/connection/v1.1/single/download", self.download)
        r.add("GET", "/x-nmos/connection/v1.1/single/slow", self.slow)
        r.add("GET", "/x-nmos/query/v1.3/ws", self.websocket)

    def __call__(self, request):
        return self.router(request)

    def _hit(self, request):
        self.hits.append((request.method, request.target))

    def echo(self, request):
        self._hit(request)
        headers = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in request.headers]
        own = [("access-control-allow-origin", "https://ui.example.com")] if "own_cors" in request.query else None
        return json_response({"method": request.method, "target": request.target, "headers": headers,
                              "client_port": request.client[1]}, headers=own)

    async def upload(self, request):
        self._hit(request)
        h = hashlib.sha256()
        size = pieces = 0
        async for chunk in request.iter_body():
            h.update(chunk)
            size += len(chunk)
            pieces += 1
        return json_response({"sha256": h.hexdigest(), "length": size, "pieces": pieces,
                              "chunked": request.head.chunked})

    def download(self, request):
        self._hit(request)
        n = int(request.query.partition("n=")[2] or "0")
        data = pattern(n)

        async def chunks():
            for i in range(0, n, 65536):
                yield data[i:i + 65536]
                await asyncio.sleep(0)
        return Response(200, chunks(), content_type="application/octet-stream")

    async def slow(self, request):
        self._hit(request)
        await asyncio.sleep(5)
        return json_response({"slow": True})

    def websocket(self, request):
        self._hit(request)
        key = request.header("sec-websocket-key")
        if request.upgrade != "websocket" or not key:
            return json_response({"code": 400, "error": "websocket only", "debug": None}, 400)
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        target = request.target

        async def echo(reader, writer):
            writer.write(build_frame(1, target.encode()))
            while True:
                try:
                    opcode, payload = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if opcode == 8:  # close: answer it and end (RFC 6455 §5.5.1)
                    writer.write(build_frame(8, payload[:2]))
                    await writer.drain()
                    return
                writer.write(build_frame(10 if opcode == 9 else opcode, payload))
                await writer.drain()
        return Response(101, headers=[("upgrade", "websocket"), ("sec-websocket-accept", accept)], upgrade=echo)


def build_frame(opcode, payload, mask=False):
    """One final frame; clients must mask (RFC 6455 §5.3)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


async def read_frame(reader):
    """(opcode, unmasked payload) of the next frame."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if b1 & 0x80 else None
    payload = await reader.readexactly(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload
