"""The IPMX mTLS client_id binding (TR-10-SEC SEC-44, SEC-45; issue 21): the core rule
(ipmx.client_id_bound) closed with generated names, the validator and guard with the
certificate's names as plain data, and the adapters that read them from the host: the aiohttp
middleware over real TLS with client certificates from the test CA, the ASGI `tls` extension
and the mod_ssl WSGI variables. The IS-10 profile binds nothing. protect: tests/aio/test_ipmx_mtls_protect.py.
"""

import ssl
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipmx_corpus as C
from adapter_servers import AiohttpServer, aiohttp_app, send_raw
from ipmx_realclock import shifted_token
from minting import Minter
from tls_helpers import SERVER_NAME, make_client_leaf, pki  # noqa: F401 (pki: a fixture)
from nmosauth_lite import TokenValidator, ipmx
from nmosauth_lite.aio.tlsutil import client_context, peer_cert_names, pem_cert_names, server_context
from nmosauth_lite.asgi import NmosAuthMiddleware, scope_client_cert
from nmosauth_lite.guard import Guard
from nmosauth_lite.wsgi import NmosAuthWSGI, environ_client_cert

READ = "/x-nmos/connection/v1.1/single/senders"


@pytest.fixture(scope="module")
def m():
    return Minter()


def ipmx_validator(m):
    return TokenValidator(jwks=m.jwks, profile="ipmx", **C.CONFIGS["oaim0"])


def token(m, **changes):
    return shifted_token(m, changes, {}, 0)  # BASE: client_id "ctl-1", sub "operator@example.com"


# --- the core rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("client_id, names, bound", [
    ("ctl-1", ("ctl-1",), True),  # the CN
    ("ctl-1", ("someone", "other.example", "CTL-1"), True),  # a SAN, another case
    ("Ctl-1.Studio.Example", ("ctl-1.studio.example",), True),
    ("ctl-1", ("*.ctl-1", "ctl-*", "*"), False),  # SEC-44: a wildcard never matches
    ("*", ("*",), False),
    ("ctl-1", ("ctl-1.",), False),  # no DNS normalisation: the names must be equal
    ("ctl-1", (), False),  # a certificate without CN or DNS SAN: refused (digest A16)
    ("ctl-1", ("", " ctl-1"), False),
    ("", ("",), False),
    ("ctl-1", "ctl-1", False),  # a bare string is not a list of names
])
def test_client_id_bound_cases(client_id, names, bound):  # SEC-44
    assert ipmx.client_id_bound(client_id, names) is bound


_label = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x24F), min_size=1, max_size=12)


def _swap_ascii_case(s, flips):
    return "".join(c.swapcase() if c.isascii() and f else c for c, f in zip(s, flips + [False] * len(s)))


@settings(max_examples=300, deadline=None)
@given(_label, st.lists(st.booleans(), max_size=12), st.lists(_label, max_size=4))
def test_ascii_case_folding_binds(name, flips, others):  # SEC-44: "case-insensitive"
    variant = _swap_ascii_case(name, flips)
    assert ipmx.client_id_bound(variant, others + [name]) is ("*" not in name)


@settings(max_examples=300, deadline=None)
@given(_label, st.integers(0, 12), st.lists(_label, max_size=4))
def test_a_wildcard_anywhere_never_binds(name, at, others):  # SEC-44: wildcards are non-matching
    star = name[:at] + "*" + name[at:]
    assert not ipmx.client_id_bound(star, [star])
    assert not ipmx.client_id_bound(name, [n for n in others if n.lower() != name.lower()] + [star])


@settings(max_examples=300, deadline=None)
@given(_label, _label)
def test_different_names_never_bind(a, b):
    # Only A-Z fold (the same on MicroPython): a non-ASCII letter in another case is another name
    same = a.translate(_UPPER) == b.translate(_UPPER) and "*" not in a
    assert ipmx.client_id_bound(a, [b]) is same


_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def test_non_ascii_case_is_not_folded():
    assert ipmx.client_id_bound("\u00e9t\u00e9-1", ["\u00e9T\u00e9-1"])
    assert not ipmx.client_id_bound("\u00e9t\u00e9-1", ["\u00c9T\u00c9-1"])


# --- validator and guard ---------------------------------------------------------------------------

def test_validator_binds_client_id_never_sub(m):  # SEC-44, SEC-45
    v = ipmx_validator(m)
    tok = token(m)
    assert v.check(tok, "GET", READ).status == 200  # no client certificate: no binding
    assert v.check(tok, "GET", READ, None, ["CTL-1"]).status == 200
    d = v.check(tok, "GET", READ, None, ["operator@example.com"])  # sub: never used (SEC-45)
    assert (d.status, d.error, d.status_counter) == (401, "invalid_token", "invalid_token")
    assert d.www_authenticate.startswith('Bearer realm="') and "invalid_token" in d.www_authenticate
    # the same token, cached, is still checked per request
    assert v.check(tok, "GET", READ, None, ["*.ctl-1", "ctl-*"]).status == 401
    assert v.check(tok, "GET", READ, None, ()).status == 401


def test_binding_is_checked_before_permissions(m):  # §9 preconditions: a 401, not a 403
    v = ipmx_validator(m)
    tok = token(m, scope="node")  # no connection scope: 403 for the bound client
    assert v.check(tok, "GET", READ, None, ["ctl-1"]).status == 403
    assert v.check(tok, "GET", READ, None, ["ctl-2"]).status == 401


def test_guard_passes_the_names_and_audits_the_counter(m):
    records = []
    g = Guard(ipmx_validator(m), audit=records.append)
    hdr = {"authorization": "Bearer " + token(m)}
    assert g.check("GET", READ, hdr, None, "127.0.0.1", ("ctl-1",)).answer is None
    v = g.check("GET", READ, hdr, None, "127.0.0.1", ("someone-else",))
    assert v.answer.status == 401
    assert dict(v.answer.headers)["WWW-Authenticate"].startswith('Bearer realm="')
    assert records[-1]["status_counter"] == "invalid_token" and records[-1]["status"] == 401
    assert g.check("GET", READ, hdr).answer is None  # without a certificate


def test_is10_binds_nothing(m):
    v = TokenValidator(jwks=m.jwks, audience=["node.example.com"])
    g = Guard(v)
    tok = m.token(exp=int(time.time()) + 300, iat=int(time.time()) - 10)
    hdr = {"authorization": "Bearer " + tok}
    assert g.check("GET", READ, hdr).answer is None
    assert g.check("GET", READ, hdr, None, None, ("someone-else",)).answer is None
    assert v.check(tok, "GET", READ, None, ["someone-else"]).status == 200


# --- aiohttp over real TLS -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def leaves(pki):  # noqa: F811
    return {
        "cn": make_client_leaf(pki, "mtls-cn", "ctl-1"),
        "san": make_client_leaf(pki, "mtls-san", "controller", ["other.example", "CTL-1"]),
        "wild": make_client_leaf(pki, "mtls-wild", "*.example", ["ctl-*", "*.ctl-1", "*"]),
        "sub": make_client_leaf(pki, "mtls-sub", "operator@example.com", ["operator@example.com"]),
        "nameless": make_client_leaf(pki, "mtls-nameless", None),
    }


def tls_client(pki, leaf=None):  # noqa: F811
    ctx = client_context(pki.ca_cert)
    if leaf is not None:
        ctx.load_cert_chain(*leaf)
    return ctx


def mtls_server(pki):  # noqa: F811
    return server_context(pki.cert, pki.key, ca_file=pki.ca_cert, client_cert="optional", policy="ipmx")


def _get(port, ctx, tok):
    status, headers, body = send_raw(port, "GET", READ, [("Authorization", "Bearer " + tok)], ssl_context=ctx)
    return status, headers.get("www-authenticate"), body


AIOHTTP_CASES = [  # (leaf, token changes, status)
    (None, {}, 200),  # no client certificate: no binding
    ("cn", {}, 200),  # client_id == CN
    ("san", {}, 200),  # client_id == a SAN in another case
    ("wild", {}, 401),  # wildcard names never match
    ("sub", {}, 401),  # sub == CN, client_id differs (SEC-45)
    ("nameless", {}, 401),  # verified, but no CN or DNS SAN
    ("cn", {"client_id": "CTL-1"}, 200),
    ("cn", {"sub": "ctl-1", "client_id": "ctl-2"}, 401),
]


def test_aiohttp_binds_client_id_over_real_mtls(m, pki, leaves):  # noqa: F811
    srv = AiohttpServer(aiohttp_app(Guard(ipmx_validator(m))), ssl_context=mtls_server(pki)).__enter__()
    try:
        wrong = []
        for leaf, changes, want in AIOHTTP_CASES:
            status, www, _ = _get(srv.port, tls_client(pki, leaves.get(leaf)), token(m, **changes))
            if status != want or (want == 401 and "invalid_token" not in (www or "")):
                wrong.append((leaf, changes, want, status))
        assert wrong == []
    finally:
        srv.__exit__(None, None, None)


def test_aiohttp_is10_profile_is_unaffected_by_client_certificates(m, pki, leaves):  # noqa: F811
    v = TokenValidator(jwks=m.jwks, audience=["node.example.com"])
    srv = AiohttpServer(aiohttp_app(Guard(v)), ssl_context=mtls_server(pki)).__enter__()
    try:
        tok = m.token(exp=int(time.time()) + 300, iat=int(time.time()) - 10)
        for leaf in ("sub", "wild", None):
            assert _get(srv.port, tls_client(pki, leaves.get(leaf)), tok)[0] == 200
    finally:
        srv.__exit__(None, None, None)


def test_a_client_certificate_from_another_ca_never_connects(m, pki, tmp_path):  # noqa: F811
    from nmosauth_lite.aio.tlsutil import make_test_pki

    other = make_test_pki(str(tmp_path / "other"), client_name="ctl-1")
    srv = AiohttpServer(aiohttp_app(Guard(ipmx_validator(m))), ssl_context=mtls_server(pki)).__enter__()
    try:  # SEC-99: no HTTP answer is possible, the handshake fails
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _get(srv.port, tls_client(pki, (other.client_cert, other.client_key)), token(m))
    finally:
        srv.__exit__(None, None, None)


# --- names from the host ---------------------------------------------------------------------------

def test_peer_cert_names_from_getpeercert():
    assert peer_cert_names(None) is None and peer_cert_names({}) is None
    cert = {"subject": ((("organizationName", "x"),), (("commonName", "ctl-1"),)),
            "subjectAltName": (("DNS", "A.example"), ("IP Address", "127.0.0.1"), ("email", "a@b"))}
    assert peer_cert_names(cert) == ("ctl-1", "A.example")


def test_asgi_tls_extension(m, pki, leaves):  # noqa: F811
    import asyncio

    with open(leaves["san"][0]) as f:
        pem = f.read()
    assert pem_cert_names(pem) == ("controller", "other.example", "CTL-1")

    def scope(tls, tok):
        s = {"type": "http", "method": "GET", "path": READ, "raw_path": READ.encode(), "query_string": b"",
             "headers": [(b"authorization", b"Bearer " + tok.encode())]}
        if tls is not None:
            s["extensions"] = {"tls": tls}
        return s

    assert scope_client_cert(scope(None, "x")) is None
    assert scope_client_cert(scope({"client_cert_chain": [], "client_cert_error": None}, "x")) is None
    assert scope_client_cert(scope({"client_cert_chain": [pem], "client_cert_error": "expired"}, "x")) == ()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = NmosAuthMiddleware(app, Guard(ipmx_validator(m)))

    async def status(s):
        sent = []

        async def send(msg):
            sent.append(msg)

        async def receive():
            return {"type": "http.request", "body": b""}
        await mw(s, receive, send)
        return sent[0]["status"]

    tls = {"client_cert_chain": [pem], "client_cert_error": None}
    assert asyncio.run(status(scope(tls, token(m)))) == 200
    assert asyncio.run(status(scope(tls, token(m, client_id="controller-2")))) == 401
    assert asyncio.run(status(scope(None, token(m, client_id="controller-2")))) == 200


def test_wsgi_mod_ssl_variables(m, leaves):
    with open(leaves["cn"][0]) as f:
        pem = f.read()
    assert environ_client_cert({}) is None
    assert environ_client_cert({"SSL_CLIENT_VERIFY": "NONE"}) is None
    assert environ_client_cert({"SSL_CLIENT_VERIFY": "SUCCESS"}) == ()  # verified, not exported: fail closed
    assert environ_client_cert({"SSL_CLIENT_VERIFY": "FAILED:expired", "SSL_CLIENT_CERT": pem}) == ()
    assert environ_client_cert({"SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_CERT": pem}) == ("ctl-1",)

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    mw = NmosAuthWSGI(app, Guard(ipmx_validator(m)))

    def status(tok, **env):
        got = []
        env.update({"REQUEST_METHOD": "GET", "PATH_INFO": READ, "HTTP_AUTHORIZATION": "Bearer " + tok})
        mw(env, lambda s, h, e=None: got.append(s))
        return int(got[0].split()[0])

    assert status(token(m), SSL_CLIENT_VERIFY="SUCCESS", SSL_CLIENT_CERT=pem) == 200
    assert status(token(m, client_id="ctl-9"), SSL_CLIENT_VERIFY="SUCCESS", SSL_CLIENT_CERT=pem) == 401
    assert status(token(m, client_id="ctl-9")) == 200
