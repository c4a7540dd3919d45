"""The IPMX profile (TR-10-SEC digest, issue 21): the verdict corpus of tests/ipmx_corpus.py through
TokenValidator, the `verify` command, the Guard and the ASGI middleware; the core rules on their
own (profile knobs, RFC 4592 wildcards, index arrays, claim location); the SEC-49 status counters;
and every place where the profile differs from IS-10, each test citing its SEC id. Tokens are
minted by tests/minting.py (pyca/cryptography), never by the code under test.
"""

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipmx_corpus as C
from minting import encode_token
from nmosauth_lite import TokenValidator, ipmx, ipmx_access, jws
from nmosauth_lite import profile as P
from nmosauth_lite.asgi import NmosAuthMiddleware
from nmosauth_lite.errors import ClaimError, ConfigError
from nmosauth_lite.guard import Guard

KIDS = {"RS256": "rsa-1", "RS384": "rsa-1", "RS512": "rsa-1", "ES256": "ec-256", "ES384": "ec-384", "ES512": "ec-521"}
_validators = {}


def validator(minter, config, backend="auto"):
    key = (config, backend)
    v = _validators.get(key)
    if v is None:
        v = _validators[key] = TokenValidator(jwks=minter.jwks, profile="ipmx", backend=backend, **C.CONFIGS[config])
    return v


def mint(minter, claims_changes, header_changes):
    alg = header_changes.get("alg", "ES256")
    header = C.header_for(header_changes, KIDS.get(alg, "ec-256"))
    priv = minter.key_by_alg[alg][0]
    return encode_token(header, C.claims_for(claims_changes), priv, alg)


def ids(cases):
    return ["%s(%s)" % (c[0], c[1]) for c in cases]


# --- the corpus through every front ---------------------------------------------------------------

@pytest.mark.parametrize("case", C.CASES, ids=ids(C.CASES))
def test_corpus_through_the_validator(minter, case):
    cid, sec, claims, header, method, path, status, config, now = case
    d = validator(minter, config).check(mint(minter, claims, header), method, path, C.NOW + now)
    assert d.status == status, (cid, sec, d)
    if status == 401:
        assert d.error == "invalid_token" and d.www_authenticate.startswith('Bearer realm="')  # SEC-12, SEC-43
        assert d.claims is None
    if status == 403:
        assert d.error == "insufficient_scope"


@pytest.mark.parametrize("backend_name", ["cryptography", "pure"])  # the pure lane deselects "cryptography"
def test_every_permitted_alg_on_both_backends(minter, backend_name):  # SEC-15
    for alg in ("RS256", "RS512", "ES256", "ES512"):
        d = validator(minter, "oaim0", backend_name).check(mint(minter, {}, {"alg": alg}), "GET", C.CONN, C.NOW)
        assert d.status == 200, (alg, d)
    for alg in ("RS384", "ES384"):
        token = mint(minter, {}, {"alg": alg})
        assert validator(minter, "oaim0", backend_name).check(token, "GET", C.CONN, C.NOW).status == 401


def _headers(token, method):
    h = {"authorization": "Bearer " + token}
    if method == ipmx.UPGRADE:
        h.update({"upgrade": "websocket", "connection": "Upgrade"})
    return h


@pytest.mark.parametrize("case", C.CASES, ids=ids(C.CASES))
def test_corpus_through_the_guard(minter, case):
    cid, sec, claims, header, method, path, status, config, now = case
    g = Guard(validator(minter, config))
    real = "GET" if method == ipmx.UPGRADE else method
    verdict = g.check(real, path, _headers(mint(minter, claims, header), method), C.NOW + now)
    assert verdict.decision.status == status, (cid, sec, verdict.decision)
    if status != 200:
        assert verdict.answer.status == status
        body = json.loads(verdict.answer.body)
        assert body["code"] == status
        names = [n for n, _ in verdict.answer.headers]
        assert "WWW-Authenticate" in names


class _Recorder:
    def __init__(self, incoming):
        self.incoming = list(incoming)
        self.sent = []

    async def receive(self):
        return self.incoming.pop(0) if self.incoming else {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message)


async def _node_app(scope, receive, send):
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.mark.parametrize("case", C.CASES, ids=ids(C.CASES))
def test_corpus_through_the_asgi_middleware(minter, case):
    cid, sec, claims, header, method, path, status, config, now = case
    app = NmosAuthMiddleware(_node_app, Guard(validator(minter, config)), clock=lambda: C.NOW + now)
    auth = [(b"authorization", b"Bearer " + mint(minter, claims, header).encode())]
    if method == ipmx.UPGRADE:
        scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": auth,
                 "extensions": {"websocket.http.response": {}}}
        rec = _Recorder([{"type": "websocket.connect"}])
        asyncio.run(app(scope, rec.receive, rec.send))
        got = 200 if rec.sent[0]["type"] == "websocket.accept" else rec.sent[0]["status"]
    else:
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": auth}
        rec = _Recorder([{"type": "http.request", "body": b""}])
        asyncio.run(app(scope, rec.receive, rec.send))
        got = rec.sent[0]["status"]
    assert got == status, (cid, sec)


_CLI_CASES = [c for c in C.CASES if c[4] != ipmx.UPGRADE]


@pytest.mark.parametrize("case", _CLI_CASES, ids=ids(_CLI_CASES))
def test_corpus_through_verify(minter, case, tmp_path, capsys):
    from nmosauth_lite.cli import main

    cid, sec, claims, header, method, path, status, config, now = case
    cfg = C.CONFIGS[config]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(minter.jwks))
    argv = ["verify", "--profile", "ipmx", "--jwks", str(jwks), "--oaim", str(cfg["oaim"]),
            "--method", method, "--path", path, "--now", str(C.NOW + now), "--token", mint(minter, claims, header)]
    for n in cfg["cert_names"]:
        argv += ["--audience", n]
    if "instance_id" in cfg:
        argv += ["--instance-id", cfg["instance_id"]]
    if "grant_policy" in cfg:
        argv += ["--grant-policy", cfg["grant_policy"]]
    for g in cfg.get("guest_paths", ()):
        argv += ["--guest-path", g]
    if "claims_location" in cfg:
        argv += ["--claims-location", cfg["claims_location"]]
    code = main(argv)
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == status, (cid, sec, out)
    assert code == (0 if status == 200 else 1)


def test_verify_ipmx_configuration_errors(minter, tmp_path, capsys):
    from nmosauth_lite.cli import main

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(minter.jwks))
    base = ["verify", "--jwks", str(jwks), "--audience", C.NODE]
    assert main(base + ["--profile", "ipmx"]) == 2  # oaim 0 needs the instance id
    assert "instance id" in capsys.readouterr().err
    assert main(base + ["--profile", "ipmx", "--oaim", "x"]) == 2
    assert main(base + ["--profile", "ipmx", "--oaim", "1", "--strict"]) == 2
    assert main(base + ["--profile", "ipfx"]) == 2
    assert main(base + ["--profile", "ipmx", "--oaim", "1", "--grant-policy", "any"]) == 2


# --- status counters (SEC-49) ---------------------------------------------------------------------

@pytest.mark.parametrize("claims,method,path,counter", [
    ({"aud": [C.OTHER], "scope": "node"}, "GET", C.CONN, "ro_denied_aud"),  # SEC-24: audience first
    ({"aud": [C.OTHER]}, "PATCH", C.CONN, "rw_denied_aud"),
    ({"scope": "node"}, "GET", C.CONN, "ro_denied_scope"),
    ({"x-nmos-connection": {"read": [""]}}, "GET", C.CONN, "ro_denied_x_nmos"),
    ({"x-nmos-connection": {"read": ["*"], "write": [""]}}, "PUT", C.CONN, "rw_denied_x_nmos"),
    ({"x-nmos-connection": None}, "GET", C.CONN, "invalid_token"),
    ({"exp": C.NOW - 1801}, "GET", C.CONN, "expired_token"),
])
def test_each_denial_names_its_sec49_counter(minter, claims, method, path, counter):
    d = validator(minter, "oaim0").check(mint(minter, claims, {}), method, path, C.NOW)
    assert d.status in (401, 403) and d.status_counter == counter


def test_sub_and_no_token_counters(minter):
    v = validator(minter, "cc")
    assert v.check(mint(minter, {}, {}), "GET", C.CONN, C.NOW).status_counter == "ro_denied_sub"
    assert v.check(mint(minter, {}, {}), "POST", C.CONN, C.NOW).status_counter == "rw_denied_sub"
    assert v.check(None, "GET", "/", C.NOW).status_counter == "no_token"
    assert set(ipmx.STATUS_COUNTERS) >= {"no_token", "invalid_token", "expired_token", "key_fetch_failed", "no_keys"}


def test_guard_audit_record_carries_the_counter_and_never_the_token(minter):
    records = []
    g = Guard(validator(minter, "oaim0"), audit=records.append)
    tok = mint(minter, {"scope": "node"}, {})
    g.check("GET", C.CONN, {"authorization": "Bearer " + tok}, C.NOW)
    assert records[-1]["status_counter"] == "ro_denied_scope"
    assert tok not in json.dumps(records)


def test_is10_audit_records_are_unchanged(minter):
    records = []
    g = Guard(TokenValidator(jwks=minter.jwks, audience=["node1.example.com"]), audit=records.append)
    g.check("GET", "/x-nmos/query/v1.3/nodes", {"authorization": "Bearer " + minter.token()}, minter.NOW)
    assert "status_counter" not in records[-1]


# --- where the profiles differ (digest §8), each difference on the same token -------------------

def is10(minter, **kw):
    return TokenValidator(jwks=minter.jwks, audience=[C.NODE], **kw)


def test_alg_lists_differ(minter):  # SEC-14 vs IS-10 RS-12 / TOK-03
    for alg, ipmx_status, is10_status, strict_status in (("RS384", 401, 200, 401), ("ES384", 401, 200, 401),
                                                         ("RS256", 200, 200, 401), ("ES512", 200, 200, 401)):
        tok = mint(minter, {"x-nmos-connection": C.ABSENT}, {"alg": alg})
        assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == ipmx_status
        assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == is10_status
        strict = is10(minter, algorithms=("RS512",))
        assert strict.check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == strict_status


def test_typ_absent_differs(minter):  # SEC-13 vs IS-10 RS-18
    tok = mint(minter, {"x-nmos-connection": C.ABSENT}, {"typ": C.ABSENT})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 401
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == 200


def test_iat_in_the_future_differs(minter):  # SEC-18 vs IS-10 RS-13
    tok = mint(minter, {"iat": C.NOW + 600, "x-nmos-connection": C.ABSENT}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 200
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == 401


def test_clock_tolerance_differs(minter):  # SEC-19, SEC-20 vs IS-10 RS-19
    tok = mint(minter, {"x-nmos-connection": C.ABSENT}, {})
    later = C.NOW + 3600 + 60
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, later).status == 200
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", later).status == 401
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, profile="ipmx", leeway=1801, **C.CONFIGS["oaim0"])
    with pytest.raises(ConfigError):
        is10(minter, leeway=301)


def test_required_claims_differ(minter):  # SEC-16 vs IS-10 RS-17
    tok = mint(minter, {"client_id": C.ABSENT, "azp": "ctl-1", "x-nmos-connection": C.ABSENT}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 401
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == 200
    tok = mint(minter, {"scope": C.ABSENT, "x-nmos-connection": C.ABSENT}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 401
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == 403  # no scope, no claim


def test_aud_string_differs(minter):  # SEC-30 vs IS-10 RS-16
    tok = mint(minter, {"aud": C.NODE}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 401
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == 200


def test_scope_reaches_every_path_under_ipmx_only(minter):  # SEC-33 vs IS-10 RS-31
    tok = mint(minter, {"x-nmos-connection": C.ABSENT}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 200
    assert is10(minter).check(tok, "GET", C.CONN, C.NOW).status == 403


def test_path_specifiers_are_an_invalid_token_under_ipmx(minter):  # SEC-68 vs IS-10 TOK-26
    tok = mint(minter, {"x-nmos-connection": {"read": ["*"], "write": ["single/*"]}}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 401
    assert is10(minter).check(tok, "PATCH", C.CONN, C.NOW).status == 200


def test_write_needs_read_under_ipmx_only(minter):  # SEC-41 vs IS-10 TOK-24
    tok = mint(minter, {"x-nmos-connection": {"write": ["*"]}}, {})
    assert validator(minter, "oaim0").check(tok, "PATCH", C.CONN, C.NOW).status == 403
    assert is10(minter).check(tok, "PATCH", C.CONN, C.NOW).status == 200


def test_root_needs_a_token_under_ipmx_only(minter):  # SEC-37 vs IS-10 RS-31
    for path in ("/", "/x-nmos"):
        assert validator(minter, "oaim0").check(None, "GET", path, C.NOW).status == 401
        assert is10(minter).check(None, "GET", path, C.NOW).status == 200


def test_options_needs_no_token_in_both(minter):  # GEN-04 kept (digest §8 "OPTIONS")
    assert validator(minter, "oaim0").check(None, "OPTIONS", C.CONN, C.NOW).status == 200


def test_query_token_is_never_read_under_ipmx(minter):  # SEC-11 vs IS-10 RS-37, RS-38
    tok = mint(minter, {"scope": "query", "x-nmos-query": {"read": ["*"], "write": ["*"]}}, {})
    ws = {"upgrade": "websocket", "connection": "Upgrade"}
    target = "/x-nmos/query/v1.3/subscriptions/1?access_token=" + tok
    assert Guard(validator(minter, "oaim0")).check("GET", target, dict(ws), C.NOW).decision.status == 401
    is10_tok = encode_token({"alg": "ES256", "typ": "JWT", "kid": "ec-256"},
                            dict(C.claims_for({"scope": "query"}), **{"x-nmos-query": {"read": ["*"]}}),
                            minter.ec256, "ES256")
    assert Guard(is10(minter)).check("GET", "/x-nmos/query/v1.3?access_token=" + is10_tok,
                                     dict(ws), C.NOW).decision.status == 200
    both = dict(ws, authorization="Bearer " + tok)  # the header is read, the query ignored
    assert Guard(validator(minter, "oaim0")).check("GET", target, both, C.NOW).decision.status == 200


def test_ext_claims_need_a_setting_under_is10(minter):  # SEC-23 vs IS-10 TOK-20
    tok = mint(minter, {"x-nmos-connection": C.ABSENT, "ext": {"x-nmos-connection": {"read": [""]}}}, {})
    assert validator(minter, "oaim0").check(tok, "GET", C.CONN, C.NOW).status == 403
    assert is10(minter).check(tok, "GET", "/x-nmos/connection/v1.1", C.NOW).status == 200


# --- the core rules on their own ------------------------------------------------------------------

def test_profiles_are_immutable_data():
    assert P.get_profile("ipmx") is P.IPMX and P.get_profile(P.IS10) is P.IS10
    with pytest.raises(AttributeError):
        P.IPMX.algorithms = ("RS384",)
    with pytest.raises(ValueError):
        P.get_profile("IPMX ")
    assert P.IPMX.key_refresh == 23 * 3600 and P.IPMX.key_jitter == 3600 and P.IPMX.key_max_age == 36 * 3600
    assert P.IS10.key_max_age is None and P.IS10.on_demand_fetch and not P.IPMX.on_demand_fetch
    assert TokenValidator(keys=_NoKeys(), audience=["a"]).algorithms == jws.DEFAULT_ALGORITHMS  # unchanged


class _NoKeys:
    def keys_for(self, iss):
        return []

    def missing_key(self, iss, kid, now):
        return None


def test_the_is10_defaults_are_unchanged():
    v = TokenValidator(keys=_NoKeys(), audience=["node1.example.com"])
    assert v.profile is P.IS10 and v.leeway == 0 and v.ipmx is None
    assert type(v).check is TokenValidator.check and "check" not in v.__dict__  # the IS-10 path untouched


@pytest.mark.parametrize("pattern,name,ok", [
    ("*.example.com", "a.example.com", True),
    ("*.example.com", "a.b.example.com", True),  # RFC 4592: any depth (digest A7)
    ("*.example.com", "example.com", False),
    ("*.EXAMPLE.com", "a.example.COM.", True),
    ("a*.example.com", "ab.example.com", False),  # only a whole leftmost label is a wildcard
    ("*", "a.example.com", False),  # "*" alone is handled as "any Node" before matching
    ("a.example.com", "a.example.com", True),
    ("*.example.com", ".example.com", False),
    ("*.example.com", "a..example.com", False),
])
def test_rfc4592_wildcards(pattern, name, ok):
    assert ipmx.wildcard_matches(pattern, name) is ok


@pytest.mark.parametrize("attr,aud_ok,want", [
    (["*"], [False], ipmx_access.ALLOW), ([""], [True], ipmx_access.DENY), (["x"], [True], ipmx_access.INVALID),
    ([], [True], ipmx_access.INVALID), ([0], [True], ipmx_access.ALLOW), ([0], [False], ipmx_access.DENY),
    ([1, 0], [False, True], ipmx_access.ALLOW), ([-1], [True, True], ipmx_access.DENY), ([-1], [True, False], ipmx_access.ALLOW),
    ([0, -1, 1], [True, False], ipmx_access.INVALID), ([2], [True, True], ipmx_access.INVALID), ([True], [True, True], ipmx_access.INVALID),
    ([0.0], [True], ipmx_access.INVALID), (["*", 0], [True], ipmx_access.INVALID), ("*", [True], ipmx_access.INVALID),
    ({"0": 1}, [True], ipmx_access.INVALID), ([0] * (ipmx_access.MAX_INDEXES + 1), [True], ipmx_access.INVALID),
])
def test_eval_attr(attr, aud_ok, want):
    assert ipmx_access.eval_attr({"read": attr}, "read", aud_ok) == want
    assert ipmx_access.eval_attr({}, "read", aud_ok) == ipmx_access.DENY


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(attr=json_values, aud_ok=st.lists(st.booleans(), max_size=5))
def test_eval_attr_property_never_raises_and_checks_every_index(attr, aud_ok):
    got = ipmx_access.eval_attr({"read": attr}, "read", aud_ok)
    assert got in (ipmx_access.ALLOW, ipmx_access.DENY, ipmx_access.INVALID)
    if type(attr) is list and attr and all(type(i) is int for i in attr):
        if any(abs(i) >= len(aud_ok) for i in attr):
            assert got == ipmx_access.INVALID  # SEC-39 prose: any entry out of bounds (digest A8)


@settings(max_examples=300, deadline=None)
@given(claims=st.dictionaries(st.sampled_from(["iss", "aud", "sub", "exp", "scope", "client_id", "nbf", "iat", "ext",
                                               "x-nmos-connection"]), json_values, max_size=10))
def test_hostile_claims_only_ever_raise_claim_errors(claims):
    try:
        ipmx.check_claims(claims, 1800, "both", "either")
    except ClaimError:
        return
    a = ipmx_access.Access(claims, ipmx.Audience(0, C.INSTANCE, C.CERT_NAMES), "either")
    for rw in (False, True):
        try:
            a.check(("connection",), rw)
        except (ClaimError, ipmx.PermissionDeniedError):
            pass


def test_audience_configuration_is_checked():
    for bad in ({"oaim": 3, "cert_names": ["a"]}, {"oaim": 0, "cert_names": ["a"]}, {"oaim": 1, "cert_names": []},
                {"oaim": 1, "cert_names": "a.example.com"}, {"oaim": 1, "cert_names": [""]},
                {"oaim": 1, "cert_names": ["a"] * (ipmx.MAX_CERT_NAMES + 1)}):
        with pytest.raises(ValueError):
            ipmx.Audience(**bad)
    for bad in ({"grant_policy": "any"}, {"claims_location": "both"}, {"guest_paths": ["nope"]},
                {"ncp_scopes": []}, {"ncp_scopes": ["n c"]}, {"algorithms": ("RS384",)}):
        with pytest.raises(ConfigError):
            TokenValidator(keys=_NoKeys(), profile="ipmx", **dict(C.CONFIGS["oaim0"], **bad))


def test_no_keys_held_is_401_never_503(minter):  # SEC-48, SEC-53 (digest A15)
    v = TokenValidator(keys=_NoKeys(), profile="ipmx", **C.CONFIGS["oaim0"])
    d = v.check(mint(minter, {}, {}), "GET", C.CONN, C.NOW)
    assert (d.status, d.error, d.status_counter) == (401, "invalid_token", "no_keys")


_WSGI_CASES = [c for c in C.CASES if c[4] != ipmx.UPGRADE]


@pytest.mark.parametrize("case", _WSGI_CASES, ids=ids(_WSGI_CASES))
def test_corpus_through_the_wsgi_middleware(minter, case):
    from nmosauth_lite.wsgi import NmosAuthWSGI

    cid, sec, claims, header, method, path, status, config, now = case

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    mw = NmosAuthWSGI(app, Guard(validator(minter, config)), clock=lambda: C.NOW + now)
    seen = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "RAW_URI": path, "QUERY_STRING": "",
               "HTTP_AUTHORIZATION": "Bearer " + mint(minter, claims, header), "wsgi.url_scheme": "https"}
    b"".join(mw(environ, lambda s, h, exc_info=None: seen.append(int(s.split()[0]))))
    assert seen == [status], (cid, sec)
