"""A tiny IS-04 Node API (v1.3) for the demo: what `protect` stands in front of.

Serves /x-nmos, /x-nmos/node, /x-nmos/node/v1.3/ and the self, devices, sources,
flows, senders and receivers resources of one Node with one device, plainly over
HTTP on loopback, as an existing Node would. It knows nothing of authorization:
that is the point of `protect`. Writes answer 200 so that a 403 can only come
from the guard.
"""

import uuid

from ..aio.web import Router, json_response

API = "/x-nmos/node/v1.3"


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


def router(host, port):
    node, device = make_node(host, port)
    r = Router()
    r.add("GET", "/x-nmos", lambda req: json_response(["node/"]))
    r.add("GET", "/x-nmos/node", lambda req: json_response(["v1.3/"]))
    r.add("GET", API, lambda req: json_response(["self/", "devices/", "sources/", "flows/", "senders/", "receivers/"]))
    r.add("GET", API + "/self", lambda req: json_response(node))
    r.add("GET", API + "/devices", lambda req: json_response([device]))
    r.add("GET", API + "/devices/" + device["id"], lambda req: json_response(device))
    for name in ("sources", "flows", "senders", "receivers"):
        r.add("GET", API + "/" + name, lambda req: json_response([]))
    r.add(["POST", "PUT", "PATCH", "DELETE"], API, lambda req: json_response({"written": True}), prefix=True)
    return r
