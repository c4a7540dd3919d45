"""A small IS-04 Registration API (v1.x) that requires IS-10 tokens: the demo's Registry.

Every request meets our own Guard and TokenValidator first (IS-10 RS-*); then POST resource
(201 new, 200 update), DELETE resource/{type}/{id} (204), POST and GET health/nodes/{id}
(200, or 404 for an unknown Node: IS-04 says re-register), and the base paths. The Node's
entries are bound to the client_id of the token that first registered it (BCP-003-02
BCP-R-01..R-03: another client gets 403 insufficient_scope). Keeps what it saw in `seen`
for the demo and the tests. Leaves out the Query API, garbage collection, schema checks.
"""

import time

from .. import jsonshim
from ..aio.boundary import answer_response, guard_headers
from ..aio.web import Response, error_response, json_response
from ..guard import Guard

API = "/x-nmos/registration/"
MAX_BODY = 256 * 1024
TYPES = ("node", "device", "source", "flow", "sender", "receiver")


class StandinRegistry:
    """`HTTPServer(StandinRegistry(validator, realm))`; `seen`: [(method, path, status, client_id)].
    `faults`: statuses (401, 500, or (503, retry_after)) answered to the next requests instead."""

    def __init__(self, validator, realm="registry"):
        self.guard = Guard(validator, audit=None)
        self.realm = realm
        self.resources = {}  # id -> (type, data)
        self.owner = {}  # node id -> client_id (BCP-R-01)
        self.heartbeats = {}  # node id -> count
        self.seen = []
        self.authorization = []  # the raw Authorization values received (tests: the Node's never arrives)
        self.faults = []

    def __call__(self, request):
        return self._handle(request)

    async def _handle(self, request):
        self.authorization.append(request.header("authorization"))
        if self.faults:
            return self._fault(request, self.faults.pop(0))
        verdict = self.guard.check(request.method, request.target, guard_headers(request.headers), time.time())
        if verdict.answer is not None:
            self.seen.append((request.method, request.path, verdict.answer.status, None))
            return answer_response(verdict.answer)
        client = verdict.decision.claims.get("client_id") or verdict.decision.claims.get("azp")
        body = await request.read(MAX_BODY) if request.has_body else b""
        resp = self._route(request.method, request.path.rstrip("/"), body, client)
        self.seen.append((request.method, request.path, resp.status, client))
        return resp

    def _fault(self, request, fault):
        status, retry = fault if isinstance(fault, tuple) else (fault, None)
        self.seen.append((request.method, request.path, status, "fault"))
        headers = [("retry-after", str(retry))] if retry is not None else []
        if status == 401:
            headers.append(("www-authenticate", 'Bearer realm="%s",error=invalid_token,'
                            'error_description="revoked"' % self.realm))
        return error_response(status, "injected fault", headers)

    def _route(self, method, path, body, client):
        if not path.startswith(API):
            return json_response(["registration/"]) if path in ("/x-nmos", "") else error_response(404, "not found")
        parts = path[len(API):].split("/")
        rest = parts[1:]
        if not rest:
            return json_response(["resource/", "health/"])
        if rest == ["resource"] and method == "POST":
            return self._register(body, client)
        if len(rest) == 3 and rest[0] == "resource" and method == "DELETE":
            return self._delete(rest[2], client)
        if len(rest) == 3 and rest[:2] == ["health", "nodes"] and method in ("POST", "GET", "HEAD"):
            node = rest[2]
            if node not in self.owner:
                return error_response(404, "node not registered")  # IS-04: the Node registers again
            if method == "POST":
                if self.owner[node] != client:
                    return self._not_owner()
                self.heartbeats[node] = self.heartbeats.get(node, 0) + 1
            return json_response({"health": str(int(time.time()))})
        return error_response(404, "not found")

    def _register(self, body, client):
        try:
            doc = jsonshim.loads(body)
            kind, data = doc["type"], doc["data"]
            rid = data["id"]
        except (ValueError, KeyError, TypeError):
            return error_response(400, "not an IS-04 registration")
        if kind not in TYPES or not isinstance(rid, str):
            return error_response(400, "not an IS-04 registration")
        node = rid if kind == "node" else data.get("node_id") or self._node_of(data)
        if node is not None and self.owner.get(node, client) != client:
            return self._not_owner()
        if kind == "node":
            self.owner.setdefault(rid, client)
        new = rid not in self.resources
        self.resources[rid] = (kind, data)
        return json_response(data, 201 if new else 200, [("location", "%sv1.3/resource/%ss/%s" % (API, kind, rid))])

    def _node_of(self, data):
        parent = self.resources.get(data.get("device_id") or "")
        return parent[1].get("node_id") if parent else None

    def _delete(self, rid, client):
        entry = self.resources.get(rid)
        if entry is None:
            return error_response(404, "not found")
        node = rid if entry[0] == "node" else entry[1].get("node_id") or self._node_of(entry[1])
        if node is not None and self.owner.get(node, client) != client:
            return self._not_owner()
        del self.resources[rid]
        if entry[0] == "node":
            self.owner.pop(rid, None)
        return Response(204)

    def _not_owner(self):
        return error_response(403, "resource belongs to another client", [(
            "www-authenticate", 'Bearer realm="%s",error=insufficient_scope,'
            'error_description="client_id does not own this Node"' % self.realm)])
