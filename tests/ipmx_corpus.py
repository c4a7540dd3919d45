"""The IPMX verdict corpus: one case per row of the TR-10-SEC digest's §9 access evaluation,
each aud-index case, `ext`, typ variants, algorithms, paths and the document's examples.

A case is (id, sec, claims, header, method, path, status, config, now). `claims` is a dict
of changes to BASE (ABSENT removes a claim); `header` changes to {"alg": "ES256", "typ":
"JWT", "kid": ...} (ABSENT removes). `config` names a validator configuration in CONFIGS.
`now` is seconds after NOW. Shared by tests/test_ipmx.py (validator, verify, Guard, ASGI)
and tests/aio/test_ipmx_protect.py (a real protect process).
"""

ABSENT = "<absent>"
NOW = 1700000100
ISS = "https://auth.example.com"
INSTANCE = "CC91629"
NODE = "node-cc91629.example.com"  # contains the instance id and is a certificate name
OTHER = "node-cc91699.example.com"  # another Node (Example 2)
CERT_NAMES = [NODE, "node1.studio.example.com"]

CONFIGS = {
    "oaim0": {"oaim": 0, "instance_id": INSTANCE, "cert_names": CERT_NAMES},
    "oaim1": {"oaim": 1, "cert_names": CERT_NAMES},
    "oaim2": {"oaim": 2, "instance_id": INSTANCE, "cert_names": CERT_NAMES},
    "cc": {"oaim": 0, "instance_id": INSTANCE, "cert_names": CERT_NAMES, "grant_policy": "client_credentials"},
    "code": {"oaim": 0, "instance_id": INSTANCE, "cert_names": CERT_NAMES, "grant_policy": "authorization_code"},
    "guest": {"oaim": 0, "instance_id": INSTANCE, "cert_names": CERT_NAMES,
              "guest_paths": ["/x-nmos/query/v1.3/subscriptionsGuest*"]},
    "ext": {"oaim": 0, "instance_id": INSTANCE, "cert_names": CERT_NAMES, "claims_location": "ext"},
}

CONN = "/x-nmos/connection/v1.1/single/senders/s1/staged"
NODEP = "/x-nmos/node/v1.3/self"
SC = "/x-nmos/streamcompatibility/v1.0/senders"

BASE = {
    "iss": ISS,
    "sub": "operator@example.com",
    "client_id": "ctl-1",
    "aud": [NODE],
    "exp": NOW + 3600,
    "scope": "node connection offline",  # SEC-73: an unused scope value is ignored
    "x-nmos-connection": {"read": ["*"], "write": ["*"]},
}


def claims_for(changes):
    c = dict(BASE)
    for k in changes:
        if changes[k] == ABSENT:
            c.pop(k, None)
        else:
            c[k] = changes[k]
    return c


def _perm(read=ABSENT, write=ABSENT):
    p = {}
    if read != ABSENT:
        p["read"] = read
    if write != ABSENT:
        p["write"] = write
    return p


def case(id, sec, status, claims=None, method="GET", path=CONN, header=None, config="oaim0", now=0):
    return (id, sec, claims or {}, header or {}, method, path, status, config, now)


CASES = [
    case("baseline-read", "SEC-33", 200),
    case("baseline-write", "SEC-41", 200, method="PATCH"),
    # §9 step 1: required claims (SEC-16)
    *[case("missing-" + n, "SEC-16", 401, {n: ABSENT}) for n in ("iss", "sub", "aud", "client_id", "exp", "scope")],
    case("azp-is-no-substitute", "SEC-16", 401, {"client_id": ABSENT, "azp": "ctl-1"}),
    # step 2: exp (SEC-19, SEC-20; the 30-minute tolerance, digest A3)
    case("exp-string", "SEC-19", 401, {"exp": str(NOW + 3600)}),
    case("exp-true", "SEC-19", 401, {"exp": True}),
    case("exp-null", "SEC-19", 401, {"exp": None}),
    case("exp-fraction-accepted", "SEC-19", 200, {"exp": 1.7000037e9}),
    case("expired-within-tolerance", "SEC-20", 200, now=3600 + 1799),
    case("expired-beyond-tolerance", "SEC-19", 401, now=3600 + 1800),
    # iat ignored (SEC-18), nbf honoured with the tolerance (SEC-17)
    case("iat-in-the-future-ignored", "SEC-18", 200, {"iat": NOW + 86400}),
    case("iat-not-a-number-ignored", "SEC-18", 200, {"iat": "yesterday"}),
    case("nbf-within-tolerance", "SEC-17", 200, {"nbf": NOW + 1799}),
    case("nbf-beyond-tolerance", "SEC-17", 401, {"nbf": NOW + 1801}),
    case("nbf-not-a-number", "SEC-17", 401, {"nbf": "soon"}),
    # step 3: grant (SEC-21, SEC-22)
    case("sub-not-string", "SEC-21", 401, {"sub": 7}),
    case("client-id-not-string", "SEC-21", 401, {"client_id": ["ctl-1"]}),
    case("cc-only-refuses-user-token", "SEC-22", 401, config="cc"),
    case("cc-only-accepts-cc-token", "SEC-22", 200, {"sub": "ctl-1"}, config="cc"),
    case("code-only-refuses-cc-token", "SEC-22", 401, {"sub": "ctl-1"}, config="code"),
    case("code-only-accepts-user-token", "SEC-22", 200, config="code"),
    # step 4: scope (SEC-33, SEC-35)
    case("scope-not-string", "SEC-33", 401, {"scope": ["connection"]}),
    case("api-not-in-scope", "SEC-33", 403, {"scope": "node"}),
    case("scope-empty", "SEC-35", 403, {"scope": ""}),
    case("scope-substring-is-not-a-name", "SEC-33", 403, {"scope": "connections node"}),
    # step 5: audience (SEC-26..SEC-30)
    case("aud-string-is-invalid", "SEC-30", 401, {"aud": NODE}),
    case("aud-non-string-entry", "SEC-30", 401, {"aud": [NODE, 1]}),
    case("aud-empty", "SEC-30", 403, {"aud": []}),
    case("aud-star", "SEC-26", 200, {"aud": ["*"]}),
    case("aud-other-node", "SEC-26", 403, {"aud": [OTHER]}),
    case("aud-serial-not-a-cert-name", "SEC-27", 403, {"aud": ["x-cc91629.example.com"]}),
    case("aud-cert-name-without-serial-oaim0", "SEC-26", 403, {"aud": ["node1.studio.example.com"]}),
    case("aud-serial-case-insensitive", "SEC-27", 200, {"aud": ["NODE-CC91629.example.com"]}),
    case("aud-oaim1-cert-name", "SEC-28", 200, {"aud": ["node1.studio.example.com"]}, config="oaim1"),
    case("aud-oaim1-wildcard-one-label", "SEC-28", 200, {"aud": ["*.studio.example.com"]}, config="oaim1"),
    case("aud-oaim1-wildcard-deeper-rfc4592", "SEC-28", 200, {"aud": ["*.example.com"]}, config="oaim1"),
    case("aud-oaim1-wildcard-not-the-apex", "SEC-28", 403, {"aud": ["*.node1.studio.example.com"]}, config="oaim1"),
    case("aud-oaim1-inner-star-is-literal", "SEC-28", 403, {"aud": ["node*.studio.example.com"]}, config="oaim1"),
    case("aud-oaim1-ignores-serial", "SEC-28", 403, {"aud": ["x-cc91629.example.com"]}, config="oaim1"),
    case("aud-oaim0-no-wildcards", "SEC-26", 403, {"aud": ["*.studio.example.com"]}),
    case("aud-oaim2-serial", "SEC-29", 200, {"aud": [NODE]}, config="oaim2"),
    case("aud-oaim2-wildcard", "SEC-29", 200, {"aud": ["*.studio.example.com"]}, config="oaim2"),
    case("aud-oaim2-neither", "SEC-29", 403, {"aud": [OTHER]}, config="oaim2"),
    case("aud-before-scope", "SEC-24", 403, {"aud": [OTHER], "scope": "node"}),
    # step 6: where the private claim is (SEC-23, digest A5)
    case("ext-not-object", "SEC-23", 401, {"ext": ["x"]}),
    case("ext-holds-the-claim", "SEC-23", 200,
         {"x-nmos-connection": ABSENT, "ext": {"x-nmos-connection": _perm(["*"], ["*"])}}, method="PATCH"),
    case("ext-claim-removes-scope-read", "SEC-34", 403,
         {"x-nmos-connection": ABSENT, "ext": {"x-nmos-connection": _perm([""], ["*"])}}),
    case("ext-and-top-identical", "SEC-23", 200,
         {"ext": {"x-nmos-connection": _perm(["*"], ["*"])}}, method="PATCH"),
    case("ext-and-top-differ", "SEC-23", 401, {"ext": {"x-nmos-connection": _perm(["*"], [""])}}),
    case("ext-without-the-claim-top-level-used", "SEC-23", 403,
         {"ext": {"other": 1}, "x-nmos-connection": _perm([""])}),
    case("location-ext-ignores-top-level", "SEC-23", 403,
         {"x-nmos-connection": _perm(["*"], ["*"])}, method="PATCH", config="ext"),
    # step 7: no private claim: scope gives read, never write (SEC-33)
    case("no-claim-read", "SEC-33", 200, {"x-nmos-connection": ABSENT}),
    case("no-claim-write", "SEC-33", 403, {"x-nmos-connection": ABSENT}, method="POST"),
    case("no-claim-head", "SEC-33", 200, {"x-nmos-connection": ABSENT}, method="HEAD"),
    # step 8
    case("claim-not-object", "SEC-38", 401, {"x-nmos-connection": ["*"]}),
    case("claim-null", "SEC-38", 401, {"x-nmos-connection": None}),
    # step 9: read (SEC-34, SEC-38..SEC-40)
    case("read-star", "SEC-38", 200, {"x-nmos-connection": _perm(["*"])}),
    case("read-empty-string", "SEC-38", 403, {"x-nmos-connection": _perm([""], ["*"])}),
    case("read-absent", "SEC-38", 403, {"x-nmos-connection": _perm(write=["*"])}),
    case("read-path-specifier-invalid", "SEC-68", 401, {"x-nmos-connection": _perm(["single/*"])}),
    case("read-empty-array-invalid", "SEC-39", 401, {"x-nmos-connection": _perm([])}),
    case("read-not-array-invalid", "SEC-38", 401, {"x-nmos-connection": _perm("*")}),
    case("read-null-invalid", "SEC-38", 401, {"x-nmos-connection": _perm(None)}),
    case("read-two-stars-invalid", "SEC-38", 401, {"x-nmos-connection": _perm(["*", "*"])}),
    case("read-index-0", "SEC-40", 200, {"x-nmos-connection": _perm([0])}),
    case("read-index-float-invalid", "SEC-39", 401, {"x-nmos-connection": _perm([0.0])}),
    case("read-index-bool-invalid", "SEC-39", 401, {"x-nmos-connection": _perm([False])}),
    case("read-index-out-of-range", "SEC-39", 401, {"x-nmos-connection": _perm([1])}),
    case("read-index-out-of-range-after-a-match", "SEC-39", 401, {"x-nmos-connection": _perm([0, 7])}),
    case("read-negative-out-of-range", "SEC-39", 401, {"x-nmos-connection": _perm([0, -7])}),
    case("read-unsorted-invalid", "SEC-39", 401,
         {"aud": ["*", NODE], "x-nmos-connection": _perm([-1, 0])}),
    # aud-index semantics (SEC-40): aud = [OTHER, NODE]
    case("index-allow-list-misses", "SEC-40", 403, {"aud": [OTHER, NODE], "x-nmos-connection": _perm([0])}),
    case("index-allow-list-hits", "SEC-40", 200, {"aud": [OTHER, NODE], "x-nmos-connection": _perm([1])}),
    case("index-allow-list-any", "SEC-40", 200, {"aud": [OTHER, NODE], "x-nmos-connection": _perm([0, 1])}),
    case("index-deny-only-hits", "SEC-40", 403, {"aud": [OTHER, NODE], "x-nmos-connection": _perm([-1])}),
    case("index-deny-only-misses", "SEC-40", 200,
         {"aud": ["*", OTHER, NODE], "x-nmos-connection": _perm([-1])}),
    case("index-allow-then-deny", "SEC-40", 403,
         {"aud": ["*", OTHER, NODE], "x-nmos-connection": _perm([0, -2])}),
    case("index-allow-then-deny-misses", "SEC-40", 200,
         {"aud": ["*", OTHER, NODE], "x-nmos-connection": _perm([0, -1])}),
    case("index-zero-cannot-be-denied", "SEC-39", 200,
         {"aud": [NODE, OTHER], "x-nmos-connection": _perm([0, -1])}),
    # step 10/11: write (SEC-41, SEC-42)
    case("write-malformed-makes-a-get-401", "SEC-38", 401, {"x-nmos-connection": _perm(["*"], ["single/*"])}),
    case("write-empty-string", "SEC-38", 403, {"x-nmos-connection": _perm(["*"], [""])}, method="PUT"),
    case("write-absent", "SEC-38", 403, {"x-nmos-connection": _perm(["*"])}, method="DELETE"),
    case("write-without-read", "SEC-41", 403, {"x-nmos-connection": _perm([""], ["*"])}, method="POST"),
    case("write-read-absent", "SEC-41", 403, {"x-nmos-connection": _perm(write=["*"])}, method="POST"),
    case("write-index", "SEC-40", 200,
         {"aud": [OTHER, NODE], "x-nmos-connection": _perm([0, 1], [1])}, method="PATCH"),
    case("write-index-misses", "SEC-40", 403,
         {"aud": [OTHER, NODE], "x-nmos-connection": _perm([0, 1], [0])}, method="PATCH"),
    # paths and API names (SEC-36, SEC-37)
    case("root-needs-node-scope", "SEC-37", 403, {"scope": "connection"}, path="/"),
    case("root-with-node-scope", "SEC-37", 200, path="/"),
    case("x-nmos-needs-node-scope", "SEC-37", 403, {"scope": "connection"}, path="/x-nmos"),
    case("x-nmos-with-node-scope", "SEC-37", 200, path="/x-nmos/"),
    case("node-api-read-by-scope", "SEC-33", 200, path=NODEP),
    case("manufacturer-needs-its-scope", "SEC-37", 403, path="/x-manufacturer/acme/status"),
    case("manufacturer-scope", "SEC-37", 200, {"scope": "manufacturer"}, path="/x-manufacturer"),
    case("ncp-with-nc", "SEC-37", 200, {"scope": "nc"}, path="/x-nmos/ncp/v1.0"),
    case("ncp-with-control", "SEC-37", 200, {"scope": "control"}, path="/x-nmos/ncp/v1.0"),
    case("ncp-scope-name-is-not-ncp", "SEC-36", 403, {"scope": "ncp"}, path="/x-nmos/ncp/v1.0"),
    case("ncp-claim-under-nc", "SEC-37", 403, {"scope": "nc", "x-nmos-nc": _perm([""])}, path="/x-nmos/ncp/v1.0"),
    case("path-outside-nmos", "SEC-37", 403, path="/favicon.ico"),
    case("method-outside-table", "SEC-25", 403, method="TRACE"),
    # WebSocket upgrades (SEC-46): read-write unless a Guest endpoint
    case("upgrade-is-read-write", "SEC-46", 403, {"scope": "query"},
         method="GET websocket", path="/x-nmos/query/v1.3/subscriptions/ws1"),
    case("upgrade-read-write-allowed", "SEC-46", 200,
         {"scope": "query", "x-nmos-query": _perm(["*"], ["*"])},
         method="GET websocket", path="/x-nmos/query/v1.3/subscriptions/ws1"),
    case("upgrade-guest-is-read", "SEC-46", 200, {"scope": "query"},
         method="GET websocket", path="/x-nmos/query/v1.3/subscriptionsGuest/ws1", config="guest"),
    case("upgrade-non-guest-with-guest-config", "SEC-46", 403, {"scope": "query"},
         method="GET websocket", path="/x-nmos/query/v1.3/subscriptions/ws1", config="guest"),
    # JOSE header (SEC-13, SEC-14)
    *[case("typ-" + t.replace("/", "_"), "SEC-13", 200, header={"typ": t})
      for t in ("JWT", "jwt", "at+jwt", "application/at+jwt", "AT+JWT")],
    case("typ-absent", "SEC-13", 401, header={"typ": ABSENT}),
    case("typ-application-jwt", "SEC-13", 401, header={"typ": "application/jwt"}),
    case("typ-jose", "SEC-13", 401, header={"typ": "JOSE"}),
    case("typ-null", "SEC-13", 401, header={"typ": None}),
    *[case("alg-" + a, "SEC-14", 200, header={"alg": a}) for a in ("RS256", "RS512", "ES256", "ES512")],
    *[case("alg-" + a, "SEC-14", 401, header={"alg": a}) for a in ("RS384", "ES384")],
    # The document's examples (digest §9 test vectors, L635-L703)
    case("example1-node-read", "L635", 200,
         {"scope": "node connection", "x-nmos-node": _perm(["*"], [""])}, path=NODEP),
    case("example1-node-write", "L635", 403,
         {"scope": "node connection", "x-nmos-node": _perm(["*"], [""])}, method="POST", path=NODEP),
    case("example2-read-connection", "L653", 200, {"aud": [NODE, OTHER], "x-nmos-connection": _perm([0, 1], [1])}),
    case("example2-write-connection-refused", "L653", 403,
         {"aud": [NODE, OTHER], "x-nmos-connection": _perm([0, 1], [1])}, method="PATCH"),
    case("example2-node-read-by-scope", "L653", 200,
         {"aud": [NODE, OTHER], "x-nmos-connection": _perm([0, 1], [1])}, path=NODEP),
    case("example2-the-listed-node-writes", "L653", 200,  # this Node in the place of ...99
         {"aud": [OTHER, NODE], "x-nmos-connection": _perm([0, 1], [1])}, method="PATCH"),
    case("example3-any-node-reads-sc", "L670", 200,
         {"aud": ["*", "node-cc91600.example.com", "node-cc91601.example.com"], "scope": "streamcompatibility",
          "x-nmos-streamcompatibility": _perm(["*"], [1, 2])}, path=SC),
    case("example3-write-only-listed", "L670", 403,
         {"aud": ["*", "node-cc91600.example.com", "node-cc91601.example.com"], "scope": "streamcompatibility",
          "x-nmos-streamcompatibility": _perm(["*"], [1, 2])}, method="POST", path=SC),
    case("example3-write-listed", "L670", 200,
         {"aud": ["*", OTHER, NODE], "scope": "streamcompatibility",
          "x-nmos-streamcompatibility": _perm(["*"], [1, 2])}, method="POST", path=SC),
    case("example4-client-credentials", "L687", 200, {"sub": "ctl-1", "aud": ["*"]}, config="cc"),
]


def header_for(changes, kid):
    h = {"alg": "ES256", "typ": "JWT", "kid": kid}
    for k in changes:
        if changes[k] == ABSENT:
            h.pop(k, None)
        else:
            h[k] = changes[k]
    return h
