"""Test support for the lite authorization server: a real server on loopback TLS, schemas, helpers.

The server runs in its own thread and event loop (so blocking clients such as requests
and authlib can talk to it); tests administer it through a second SQLite connection on
the same file, exactly as the CLI does. Fixtures are imported by the test modules.
"""

import asyncio
import base64
import json
import os
import threading
import time
import urllib.parse

import pytest

from nmosauth_lite.authserver import service
from nmosauth_lite.authserver.config import Config
from nmosauth_lite.authserver.store import Store, digest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(os.path.dirname(HERE), "vectors", "spec-data", "is-10")
SCHEMAS = os.path.join(SPEC, "APIs", "schemas")
START_TIMEOUT = 30.0


# --- IS-10 JSON schemas ---------------------------------------------------------------------------
_validators = {}


def validate(schema_name, obj):
    """Validate `obj` against an IS-10 schema (draft-04; $refs resolved inside the schema dir)."""
    v = _validators.get(schema_name)
    if v is None:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        resources = []
        for name in os.listdir(SCHEMAS):
            with open(os.path.join(SCHEMAS, name)) as f:
                resources.append((name, Resource.from_contents(json.load(f), default_specification=DRAFT4)))
        registry = Registry().with_resources(resources)
        with open(os.path.join(SCHEMAS, schema_name)) as f:
            schema = json.load(f)
        v = _validators[schema_name] = jsonschema.Draft4Validator(schema, registry=registry)
    v.validate(obj)


# --- a clock tests can move ---------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.time() + self.offset

    def advance(self, seconds):
        self.offset += seconds


# --- the server in a thread ---------------------------------------------------------------------------
class ASThread:
    """`with ASThread(table, state_dir) as srv:` -> srv.issuer, srv.port, srv.ca_file, srv.store()."""

    def __init__(self, table, state_dir, clock=None):
        self.config = Config(table, listen="127.0.0.1:0", state_dir=state_dir)
        self.clock = clock or Clock()
        self.running = None
        self.error = None
        self._ready = threading.Event()
        self._thread = None
        self._loop = None
        self._stop = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="as-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("authorization server did not start")
        if self.error is not None:
            raise self.error
        r = self.running
        self.issuer, self.port, self.ca_file = r.issuer, r.port, r.ca_file
        self.base = "https://localhost:%d" % self.port
        self.metadata = r.app.metadata()
        return self

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.running = await service.start(self.config, clock=self.clock)
        except BaseException as e:  # reported to the starting thread
            self.error = e
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.running.stop()

    def call(self, coro, timeout=30):
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self):
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)
            assert not self._thread.is_alive(), "server thread did not stop"

    def store(self):
        return Store(self.config.db_path)

    def reset_backoffs(self):
        """Forget failed logins and client authentications (each test starts clean)."""
        app = self.running.app
        if not hasattr(app.authenticator, "by_client"):
            return  # a server without back-offs
        from nmosauth_lite.authserver.throttle import Backoff, LoginPolicy

        async def reset():
            for owner, name in ((app.authenticator, "by_client"), (app.authenticator, "by_source")):
                old = getattr(owner, name, None)
                if old is not None:
                    setattr(owner, name, Backoff(free=old.free))
            app.authz.logins = LoginPolicy()

        self.call(reset())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- administration through a second connection (like the CLI) ---------------------------------
    def add_client(self, *, grants=("client_credentials",), scope="registration", auth="client_secret_basic",
                   redirect_uris=None, jwks=None, jwks_uri=None, status="active", name="test client"):
        from nmosauth_lite.authserver.registration import check_metadata, create_client

        meta = {"client_name": name, "scope": scope, "grant_types": list(grants), "token_endpoint_auth_method": auth}
        if redirect_uris:
            meta["redirect_uris"] = list(redirect_uris)
        if jwks is not None:
            meta["jwks"] = jwks
        if jwks_uri is not None:
            meta["jwks_uri"] = jwks_uri
        s = self.store()
        try:
            return create_client(s, check_metadata(meta, self.config), time.time(), status=status, actor="test")
        finally:
            s.close()

    def add_user(self, name="alice", password="correct horse battery", scope=""):
        from nmosauth_lite.authserver.users import hash_password

        s = self.store()
        try:
            s.put_user(name, hash_password(password), scope, time.time())
        finally:
            s.close()
        return name, password


def basic(client_id, secret):
    """RFC 6749 §2.3.1: form-urlencode each half, then base64."""
    raw = "%s:%s" % (urllib.parse.quote_plus(client_id), urllib.parse.quote_plus(secret))
    return "Basic " + base64.b64encode(raw.encode()).decode()


def no_store(resp):
    return resp.headers.get("cache-control") == "no-store" and resp.headers.get("pragma") == "no-cache"


def make_pki(directory):
    from nmosauth_lite.aio.tlsutil import make_test_pki

    return make_test_pki(directory, dns_names=("localhost",), ip_addresses=("127.0.0.1",))


def server_table(pki, **extra):
    """A configuration with a fixed test PKI (so client JWKS servers can share it) and test audience."""
    table = {
        "tls": {"cert_file": pki.cert, "key_file": pki.key, "ca_file": pki.ca_cert, "trust_ca_file": pki.ca_cert},
        "tokens": {"audience": ["*.example.com"]},
    }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(table.get(k), dict):
            table[k] = dict(table[k], **v)
        else:
            table[k] = v
    return table


@pytest.fixture(scope="session")
def as_pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("as-pki")))


@pytest.fixture(scope="module")
def as_server(tmp_path_factory, as_pki):
    # Client JWKS servers in these tests are on loopback: the lab allowance (clientkeys.py) is on.
    srv = ASThread(server_table(as_pki, client_jwks={"allow_private_addresses": True}),
                   str(tmp_path_factory.mktemp("as-state")))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def http(as_server):
    import requests

    with requests.Session() as s:
        s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace our test CA (and proxies apply)
        s.verify = as_server.ca_file
        yield s


def token_form(http, srv, form, auth=None, **kw):
    headers = {"Authorization": auth} if auth else {}
    return http.post(srv.metadata["token_endpoint"], data=form, headers=headers, timeout=10, **kw)


def refresh_digest(token):
    return digest(token)


def request_from(srv, method, url, source="127.0.0.1", body=None, headers=None, timeout=10):
    """One HTTPS request to the server from a chosen loopback source address (127.0.0.2 is
    "another machine" to the server's per-source rules). -> (status, headers dict, body bytes)."""
    import http.client
    import ssl

    parts = urllib.parse.urlsplit(url if "://" in url else srv.base + url)
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        headers = dict(headers or {}, **{"Content-Type": "application/x-www-form-urlencoded"})
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=timeout,
                                       source_address=(source, 0))
    try:
        conn.request(method, parts.path + ("?" + parts.query if parts.query else ""), body=body,
                     headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
