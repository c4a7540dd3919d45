"""aio/keystore.py + jwks_cache.py: keys that survive reboots and outages (issue 4; IS-10 RS-01..RS-11)."""

import asyncio
import json
import os
import random

import pytest

from minting import Minter, public_jwk
from standin_as import StandinAS
from nmosauth_lite import TokenValidator
from nmosauth_lite.aio.keystore import KeyStore, Server
from nmosauth_lite.jwks_cache import MIN_UNKNOWN_KID_INTERVAL, REFRESH_INTERVAL, REFRESH_JITTER

AUD = "node1.example.com"
PATH = "/x-nmos/node/v1.3/self"


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture
def standin(tmp_path, m):
    s = StandinAS(str(tmp_path), path="/x-nmos/auth/v1.0")
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    yield s
    s.stop()


def token(m, issuer, **kw):
    claims = m.claims(iss=issuer, aud=[AUD], iat=m.NOW - 10, exp=m.NOW + 86400)
    return m.token("RS512", claims=claims, **kw)


def store_for(standin, state_dir, **kw):
    kw.setdefault("clock", Clock(Minter.NOW))
    return KeyStore([standin.issuer], state_dir=str(state_dir), ca_file=standin.pki.ca_cert, **kw)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_first_fetch_uses_rfc8414_metadata_and_persists(standin, tmp_path, m):  # RS-06
    async def go():
        store = store_for(standin, tmp_path)
        v = TokenValidator(keys=store, audience=[AUD])
        errs = await store.refresh()
        assert errs == {standin.issuer: None}
        assert standin.hits["metadata"] == 1 and standin.hits["jwks"] == 1
        assert v.check(token(m, standin.issuer), "GET", PATH, m.NOW).status == 200
        await store.close()

    run(go())
    files = os.listdir(tmp_path / "jwks")
    assert len(files) == 1
    assert oct(os.stat(tmp_path / "jwks").st_mode & 0o777) == "0o700"
    assert oct(os.stat(tmp_path / "jwks" / files[0]).st_mode & 0o777) == "0o600"


def test_boot_with_server_down_uses_persisted_keys(standin, tmp_path, m):  # RS-04; issue 4 done-when
    run(_refresh_once(standin, tmp_path))
    standin.stop()

    async def go():
        store = store_for(standin, tmp_path)  # a reboot: nothing fetched yet, server gone
        v = TokenValidator(keys=store, audience=[AUD])
        assert v.check(token(m, standin.issuer), "GET", PATH, m.NOW).status == 200
        # a due refresh fails, the keys stay
        store._issuers[standin.issuer].next_refresh = 0
        errs = await store.refresh()
        assert errs[standin.issuer]
        assert v.check(token(m, standin.issuer, kid="rsa-1"), "GET", PATH, m.NOW).status == 200
        await store.close()

    run(go())


async def _refresh_once(standin, tmp_path):
    store = store_for(standin, tmp_path)
    await store.refresh()
    await store.close()
    return store


@pytest.mark.parametrize("mode", ["500", "garbage", "oversize", "wrong-issuer", "no-jwks-uri"])
def test_bad_answers_keep_last_good_keys_and_back_off(standin, tmp_path, m, mode):  # RS-03, RS-04
    async def go():
        clock = Clock(m.NOW)
        store = store_for(standin, tmp_path, clock=clock, rng=lambda: 0.5)
        await store.refresh()
        v = TokenValidator(keys=store, audience=[AUD])
        standin.mode = mode
        state = store._issuers[standin.issuer]
        state.failures = 1 if mode in ("wrong-issuer", "no-jwks-uri") else 0  # make it re-read metadata
        clock.t += REFRESH_INTERVAL + REFRESH_JITTER
        errs = await store.refresh()
        assert errs[standin.issuer], mode
        assert state.next_refresh > clock.t  # backed off, not hammering
        assert v.check(token(m, standin.issuer), "GET", PATH, clock.t).status == 200
        first_delay = state.next_refresh - clock.t
        clock.t = state.next_refresh
        await store.refresh()
        assert state.next_refresh - clock.t > first_delay  # exponential
        await store.close()

    run(go())


def test_slow_server_is_cut_off(standin, tmp_path, m):
    async def go():
        store = store_for(standin, tmp_path, fetch_timeout=0.5)
        standin.mode = "slow"
        standin.slow_seconds = 2.0
        errs = await store.refresh()
        assert errs[standin.issuer]
        assert store.keys_for(standin.issuer) == []
        await store.close()

    run(go())


def test_tls_name_mismatch_is_refused(tmp_path, m):  # RS-42, CL-03
    other = StandinAS(str(tmp_path), dns_names=("other.example",), ip_addresses=())
    other.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    try:
        issuer = "https://localhost:%d" % other.port  # the certificate names other.example only
        other.issuer = issuer

        async def go():
            store = KeyStore([issuer], state_dir=str(tmp_path), ca_file=other.pki.ca_cert, clock=Clock(m.NOW))
            errs = await store.refresh()
            assert errs[issuer] and other.hits["jwks"] == 0
            await store.close()

        run(go())
    finally:
        other.stop()


def test_rotation_new_kid_gets_503_then_accepted(standin, tmp_path, m):  # RS-06, RS-07
    async def go():
        store = store_for(standin, tmp_path)
        await store.refresh()
        v = TokenValidator(keys=store, audience=[AUD])
        standin.jwks = {"keys": [public_jwk(m.rsa, "rsa-1"), public_jwk(m.rsa2, "rsa-2")]}
        tok = token(m, standin.issuer, key=m.rsa2, kid="rsa-2")
        d = v.check(tok, "GET", PATH, m.NOW)
        assert (d.status, d.retry_after) == (503, 2)
        assert await store.wait(standin.issuer, 10)
        assert v.check(tok, "GET", PATH, m.NOW).status == 200
        await store.close()

    run(go())


def test_withdrawn_key_rejects_its_cached_tokens_after_refresh(standin, tmp_path, m):  # AS-15
    async def go():
        store = store_for(standin, tmp_path)
        await store.refresh()
        v = TokenValidator(keys=store, audience=[AUD])
        tok = token(m, standin.issuer)
        assert v.check(tok, "GET", PATH, m.NOW).status == 200
        standin.jwks = {"keys": [public_jwk(m.rsa2, "rsa-2")]}
        await store.refresh(force=True)
        d = v.check(tok, "GET", PATH, m.NOW)
        assert (d.status, d.error) == (401, "invalid_token")
        await store.close()

    run(go())


def test_thousand_concurrent_unknown_kid_requests_one_fetch(standin, tmp_path, m):  # RS-09, RS-10
    async def go():
        store = store_for(standin, tmp_path)
        await store.refresh()
        before = standin.hits["jwks"]
        v = TokenValidator(keys=store, audience=[AUD])
        standin.jwks = {"keys": [public_jwk(m.rsa, "rsa-1"), public_jwk(m.rsa2, "rsa-2")]}
        tok = token(m, standin.issuer, key=m.rsa2, kid="rsa-2")

        async def request():
            return v.check(tok, "GET", PATH, m.NOW).status

        statuses = await asyncio.gather(*(request() for _ in range(1000)))
        assert set(statuses) == {503}
        await store.wait(standin.issuer, 10)
        assert standin.hits["jwks"] - before == 1
        assert v.check(tok, "GET", PATH, m.NOW).status == 200
        await store.close()

    run(go())


def test_forged_random_kids_are_rate_limited(standin, tmp_path, m):  # RS-10
    async def go():
        clock = Clock(m.NOW)
        store = store_for(standin, tmp_path, clock=clock)
        await store.refresh()
        before = standin.hits["jwks"] + standin.hits["metadata"]
        v = TokenValidator(keys=store, audience=[AUD])
        rng = random.Random(7)
        seconds = 120
        for step in range(seconds * 10):  # 100 forged tokens per simulated second... 10 per 0.1 s tick
            clock.t = m.NOW + step / 10
            for _ in range(10):
                kid = "forged-%08x" % rng.getrandbits(32)
                d = v.check(token(m, standin.issuer, key=m.attacker, kid=kid), "GET", PATH, clock.t)
                assert d.status in (401, 503)
            await asyncio.sleep(0)
            await store.wait(standin.issuer, 5)
        fetches = standin.hits["jwks"] + standin.hits["metadata"] - before
        assert fetches <= seconds // MIN_UNKNOWN_KID_INTERVAL + 1
        await store.close()

    run(go())


def test_untrusted_issuer_never_fetches(standin, tmp_path, m):  # RS-10, §12 A25
    async def go():
        store = store_for(standin, tmp_path)
        v = TokenValidator(keys=store, audience=[AUD])
        d = v.check(token(m, "https://attacker.example.com"), "GET", PATH, m.NOW)
        assert (d.status, d.error) == (401, "invalid_token")
        await asyncio.sleep(0.05)
        assert standin.hits == {"metadata": 0, "jwks": 0, "304": 0}
        await store.close()

    run(go())


def test_corrupt_or_foreign_cache_file_is_ignored_and_rebuilt(standin, tmp_path, m):
    run(_refresh_once(standin, tmp_path))
    (name,) = os.listdir(tmp_path / "jwks")
    path = tmp_path / "jwks" / name
    good = path.read_bytes()
    for bad in (b"", good[: len(good) // 2], b"\x00\xff" * 50, json.dumps({"format": "x"}).encode(),
                json.dumps(dict(json.loads(good), issuer="https://other")).encode()):
        path.write_bytes(bad)

        async def go():
            store = store_for(standin, tmp_path)
            assert store.keys_for(standin.issuer) == []
            await store.refresh()
            assert len(store.keys_for(standin.issuer)) == 1
            await store.close()

        run(go())
        assert json.loads(path.read_bytes())["issuer"] == standin.issuer


def test_unusable_state_directory_degrades_to_memory(standin, tmp_path, m):
    (tmp_path / "jwks").write_text("a file where the cache directory should be")

    async def go():
        store = store_for(standin, tmp_path)
        assert store.files.dir is None
        await store.refresh()
        v = TokenValidator(keys=store, audience=[AUD])
        assert v.check(token(m, standin.issuer), "GET", PATH, m.NOW).status == 200
        await store.close()

    run(go())


def test_conditional_get_and_jittered_schedule(standin, tmp_path, m):  # RS-02
    async def go():
        clock = Clock(m.NOW)
        store = store_for(standin, tmp_path, clock=clock)
        await store.refresh()
        state = store._issuers[standin.issuer]
        assert REFRESH_INTERVAL <= state.next_refresh - clock.t <= REFRESH_INTERVAL + REFRESH_JITTER
        clock.t = state.next_refresh
        await store.refresh()
        assert standin.hits["304"] == 1 and len(state.keys) == 1
        await store.close()

    run(go())


def test_restart_keeps_keys_and_schedule(standin, tmp_path, m):
    store = run(_refresh_once(standin, tmp_path))
    nxt = store._issuers[standin.issuer].next_refresh

    async def go():
        again = store_for(standin, tmp_path)
        assert len(again.keys_for(standin.issuer)) == 1
        assert again._issuers[standin.issuer].next_refresh == nxt
        await again.refresh()  # not due: no network
        assert standin.hits["jwks"] == 1
        await again.close()

    run(go())


def test_failover_to_the_next_server(standin, tmp_path, m):  # RS-03
    async def go():
        dead = Server("https://localhost:9/.well-known/oauth-authorization-server/x-nmos/auth/v1.0")
        live = Server("https://localhost:%d/.well-known/oauth-authorization-server/x-nmos/auth/v1.0" % standin.port)
        store = KeyStore([], state_dir=str(tmp_path), ca_file=standin.pki.ca_cert, clock=Clock(m.NOW))
        store.add_issuer(standin.issuer, servers=[dead, live])
        errs = await store.refresh()
        assert errs[standin.issuer] is None and len(store.keys_for(standin.issuer)) == 1
        await store.close()

    run(go())
