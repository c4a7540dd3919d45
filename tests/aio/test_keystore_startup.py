"""A cold resource server and an authorization server starting at the same moment (issue 12 §1):
`KeyStore.prime()` fetches every trusted issuer's keys at start-up, bounded in time, retrying an
issuer that does not answer yet; a request that meets a fetch in flight waits for it (bounded,
`wait_change`) before its 503 + Retry-After stands (IS-10 RS-07 stays the fallback).
The AS "starting later" is a relay that begins listening on the issuer's port after a delay.
"""

import asyncio
import socket
import threading
import time

import pytest

from minting import Minter, public_jwk
from standin_as import StandinAS
from nmosauth_lite import TokenValidator
from nmosauth_lite.aio.keystore import DEFAULT_KEY_WAIT, KeyStore

AUD = "node1.example.com"
PATH = "/x-nmos/node/v1.3/self"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class LateRelay:
    """Listens on `port` only after `delay` s, then pipes each connection to 127.0.0.1:`target`:
    until then connections are refused, as to an AS that is still starting."""

    def __init__(self, port, target, delay):
        self.port, self.target, self.delay = port, target, delay
        self.stopped = threading.Event()
        self.listening = threading.Event()
        self.sock = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        if self.stopped.wait(self.delay):
            return
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.listening.set()
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped.set()
        if self.sock is not None:
            self.sock.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture
def late_as(tmp_path, m):
    """A stand-in AS whose issuer URL points at a port that starts listening later."""
    s = StandinAS(str(tmp_path), path="/x-nmos/auth/v1.0")
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    port = free_port()
    s.base = "https://localhost:%d" % port
    s.issuer = s.base + "/x-nmos/auth/v1.0"
    s.late_port = port
    relays = []
    s.start_late = lambda delay: relays.append(LateRelay(port, s.port, delay)) or relays[-1]
    yield s
    for r in relays:
        r.stop()
    s.stop()


def token(m, issuer):
    now = int(time.time())
    return m.token("RS512", claims=m.claims(iss=issuer, aud=[AUD], iat=now - 10, exp=now + 600))


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_prime_waits_for_an_as_starting_at_the_same_moment(late_as, tmp_path):
    async def go():
        store = KeyStore([late_as.issuer], state_dir=str(tmp_path / "s"), ca_file=late_as.pki.ca_cert)
        late_as.start_late(0.6)  # refused until then
        t0 = time.monotonic()
        missing = await store.prime(timeout=10)
        took = time.monotonic() - t0
        kids = [k.kid for k in store.keys_for(late_as.issuer)]
        await store.close()
        return missing, took, kids
    missing, took, kids = run(go())
    assert missing == [] and kids == ["rsa-1"]
    assert 0.5 < took < 5, took  # retried until the AS answered, not the full timeout


def test_prime_is_bounded_when_the_as_is_down(late_as, tmp_path, m):
    async def go():
        store = KeyStore([late_as.issuer], state_dir=str(tmp_path / "s"), ca_file=late_as.pki.ca_cert)
        v = TokenValidator(keys=store, audience=[AUD])
        t = token(m, late_as.issuer)
        prime = asyncio.ensure_future(store.prime(timeout=0.8))
        await asyncio.sleep(0.3)
        during = v.check(t, "GET", PATH)  # priming: 503 key being fetched, not a 401
        t0 = time.monotonic()
        missing = await prime
        took = time.monotonic() - t0
        after = v.check(t, "GET", PATH)  # RS-07: still 503 + Retry-After (a fetch is started)
        await store.close()
        return during, missing, took, after
    during, missing, took, after = run(go())
    assert (during.status, during.retry_after) == (503, 2)
    assert missing == [late_as.issuer] and took < 2.5
    assert (after.status, after.retry_after) == (503, 2)


def test_a_request_waits_for_the_fetch_in_flight_then_is_decided(late_as, tmp_path, m):  # RS-07, issue 12 §1
    assert DEFAULT_KEY_WAIT == 2.0

    async def go():
        store = KeyStore([late_as.issuer], state_dir=str(tmp_path / "s"), ca_file=late_as.pki.ca_cert)
        v = TokenValidator(keys=store, audience=[AUD])
        t = token(m, late_as.issuer)
        assert not store.pending and await store.wait_change(1) is False  # nothing to wait for: at once
        late_as.start_late(0.4)
        prime = asyncio.ensure_future(store.prime(timeout=10))
        await asyncio.sleep(0.05)
        first = v.check(t, "GET", PATH)
        t0 = time.monotonic()
        while v.check(t, "GET", PATH).status == 503 and await store.wait_change(DEFAULT_KEY_WAIT):
            pass
        waited = time.monotonic() - t0
        final = v.check(t, "GET", PATH)
        await prime
        await store.close()
        return first, final, waited
    first, final, waited = run(go())
    assert first.status == 503
    assert final.status == 200 and waited < DEFAULT_KEY_WAIT + 1.5


def test_wait_change_is_bounded(late_as, tmp_path):
    async def go():
        store = KeyStore([late_as.issuer], state_dir=str(tmp_path / "s"), ca_file=late_as.pki.ca_cert)
        late_as.mode = "slow"  # never mind: nothing listens yet, the priming keeps retrying
        prime = asyncio.ensure_future(store.prime(timeout=5))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        while await store.wait_change(0.3 - (time.monotonic() - t0)):
            pass
        took = time.monotonic() - t0
        prime.cancel()
        await asyncio.gather(prime, return_exceptions=True)
        await store.close()
        return took
    assert run(go()) < 1.0
