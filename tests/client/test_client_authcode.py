"""Controller side: authorization code + PKCE S256 on a loopback listener (IS-10 CL-20..CL-26, CL-33,
CL-34; RFC 9207 `iss` and `state` checks), against our authorization server in-process."""

import asyncio
import urllib.parse

import pytest

from client_support import ASThread, PASSWORD, consent, issue_iat, make_pki, run, server_table
from dns_helpers import free_port
from nmosauth_lite import oauth
from nmosauth_lite.aio.client import HTTPClient
from nmosauth_lite.aio.oauth import (AuthorizationRequired, CredentialStore, OAuthClient, ServerSelector,
                                     TokenManager)
from nmosauth_lite.jws import parse

SCOPE = "query connection"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("authcode")
    pki = make_pki(str(d / "pki"))
    s = ASThread(server_table(pki, tokens={"lifetime": 60, "audience": ["*.example.com"]}), str(d / "as")).start()
    s.add_user("alice", PASSWORD)
    yield s
    s.stop()


def _controller(tmp_path, srv):
    sel = ServerSelector(issuers=[srv.issuer], ca_file=srv.ca_file, role="controller", auth_method="none")
    client = OAuthClient(sel, CredentialStore(str(tmp_path / "ctl"), str(tmp_path / "keys" / "k")),
                         name="ACME Controller SN-1", scope=SCOPE, grant="authorization_code", auth_method="none",
                         initial_token=issue_iat(srv), redirect_base="http://127.0.0.1:%d/cb" % free_port())
    return sel, client


def _user(srv, log, approve=True):
    async def user(url):
        log.append(await consent(url, "alice", ca_file=srv.ca_file, approve=approve))
    return user


def _redirect_of(url):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return q["redirect_uri"][0], q["state"][0]


def test_forged_redirect_with_wrong_state_is_ignored_then_the_real_one_completes(tmp_path, srv):
    async def go():
        sel, client = _controller(tmp_path, srv)
        log = []

        async def user(url):
            redirect, state = _redirect_of(url)
            async with HTTPClient(insecure_http=True) as plain:  # an attacker's CSRF attempt (RFC 6749 §10.12)
                bad = await plain.get(redirect + "?code=attacker&state=" + state[:-2] + "xx")
                assert bad.status == 400
                none = await plain.get(redirect + "?code=attacker")
                assert none.status == 400
            await _user(srv, log)(url)

        tokens = await client.authorize(user, timeout=30)
        await sel.close()
        return tokens, log

    tokens, log = run(go())
    assert log[0][0] == 200
    assert parse(tokens["access_token"]).claims["sub"] == "alice" and tokens["refresh_token"]


def test_response_naming_another_issuer_is_refused(tmp_path, srv):
    async def go():
        sel, client = _controller(tmp_path, srv)

        async def mixup(url):
            redirect, state = _redirect_of(url)
            async with HTTPClient(insecure_http=True) as plain:
                r = await plain.get(redirect + "?" + oauth.build_form(
                    [("code", "x"), ("state", state), ("iss", "https://evil.example.com")]))
                assert r.status == 200  # the listener took it; the client then refuses it (RFC 9207)

        with pytest.raises(oauth.OAuthError) as e:
            await client.authorize(mixup, timeout=30)
        await sel.close()
        return e.value

    assert "another issuer" in run(go()).message


def test_user_denies_consent(tmp_path, srv):
    async def go():
        sel, client = _controller(tmp_path, srv)
        with pytest.raises(oauth.OAuthError) as e:
            await client.authorize(_user(srv, [], approve=False), timeout=30)
        await sel.close()
        return e.value

    assert run(go()).error == "access_denied"


def test_rotation_discards_the_old_refresh_token_and_a_refused_one_asks_the_user_again(tmp_path, srv):
    async def go():
        sel, client = _controller(tmp_path, srv)
        log = []
        authorize = lambda: client.authorize(_user(srv, log), timeout=30)  # noqa: E731
        m = TokenManager(client, authorize=authorize)
        await m.start()
        assert len(log) == 1
        first = m.tokens
        await m.invalidate(await m.token())
        second = m.tokens
        assert second["refresh_token"] != first["refresh_token"]  # rotated; the old one is gone (CL-33)
        assert first["refresh_token"] not in repr(m.__dict__)
        # the server revokes the family (e.g. an operator, or reuse detection): refresh fails,
        # the manager asks for a new authorization (CL-34)
        assert await client.revoke(second) is True
        await m.invalidate(await m.token())
        assert len(log) == 2 and m.tokens["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
        # without an authorize callback, the caller is told
        with pytest.raises(AuthorizationRequired):
            await client.refresh(second)
        await m.close()
        await sel.close()
        return client

    client = run(go())
    assert client.registrations == 1
    rows = [c for c in srv.store().list_clients() if c["metadata"]["client_name"] == "ACME Controller SN-1"]
    assert rows and all(r["auth_method"] == "none" for r in rows)


def test_each_issuer_gets_its_own_redirect_uri(tmp_path, srv):
    sel, client = _controller(tmp_path, srv)
    a = client.redirect_uri("https://a.example.com/x-nmos/auth/v1.0")
    b = client.redirect_uri("https://b.example.com/x-nmos/auth/v1.0")
    assert a != b and a.startswith(client.redirect_base + "/") and b.startswith(client.redirect_base + "/")
    asyncio.run(sel.close())
