"""Node client behaviour against our authorization server: restarts, a forgetting server,
failover, 503 + Retry-After, secrets at rest, and token expiry over a long run (issue 7)."""

import asyncio
import os
import stat
import time

import pytest

from client_support import (ASThread, ServeProc, advertise, file_texts, issue_iat, make_pki, run,
                            server_table)
from dns_helpers import free_port
from nmosauth_lite import b64url, oauth
from nmosauth_lite.aio import dns as adns
from nmosauth_lite.aio.keystore import KeyStore
from nmosauth_lite.aio.oauth import (CredentialStore, NoServerError, OAuthClient, ServerSelector, TokenManager,
                                     TokenUnavailableError)
from nmosauth_lite.aio.web import Response
from nmosauth_lite.jws import parse
from nmosauth_lite.validator import TokenValidator

NAME = "ACME Encoder-9 SN-0042"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("flows-pki")))


@pytest.fixture()
def as_thread(tmp_path, pki):
    srv = ASThread(server_table(pki, tokens={"lifetime": 30, "audience": ["*.example.com"]}), str(tmp_path / "as"))
    srv.start()
    yield srv
    srv.stop()


def _node(tmp_path, issuers, ca_file, iat=None, name=NAME, **kw):
    sel = ServerSelector(issuers=issuers, ca_file=ca_file, **kw)
    store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "client.key"))
    return sel, OAuthClient(sel, store, name=name, scope="registration", initial_token=iat)


def _active(rows):
    return [r for r in rows if r["status"] == "active"]


def test_restarts_of_node_and_server_reuse_the_one_registration(tmp_path):
    srv = ServeProc(tmp_path / "as", "localhost", lifetime=30)
    try:
        srv.start()
        iat = srv.iat()
        tokens = []
        for boot in range(3):  # the Node process "restarts": new objects, same state directory
            async def go():
                sel, client = _node(tmp_path, [srv.issuer], srv.ca_file, iat)
                async with TokenManager(client) as m:
                    tokens.append(await m.token())
                await sel.close()
                return client.registrations
            assert run(go()) == (1 if boot == 0 else 0)
            if boot == 1:
                srv.stop()  # and the server restarts too, on the same port
                srv.start()
        assert len(set(tokens)) == 3
        assert len(srv.clients()) == 1  # exactly one registration (IS-10 CL-18)
        assert {parse(t).claims["client_id"] for t in tokens} == {srv.clients()[0]["client_id"]}
    finally:
        srv.stop()


def test_server_that_forgot_the_client_gets_a_new_registration(tmp_path):
    srv = ServeProc(tmp_path / "as", "localhost", lifetime=30)
    try:
        srv.start()
        iat = srv.iat()

        async def go():
            sel, client = _node(tmp_path, [srv.issuer], srv.ca_file, iat)
            async with TokenManager(client) as m:
                first = parse(await m.token()).claims["client_id"]
                srv.admin("client", "remove", first)  # the operator deletes it (`as client remove`)
                second = parse(await m.invalidate(await m.token())).claims["client_id"]
                assert second != first
            await sel.close()
            return client, first, second

        client, first, second = run(go())
        assert client.registrations == 2
        assert [r["client_id"] for r in _active(srv.clients())] == [second]
        stored = client.store.load(srv.issuer)
        assert stored["client_id"] == second  # the old record was replaced, not kept beside
        assert len([n for n in os.listdir(client.store.dir) if n.startswith("client-")]) == 1
    finally:
        srv.stop()


def test_failover_from_a_down_server_to_the_next_and_back(tmp_path):
    """DNS-SD lists A (pri 0) and B (pri 10). A answers, then stops: the Node moves to B;
    each server ends with exactly one registration."""
    a = ServeProc(tmp_path / "a", "auth-a.nmos-client.test", lifetime=30)
    b = ServeProc(tmp_path / "b", "auth-b.nmos-client.test", lifetime=30)
    dns = None
    try:
        a.start()
        b.start()
        dns = advertise(tmp_path / "dns", [("a", "auth-a", a.port, 0), ("b", "auth-b", b.port, 10)])
        iat_a, iat_b = a.iat(), b.iat()
        with open(tmp_path / "cas.pem", "w") as f:
            f.write(open(a.ca_file).read() + open(b.ca_file).read())

        async def go():
            cache = adns.DiscoveryCache(domains=["nmos-client.test"], nameservers=[dns.server], timeout=2.0)
            sel = ServerSelector(discovery=cache, ca_file=str(tmp_path / "cas.pem"))
            store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k"))
            client = OAuthClient(sel, store, name=NAME, scope="registration")
            iats = {a.issuer: iat_a, b.issuer: iat_b}
            orig = client._register

            async def register(c, meta):  # each server has its own initial access token
                client.initial_token = iats[c.issuer]
                return await orig(c, meta)
            client._register = register
            async with TokenManager(client) as m:
                assert parse(await m.token()).claims["iss"] == a.issuer
                a.stop()
                t0 = time.monotonic()
                assert parse(await m.invalidate(await m.token())).claims["iss"] == b.issuer
                assert time.monotonic() - t0 < 10
                a.start()  # back on its port; B stays in use until A's failure hold ends
                assert parse(await m.invalidate(await m.token())).claims["iss"] == b.issuer
                sel._failed.clear()
                sel.discovery._failed.clear()
                assert parse(await m.invalidate(await m.token())).claims["iss"] == a.issuer
            await sel.close()
            return client

        client = run(go())
        assert client.registrations == 2
        assert len(a.clients()) == 1 and len(b.clients()) == 1
    finally:
        if dns is not None:
            dns.stop()
        a.stop()
        b.stop()


def test_configured_server_down_at_start_fails_over_and_all_down_times_out(tmp_path, as_thread):
    dead = "https://localhost:%d/x-nmos/auth/v1.0" % free_port()

    async def go():
        sel, client = _node(tmp_path, [dead, as_thread.issuer], as_thread.ca_file, issue_iat(as_thread))
        tokens = await client.client_credentials()
        assert tokens["issuer"] == as_thread.issuer
        await sel.close()
        sel2, client2 = _node(tmp_path / "x", [dead], as_thread.ca_file)
        t0 = time.monotonic()
        with pytest.raises(NoServerError):
            await client2.client_credentials(timeout=2.0)
        assert time.monotonic() - t0 < 6
        m = TokenManager(client2, acquire_timeout=1.0)
        with pytest.raises(TokenUnavailableError):
            await m.token()
        await sel2.close()

    run(go())


class _Flaky:
    """An in-process fault in front of the AS app: the token endpoint answers 503 + Retry-After."""

    def __init__(self, app, path, times, retry_after):
        self.app, self.path, self.left, self.retry_after = app, path, times, retry_after
        self.hits = 0

    def __call__(self, request):
        if request.path == self.path and self.left:
            self.left -= 1
            self.hits += 1
            return Response(503, b'{"error":"temporarily_unavailable"}', [("retry-after", self.retry_after)],
                            content_type="application/json")
        return self.app(request)


def test_503_with_retry_after_is_waited_out_on_the_same_server(tmp_path, as_thread):
    server = as_thread.running.server
    flaky = _Flaky(server.handler, "/x-nmos/auth/v1.0/token", 1, "1")
    server.handler = flaky

    async def go():
        sel, client = _node(tmp_path, [as_thread.issuer], as_thread.ca_file, issue_iat(as_thread))
        t0 = time.monotonic()
        tokens = await client.client_credentials(timeout=10)
        elapsed = time.monotonic() - t0
        await sel.close()
        return tokens, elapsed

    tokens, elapsed = run(go())
    assert flaky.hits == 1 and elapsed >= 1.0 and tokens["access_token"]
    assert len(as_thread.store().list_clients()) == 1


def test_503_with_long_retry_after_moves_to_the_next_server(tmp_path, as_thread, pki):
    second = ASThread(server_table(pki, tokens={"lifetime": 30}), str(tmp_path / "as2")).start()
    try:
        server = as_thread.running.server
        server.handler = _Flaky(server.handler, "/x-nmos/auth/v1.0/token", 100, "120")

        async def go():
            sel, client = _node(tmp_path, [as_thread.issuer, second.issuer], pki.ca_cert)
            client.initial_token = issue_iat(as_thread)
            iat2 = issue_iat(second)
            orig = client._register

            async def register(c, meta):
                if c.issuer == second.issuer:
                    client.initial_token = iat2
                return await orig(c, meta)
            client._register = register
            t0 = time.monotonic()
            tokens = await client.client_credentials(timeout=10)
            await sel.close()
            return tokens, time.monotonic() - t0

        tokens, elapsed = run(go())
        assert tokens["issuer"] == second.issuer and elapsed < 5
    finally:
        second.stop()


def test_secrets_are_sealed_and_files_private(tmp_path, as_thread):
    async def go():
        sel, client = _node(tmp_path, [as_thread.issuer], as_thread.ca_file, issue_iat(as_thread))
        await client.client_credentials()
        client.store.signing_key()  # the private_key_jwt key is sealed too
        await sel.close()
        return client

    client = run(go())
    rec = client.store.load(as_thread.issuer)
    secret = rec["client_secret"]
    assert len(secret) >= 32
    state = str(tmp_path / "node")
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(client.store.dir).st_mode) == 0o700
    files = file_texts(state)
    assert len(files) >= 3
    for path, data in files.items():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        for form in (secret, b64url.encode(secret.encode()), oauth.form_encode(secret)):
            assert form.encode() not in data, path
        assert b"PRIVATE KEY" not in data, path
    key_file = str(tmp_path / "keys" / "client.key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(key_file)).st_mode) == 0o700
    # a copy of the state directory alone reveals nothing: without the key, nothing opens
    other = CredentialStore(state, str(tmp_path / "elsewhere" / "other.key"))
    with pytest.raises(Exception) as e:
        other.load(as_thread.issuer)
    assert "missing" in str(e.value) and secret not in str(e.value)
    # the registration survives in the AS store exactly once
    assert len(as_thread.store().list_clients()) == 1


@pytest.mark.timeout(90)
def test_expiry_during_a_long_run_with_30_second_tokens(tmp_path, as_thread):
    """IS-10's shortest lifetime (30 s): the manager refreshes in the background at the half-life
    (CL-32), so every token handed out over ~40 s verifies and has time left."""
    iat = issue_iat(as_thread)

    async def go():
        keys = KeyStore([as_thread.issuer], state_dir=str(tmp_path / "rs"), ca_file=as_thread.ca_file)
        await keys.refresh()
        validator = TokenValidator(keys=keys, audience=["registry.example.com"])
        sel, client = _node(tmp_path, [as_thread.issuer], as_thread.ca_file, iat)
        m = TokenManager(client)
        await m.start()
        seen, left = set(), []
        t_end = time.monotonic() + 40
        while time.monotonic() < t_end:
            tok = await m.token()
            seen.add(tok)
            d = validator.check(tok, "POST", "/x-nmos/registration/v1.3/resource", time.time())
            assert d.status == 200, d.reason
            left.append(parse(tok).claims["exp"] - time.time())
            await asyncio.sleep(1.0)
        await m.close()
        await sel.close()
        await keys.close()
        return m, seen, left, client

    m, seen, left, client = run(go(), timeout=80)
    assert m.refreshes >= 3 and len(seen) >= 3  # two or more background refreshes in 40 s
    assert min(left) > 10  # never close to expiry: refreshed ahead, not on demand
    assert client.registrations == 1
