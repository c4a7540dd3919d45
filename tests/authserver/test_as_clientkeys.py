"""Issue 11 §3: outbound fetches a client chooses (its private_key_jwt jwks_uri) are fenced.

A real TLS JWKS server on loopback counts the connections it accepts; the AS's address
policy, single-flight, rate limit, negative cache, size and time caps are checked against it.
"""

import asyncio
import json
import logging
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from as_support import ASThread, as_pki, as_server, server_table, token_form  # noqa: F401 (fixtures)
from minting import encode_token, public_jwk
from nmosauth_lite.authserver import clientkeys
from nmosauth_lite.authserver.clientauth import ASSERTION_ALGS, ASSERTION_TYPE
from nmosauth_lite.authserver.clientkeys import ClientKeys, FetchError, cache_ttl, is_allowed_address


class JWKSServer:
    """A TLS server answering every request with `body` and `headers`; counts connections."""

    def __init__(self, cert, key, body=b"{}", headers=(), stall=False):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.body, self.headers, self.stall = body, list(headers), stall
        self.connections = 0
        self.server = None

    async def start(self):
        def factory():  # called on accept, before the TLS handshake: failed handshakes count too
            self.connections += 1
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self._serve)

        self.server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if self.stall:
                await asyncio.sleep(30)
            head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(self.body)
            head += "".join("%s: %s\r\n" % h for h in self.headers) + "connection: close\r\n\r\n"
            writer.write(head.encode() + self.body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


def _assertion(srv, cid, priv, kid="k"):
    now = int(time.time())
    return encode_token({"alg": "RS256", "kid": kid}, {"iss": cid, "sub": cid, "exp": now + 60, "iat": now,
                        "aud": srv.metadata["token_endpoint"], "jti": str(uuid.uuid4())}, priv)


def _form(assertion):
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}


@pytest.fixture(scope="module")
def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(65537, 2048)


# --- the address policy ------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.251", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::",
    "fe80::1", "fe80::1%lo", "fc00::1", "fd12:3456::1", "ff02::fb", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "2001:db8::1", "not an address"])
def test_non_global_addresses_are_refused(address):
    assert not is_allowed_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_global_addresses_are_allowed(address):
    assert is_allowed_address(address)


def test_the_operator_may_allow_private_addresses():
    assert is_allowed_address("127.0.0.1", allow_private=True) and is_allowed_address("10.0.0.1", True)


def test_loopback_jwks_uri_is_refused_by_default_without_connecting(as_pki, tmp_path, rsa_key, caplog):
    caplog.set_level(logging.WARNING, logger="nmosauth_lite")
    with ASThread(server_table(as_pki), str(tmp_path)) as srv:
        jwks = srv.call(JWKSServer(as_pki.cert, as_pki.key, json.dumps(
            {"keys": [public_jwk(rsa_key, "k", "RS256")]}).encode()).start())
        try:
            client = srv.add_client(auth="private_key_jwt", jwks_uri="https://localhost:%d/jwks" % jwks.port)
            import requests

            with requests.Session() as h:
                h.trust_env, h.verify = False, srv.ca_file
                resp = token_form(h, srv, _form(_assertion(srv, client["client_id"], rsa_key)))
            assert resp.status_code == 400 and resp.json()["error"] == "invalid_client"
            assert jwks.connections == 0
        finally:
            srv.call(jwks.stop())
    assert any("address not allowed" in r.getMessage() for r in caplog.records)


def test_https_only():
    keys = ClientKeys(algorithms=ASSERTION_ALGS, allow_private=True)
    with pytest.raises(FetchError) as e:
        asyncio.run(keys.get("c", "http://127.0.0.1:1/jwks", 0))
    assert e.value.category == "not an https URL"


# --- bursts, negative cache, TLS errors ----------------------------------------------------------------
def _burst(srv, client_id, priv, n=20):
    import requests

    def one(_):
        with requests.Session() as h:
            h.trust_env, h.verify = False, srv.ca_file
            return token_form(h, srv, _form(_assertion(srv, client_id, priv))).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_twenty_forged_assertions_in_a_burst_make_at_most_one_connection(as_server, as_pki, rsa_key):
    from cryptography.hazmat.primitives.asymmetric import rsa

    jwks = as_server.call(JWKSServer(as_pki.cert, as_pki.key, json.dumps(
        {"keys": [public_jwk(rsa_key, "k", "RS256")]}).encode()).start())
    try:
        client = as_server.add_client(auth="private_key_jwt", jwks_uri="https://localhost:%d/j" % jwks.port)
        forger = rsa.generate_private_key(65537, 2048)
        statuses = _burst(as_server, client["client_id"], forger)
        assert set(statuses) <= {400, 429} and jwks.connections <= 1, (statuses, jwks.connections)
        assert jwks.connections == 1
    finally:
        as_server.call(jwks.stop())


def test_failed_fetches_are_negatively_cached_and_tls_text_is_not_logged(as_server, as_pki, rsa_key, tmp_path,
                                                                         caplog):
    from nmosauth_lite.aio.tlsutil import make_test_pki

    other = make_test_pki(str(tmp_path), dns_names=("localhost",), ip_addresses=("127.0.0.1",))  # untrusted CA
    caplog.set_level(logging.WARNING, logger="nmosauth_lite")
    jwks = as_server.call(JWKSServer(other.cert, other.key).start())
    try:
        client = as_server.add_client(auth="private_key_jwt", jwks_uri="https://localhost:%d/j" % jwks.port)
        statuses = _burst(as_server, client["client_id"], rsa_key)
        assert set(statuses) <= {400, 429} and jwks.connections == 1
    finally:
        as_server.call(jwks.stop())
    text = "\n".join(r.getMessage() for r in caplog.records if "jwks_uri" in r.getMessage())
    assert "(TLS failure)" in text
    assert "CERTIFICATE" not in text.upper() and "SSL" not in text.upper()  # a category, not the library's text


# --- caching, caps, the address actually connected to --------------------------------------------------
def test_cache_ttl_honours_headers_within_bounds():
    assert cache_ttl({"cache-control": "public, max-age=600"}, 0, 60, 3600) == 600
    assert cache_ttl({"cache-control": "max-age=5"}, 0, 60, 3600) == 60  # floor
    assert cache_ttl({"cache-control": "max-age=999999"}, 0, 60, 3600) == 3600  # ceiling
    assert cache_ttl({"cache-control": "no-store"}, 0, 60, 3600) == 60
    assert cache_ttl({"cache-control": "max-age=600", "age": "500"}, 0, 10, 3600) == 100
    assert cache_ttl({"expires": "Thu, 01 Jan 1970 00:20:00 GMT"}, 0, 60, 3600) == 1200
    assert cache_ttl({"expires": "garbage"}, 0, 60, 3600) == 60
    assert cache_ttl({}, 0, 60, 3600) == clientkeys.DEFAULT_TTL


def _run(coro_fn, *servers):
    async def main():
        started = [await s.start() for s in servers]
        try:
            return await coro_fn(*started)
        finally:
            for s in started:
                await s.stop()

    return asyncio.run(asyncio.wait_for(main(), 30))


def test_cached_per_cache_control_and_refetched_after(as_pki, rsa_key):
    body = json.dumps({"keys": [public_jwk(rsa_key, "k", "RS256")]}).encode()

    async def go(srv):
        keys = ClientKeys(algorithms=ASSERTION_ALGS, allow_private=True, min_ttl=60, ca_file=as_pki.ca_cert)
        uri = "https://localhost:%d/j" % srv.port
        try:
            assert await keys.get("c", uri, 1000)
            assert await keys.get("c", uri, 1000 + 119) and srv.connections == 1  # max-age=120
            assert await keys.refresh("c", uri, 1000 + 5) is None and srv.connections == 1  # rate limit
            assert await keys.get("c", uri, 1000 + 121) and srv.connections == 2
        finally:
            await keys.close()

    _run(go, JWKSServer(as_pki.cert, as_pki.key, body, [("cache-control", "max-age=120")]))


def test_entries_are_bounded(as_pki, rsa_key):
    body = json.dumps({"keys": [public_jwk(rsa_key, "k", "RS256")]}).encode()

    async def go(srv):
        keys = ClientKeys(algorithms=ASSERTION_ALGS, allow_private=True, ca_file=as_pki.ca_cert, max_entries=8)
        try:
            for i in range(30):
                await keys.get("client-%d" % i, "https://localhost:%d/j" % srv.port, 1000)
            assert len(keys._entries) <= 8
        finally:
            await keys.close()

    _run(go, JWKSServer(as_pki.cert, as_pki.key, body))


def test_oversized_answer_is_refused(as_pki):
    big = json.dumps({"keys": [], "pad": "x" * (clientkeys.MAX_DOCUMENT + 1)}).encode()

    async def go(srv):
        keys = ClientKeys(algorithms=ASSERTION_ALGS, allow_private=True, ca_file=as_pki.ca_cert)
        try:
            with pytest.raises(FetchError) as e:
                await keys.get("c", "https://localhost:%d/j" % srv.port, 0)
            return e.value.category
        finally:
            await keys.close()

    assert _run(go, JWKSServer(as_pki.cert, as_pki.key, big)).startswith("answer over")


def test_a_stalled_answer_is_cut_at_the_time_cap(as_pki, monkeypatch):
    monkeypatch.setattr(clientkeys, "FETCH_TIMEOUT", 0.5)

    async def go(srv):
        keys = ClientKeys(algorithms=ASSERTION_ALGS, allow_private=True, ca_file=as_pki.ca_cert)
        t0 = time.monotonic()
        try:
            with pytest.raises(FetchError) as e:
                await keys.get("c", "https://localhost:%d/j" % srv.port, 0)
            return e.value.category, time.monotonic() - t0
        finally:
            await keys.close()

    category, took = _run(go, JWKSServer(as_pki.cert, as_pki.key, stall=True))
    assert category == "timeout" and took < 3


def test_connects_to_the_address_it_checked(tmp_path, rsa_key):
    """DNS rebinding: the name is resolved once, that address is checked and connected to; the
    name (which no system resolver knows) is used only for SNI and certificate checks."""
    from nmosauth_lite.aio.tlsutil import make_test_pki

    pki = make_test_pki(str(tmp_path), dns_names=("jwks.rebind.example",), ip_addresses=())
    body = json.dumps({"keys": [public_jwk(rsa_key, "k", "RS256")]}).encode()
    asked = []

    async def resolve(host, port):
        asked.append(host)
        return ["127.0.0.1"]

    async def go(srv):
        uri = "https://jwks.rebind.example:%d/j" % srv.port
        refusing = ClientKeys(algorithms=ASSERTION_ALGS, ca_file=pki.ca_cert, resolve=resolve)
        with pytest.raises(FetchError):
            await refusing.get("c", uri, 0)
        assert srv.connections == 0
        allowing = ClientKeys(algorithms=ASSERTION_ALGS, allow_private=True, ca_file=pki.ca_cert, resolve=resolve)
        try:
            assert await allowing.get("c", uri, 0)
        finally:
            await allowing.close()
        assert srv.connections == 1 and asked == ["jwks.rebind.example"] * 2

    _run(go, JWKSServer(pki.cert, pki.key, body))
