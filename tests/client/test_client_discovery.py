"""Full flows against `nmosauth-lite as serve` found by a real dnsmasq (issue 7 item 6).

The server's host name (auth1.nmos-client.test) exists only in the DNS-SD answer: the client
connects to the advertised address while TLS and Host use the name (IS-10 CL-03, DS-13).
Node: discover -> metadata -> register -> token -> use at a guarded API -> refresh -> revoke,
with client_secret_basic and with private_key_jwt. Controller: authorization code + PKCE with
the consent page driven by an HTTP client, refresh token rotation, revocation.
"""


import pytest

from client_support import DOMAIN, ServeProc, advertise, consent, make_pki, resource_server_for, run
from dns_helpers import free_port
from nmosauth_lite import oauth
from nmosauth_lite.aio import dns as adns
from nmosauth_lite.aio.client import HTTPClient
from nmosauth_lite.aio.oauth import (BearerClient, CredentialStore, JWKSServer, OAuthClient, ServerSelector,
                                     TokenManager)
from nmosauth_lite.aio.tlsutil import server_context
from nmosauth_lite.jws import parse

HOST = "auth1." + DOMAIN
AUDIENCE = ["registry." + DOMAIN]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disc")
    pki = make_pki(str(tmp / "pki"))  # the resource server's and the Node's JWKS certificate
    srv = ServeProc(tmp / "as1", HOST, lifetime=30, trust_ca=pki.ca_cert)
    dns = None
    try:
        srv.start()
        srv.add_user("alice")
        dns = advertise(tmp / "dns", [("as1", "auth1", srv.port, 10)])
        yield {"tmp": tmp, "pki": pki, "as": srv, "dns": dns}
    finally:
        if dns is not None:
            dns.stop()
        srv.stop()


def _selector(world, **kw):
    cache = adns.DiscoveryCache(domains=[DOMAIN], nameservers=[world["dns"].server], timeout=2.0)
    return ServerSelector(discovery=cache, ca_file=world["as"].ca_file, **kw)


async def _rs(world, name):
    adverts = await adns.discover(domains=[DOMAIN], nameservers=[world["dns"].server], timeout=2.0)
    assert [a.host for a in adverts] == [HOST]
    return await resource_server_for(world["pki"], str(world["tmp"] / name), world["as"].ca_file, AUDIENCE,
                                     adverts=adverts)


def test_node_discovers_registers_gets_uses_refreshes_and_revokes(world, tmp_path):
    srv = world["as"]
    iat = srv.iat()
    before = len(srv.clients())

    async def go():
        rs = await _rs(world, "rs-basic")
        sel = _selector(world)
        client = OAuthClient(sel, CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k")),
                             name=oauth.client_name("ACME", "Encoder-9", "SN-0001"), scope="registration",
                             initial_token=iat)
        manager = TokenManager(client)
        await manager.start()
        first = await manager.token()
        claims = parse(first).claims
        assert claims["iss"] == srv.issuer == "https://%s:%d/x-nmos/auth/v1.0" % (HOST, srv.port)
        assert claims["client_id"] == client._records[srv.issuer]["client_id"]
        async with HTTPClient(ca_file=world["pki"].ca_cert) as h:
            api = BearerClient(manager, h)
            r = await api.post_json(rs.url, {"type": "node"})
            assert r.status == 200 and r.json()["client_id"] == claims["client_id"]
            # the registry revokes the token early: 401 -> one refresh -> one retry (CL-41, BCP-N-01)
            rs.reject_next = 1
            r = await api.post_json(rs.url, {"type": "node"})
            assert r.status == 200
            second = await manager.token()
            assert second != first and manager.refreshes == 2
            assert [s for s, _ in rs.seen] == [200, 401, 200]
        revoked = await manager.close()  # RFC 7009 offered; this AS does not revoke access tokens
        assert revoked is False
        await sel.close()
        await rs.close()
        return client

    client = run(go())
    assert client.registrations == 1
    rows = srv.clients()
    assert len(rows) == before + 1 and rows[-1]["metadata"]["client_name"] == "ACME Encoder-9 SN-0001"
    assert rows[-1]["auth_method"] == "client_secret_basic"


def test_node_with_private_key_jwt_serves_its_jwks(world, tmp_path):
    srv, pki = world["as"], world["pki"]
    iat = srv.iat()

    async def go():
        store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k"))
        key = store.signing_key()
        jwks = JWKSServer(key, server_context(pki.cert, pki.key))
        await jwks.start("127.0.0.1", 0)
        jwks_uri = "https://127.0.0.1:%d%s" % (jwks.port, jwks.path)
        rs = await _rs(world, "rs-pkjwt")
        sel = _selector(world, auth_method="private_key_jwt", alg=key.alg)
        client = OAuthClient(sel, store, name="ACME Encoder-9 SN-0002", scope="registration",
                             auth_method="private_key_jwt", signing_key=key, jwks_uri=jwks_uri, initial_token=iat)
        async with TokenManager(client) as manager:
            async with HTTPClient(ca_file=pki.ca_cert) as h:
                r = await BearerClient(manager, h).post_json(rs.url, {})
                assert r.status == 200
            await manager.invalidate(await manager.token())  # a second assertion, fresh jti
            assert manager.refreshes == 2
        async with HTTPClient(ca_file=pki.ca_cert) as h:
            served = await h.get_json(jwks_uri)
        assert [k["kid"] for k in served["keys"]] == [key.kid] and "d" not in served["keys"][0]
        await jwks.close()
        await sel.close()
        await rs.close()
        return client._records[srv.issuer]["client_id"]

    cid = run(go())
    (row,) = [c for c in srv.clients() if c["client_id"] == cid]
    assert row["auth_method"] == "private_key_jwt" and row["metadata"]["jwks_uri"].startswith("https://127.0.0.1:")


def test_controller_authorization_code_pkce_refresh_and_revoke(world, tmp_path):
    srv = world["as"]
    iat = srv.iat()
    port = free_port()

    async def go():
        sel = _selector(world, role="controller", auth_method="none")
        client = OAuthClient(sel, CredentialStore(str(tmp_path / "ctl"), str(tmp_path / "keys" / "k")),
                             name="ACME Controller SN-7", scope="query connection", grant="authorization_code",
                             auth_method="none", initial_token=iat,
                             redirect_base="http://127.0.0.1:%d/callback" % port)
        seen = []

        async def user(url):
            assert url.startswith("https://%s:%d/x-nmos/auth/v1.0/authorize?" % (HOST, srv.port))
            q = dict(x.split("=", 1) for x in url.split("?", 1)[1].split("&"))
            assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43  # CL-23
            seen.append(await consent(url, "alice", ca_file=srv.ca_file, resolve={HOST: "127.0.0.1"}))

        tokens = await client.authorize(user, timeout=60)
        assert seen[0][0] == 200 and "code=" in seen[0][1] and "state=" in seen[0][1]
        assert tokens["refresh_token"] and tokens["scope"] == "query connection"
        assert parse(tokens["access_token"]).claims["sub"] == "alice"
        manager = TokenManager(client)
        await manager.start(tokens)
        old_refresh = tokens["refresh_token"]
        await manager.invalidate(await manager.token())  # refresh_token grant, rotated (AS-45, CL-33)
        new = manager.tokens
        assert new["refresh_token"] != old_refresh and new["access_token"] != tokens["access_token"]
        rs = await _rs(world, "rs-ctl")
        async with HTTPClient(ca_file=world["pki"].ca_cert) as h:
            r = await BearerClient(manager, h).post_json(rs.url, {})
            assert r.status == 403  # registration is not in this token: reported, not retried (BCP-N-02)
        assert [s for s, _ in rs.seen] == [403]
        assert await manager.close() is True  # the refresh token is revoked (RFC 7009, CL-42)
        # the revoked refresh token no longer works
        meta = await sel.metadata((await sel.candidates())[0])
        with pytest.raises(oauth.OAuthError) as e:
            await client.token_request((await sel.candidates())[0], meta,
                                       oauth.refresh_form(new["refresh_token"], "query connection",
                                                          client._records[srv.issuer]["client_id"]))
        assert e.value.error == "invalid_grant"
        await sel.close()
        await rs.close()

    run(go())
    rows = [c for c in srv.clients() if c["metadata"]["client_name"] == "ACME Controller SN-7"]
    assert len(rows) == 1 and rows[0]["auth_method"] == "none"
    assert rows[0]["redirect_uris"][0].startswith("http://127.0.0.1:%d/callback/" % port)
