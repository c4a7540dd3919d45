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


# --- issue 22 item 7: honest, jittered start-up retries ---------------------------------------------
class Refuser:
    """An 'AS' that accepts each connection and closes it at once, noting when each one came."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.times = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            c.close()

    def stop(self):
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


def _prime_against_refuser(tmp_path, name, seed, timeout):
    import random

    r = Refuser()
    issuer = "https://127.0.0.1:%d/x-nmos/auth/v1.0" % r.port

    async def go():
        store = KeyStore([issuer], state_dir=str(tmp_path / name), rng=random.Random(seed).random)
        missing = await store.prime(timeout=timeout)
        await store.close()
        return missing
    try:
        missing = run(go())
    finally:
        r.stop()
    assert missing == [issuer]
    return issuer, r.times


def test_start_up_retries_back_off_at_random_not_in_lock_step(tmp_path):
    """RS-03 and issue 22 item 7: two Nodes powered up together do not retry in step; pauses grow."""
    _, a = _prime_against_refuser(tmp_path, "a", 1, 4.0)
    _, b = _prime_against_refuser(tmp_path, "b", 2, 4.0)
    gaps_a = [y - x for x, y in zip(a, a[1:])]
    gaps_b = [y - x for x, y in zip(b, b[1:])]
    assert 3 <= len(a) <= 12 and 3 <= len(b) <= 12, (gaps_a, gaps_b)  # not 46 tries in 10 s
    assert any(abs(x - y) > 0.02 for x, y in zip(gaps_a, gaps_b)), (gaps_a, gaps_b)
    assert gaps_a[-1] > gaps_a[0] and gaps_b[-1] > gaps_b[0]  # exponential, not a fixed beat


def test_logged_next_try_is_the_real_one_and_lines_are_bounded(tmp_path, caplog):
    import logging
    import re

    caplog.set_level(logging.INFO, logger="nmosauth_lite.keys")
    issuer, times = _prime_against_refuser(tmp_path, "c", 3, 4.0)
    lines = [r for r in caplog.records if r.name == "nmosauth_lite.keys" and r.levelno >= logging.WARNING]
    # per cause at most one line per minute: a failed server, "no keys yet", and the final word
    assert len(lines) <= 3, [r.getMessage() for r in lines]
    said = [r for r in lines if "next try in" in r.getMessage() and "not fetched yet" in r.getMessage()]
    assert len(said) == 1
    pause = float(re.search(r"next try in ([0-9.]+) s", said[0].getMessage()).group(1))
    logged_at = said[0].created  # wall clock; the refuser notes monotonic times: compare gaps instead
    assert logged_at
    gap = times[1] - times[0]  # the try after the first failure is the one that line announced
    assert pause - 0.02 <= gap <= pause + 1.0, (pause, gap)
    final = lines[-1].getMessage()
    assert "after 4.0 s at start-up" in final and re.search(r"next try in \d+ s", final)


def test_rate_limited_log_holds_back_repeats_and_counts_them():
    import logging

    from nmosauth_lite.aio.ratelog import MAX_KEYS, RateLimitedLog

    got = []

    class Sink(logging.Handler):
        def emit(self, record):
            got.append(record.getMessage())

    logger = logging.getLogger("test.ratelog")
    logger.addHandler(Sink())
    logger.propagate = False
    now = [0.0]
    rl = RateLimitedLog(logger, interval=60, clock=lambda: now[0])
    for i in range(50):
        rl.warning("k", "failed %d", i)
        now[0] += 0.2  # 50 failures in 10 s
    assert got == ["failed 0"]
    now[0] = 61
    rl.warning("k", "failed %d", 99)
    assert got[-1] == "failed 99 (49 similar lines held back in the last 60 s)"
    rl.forget("k")
    rl.warning("k", "again")
    assert got[-1] == "again"
    for i in range(MAX_KEYS * 3):  # a flood of distinct causes: memory stays bounded
        rl.warning(("x", i), "cause %d", i)
    assert len(rl._seen) <= MAX_KEYS
