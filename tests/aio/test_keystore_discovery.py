"""Discovered servers become trusted issuers (issue 5 item 5, issue 4 item 1; IS-10 RS-43, DS-05, DS-14).

A real dnsmasq advertises `_nmos-auth._tcp` for a host name the machine cannot
resolve; the stand-in authorization server's certificate names that host. The
key store must connect to the advertised address while TLS and Host use the name.
"""

import asyncio

import pytest

from dns_helpers import Dnsmasq
from minting import Minter, public_jwk
from standin_as import StandinAS
from nmosauth_lite import TokenValidator
from nmosauth_lite.aio import dns as adns
from nmosauth_lite.aio.keystore import KeyStore

HOST = "auth1.nmos-disc.test"


@pytest.fixture
def setup(tmp_path):
    m = Minter()
    s = StandinAS(str(tmp_path), dns_names=(HOST,), ip_addresses=(), path="/x-nmos/auth/v1.0")
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    name = "as1._nmos-auth._tcp.nmos-disc.test"
    conf = [
        'ptr-record=_nmos-auth._tcp.nmos-disc.test,"%s"' % name,
        'srv-host="%s",%s,%d,0,0' % (name, HOST, s.port),
        'txt-record="%s","api_proto=https","api_ver=v1.0","pri=10","api_selector=x-nmos/auth/v1.0"' % name,
        "host-record=%s,127.0.0.1" % HOST,
    ]
    (tmp_path / "dns").mkdir()
    d = Dnsmasq(tmp_path / "dns", conf, local_domains=["nmos-disc.test"])
    d.start()
    yield m, s, d
    d.stop()
    s.stop()


def test_discovered_issuer_is_trusted_and_fetched_by_address(setup, tmp_path):
    m, s, d = setup

    async def go():
        adverts = await adns.discover(domains=["nmos-disc.test"], nameservers=[d.server], timeout=2.0)
        assert [a.host for a in adverts] == [HOST]
        store = KeyStore([], state_dir=str(tmp_path / "state"), ca_file=s.pki.ca_cert)
        iss = await store.add_discovered(adverts[0])
        assert iss == s.issuer and store.issuers == [s.issuer]
        await store.refresh()
        v = TokenValidator(keys=store, audience=["node1.example.com"])
        tok = m.token("RS512", claims=m.claims(iss=s.issuer, aud=["node1.example.com"]))
        assert v.check(tok, "GET", "/x-nmos/node/v1.3/self", m.NOW).status == 200
        other = m.token("RS512", claims=m.claims(iss="https://%s:1/x" % HOST, aud=["node1.example.com"]))
        assert v.check(other, "GET", "/x-nmos/node/v1.3/self", m.NOW).status == 401
        await store.close()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_follow_discovery_with_cache(setup, tmp_path):
    m, s, d = setup

    async def go():
        async def disc(**_):
            return await adns.discover(domains=["nmos-disc.test"], nameservers=[d.server], timeout=2.0)

        cache = adns.DiscoveryCache(disc)
        store = KeyStore([], state_dir=str(tmp_path / "state"), ca_file=s.pki.ca_cert)
        task = asyncio.ensure_future(store.follow_discovery(cache, interval=0.1))
        for _ in range(100):
            if store.issuers:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        assert store.issuers == [s.issuer]
        await store.close()

    asyncio.run(asyncio.wait_for(go(), 60))
