"""A tiny IS-04 Node API (v1.3) for the demo: what `protect` stands in front of.

Serves /x-nmos, /x-nmos/node, /x-nmos/node/v1.3 and the self, devices, sources,
flows, senders and receivers resources of one Node with one device, plainly over
HTTP on loopback, as an existing Node would. Every path answers with and without a
trailing slash, as NMOS APIs do; an unknown path is 404 in NMOS error JSON. It knows
nothing of authorization: that is the point of `protect`. Writes under the API
answer 200 so that a 403 can only come from the guard.
"""

import uuid

from ..aio.web import error_response, json_response

API = "/x-nmos/node/v1.3"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def make_node(host, port, label="nmosauth-lite demo node"):
    node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, host + ":node"))
    device_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, host + ":device"))
    href = "https://%s:%d/" % (host, port)
    node = {
        "id": node_id, "version": "1700000000:0", "label": label, "description": label, "tags": {},
        "href": href, "hostname": host, "caps": {}, "services": [], "clocks": [], "interfaces": [],
        # IS-04 v1.3 with IS-10: the API says it needs authorization (BCP-003-02 BCP-M-04)
        "api": {"versions": ["v1.3"], "endpoints": [{"host": host, "port": port, "protocol": "https",
                                                     "authorization": True}]},
    }
    device = {"id": device_id, "version": "1700000000:0", "label": "demo device", "description": "", "tags": {},
              "type": "urn:x-nmos:device:generic", "node_id": node_id, "senders": [], "receivers": [],
              "controls": []}
    return node, device


def resources(host, port):
    """path (no trailing slash) -> the JSON a GET answers."""
    node, device = make_node(host, port)
    out = {"/x-nmos": ["node/"], "/x-nmos/node": ["v1.3/"],
           API: ["self/", "devices/", "sources/", "flows/", "senders/", "receivers/"],
           API + "/self": node, API + "/devices": [device], API + "/devices/" + device["id"]: device}
    for name in ("sources", "flows", "senders", "receivers"):
        out[API + "/" + name] = []
    return out


def router(host, port):
    table = resources(host, port)

    def handle(req):
        path = req.path
        if len(path) > 1 and path.endswith("/"):  # /x-nmos/node/v1.3/ is /x-nmos/node/v1.3
            path = path[:-1]
        if req.method in ("GET", "HEAD"):
            if path in table:
                return json_response(table[path])
        elif req.method in WRITES and (path == API or path.startswith(API + "/")):
            return json_response({"written": True})
        elif path in table:
            return error_response(405, "method not allowed", [("allow", "GET, HEAD, " + ", ".join(WRITES))])
        return _not_found(req)

    return handle


MAX_DEBUG_PATH = 200


def _not_found(req):
    # NMOS error JSON (the IS-04 APIs' error schema): code, error, debug
    return json_response({"code": 404, "error": "not found",
                          "debug": "no resource at " + req.path[:MAX_DEBUG_PATH]}, 404)


async def serve_alone(host, port, out=None):
    """`demo --node-api`: this Node API alone, plain HTTP, until SIGTERM/SIGINT; one JSON line when ready."""
    import asyncio
    import json
    import logging
    import signal
    import sys

    from ..aio.address import format_listen
    from ..aio.files import is_loopback
    from ..aio.server import HTTPServer
    from ..errors import ConfigError

    out = out or sys.stdout
    if not is_loopback(host):
        logging.getLogger("nmosauth_lite.demo").warning(
            "the sample Node API on %s answers anyone without a token: put protect in front and firewall it", host)
    handler = {}
    server = HTTPServer(lambda request: handler["h"](request))
    try:
        await server.start(host, port)
    except OSError as e:
        raise ConfigError("cannot listen on %s:%d: %s" % (host, port, e.strerror or e))
    name = "localhost" if is_loopback(host) else host
    handler["h"] = router(name, server.port)
    hostport = format_listen(host, server.port)
    out.write(json.dumps({"listen": hostport, "node_api": "http://%s%s" % (hostport, API)}) + "\n")
    out.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.shutdown(2.0)
    return 0
