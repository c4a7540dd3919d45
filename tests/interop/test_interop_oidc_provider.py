"""Our client and resource server against panva's oidc-provider (OpenID Certified; npm, pinned in
tools/interop), configured as an IS-10 authorization server: JWT access tokens (RFC 9068 via RFC 8707
resource indicators) carrying x-nmos-* claims, RS512 by default and ES256 / ES512 / RS256, RFC 7591
registration with an initial access token, client_credentials (client_secret_basic and
private_key_jwt), authorization code + PKCE with a scripted login, refresh, revocation; and a
deployment that answers only OpenID Connect Discovery (no RFC 8414 path).
Differences from IS-10 that we accept are asserted here and listed in docs/client.md "Interoperability"."""

import asyncio
import base64
import json
import logging
import subprocess
import sys
import time

import pytest
import requests

from client_support import ROOT, env, resource_server_for, run
from dns_helpers import free_port
from interop_support import AUDIENCE, OidcProvider, Protect, Upstream, dev_login, provider_version
from nmosauth_lite.aio.client import HTTPClient
from nmosauth_lite.aio.oauth import (AuthorizationRequired, BearerClient, CredentialStore, JWKSServer, OAuthClient,
                                     ServerSelector, TokenManager)
from nmosauth_lite.aio.tlsutil import server_context
from nmosauth_lite.jws import parse

NAME = "ACME Encoder-9 SN-OIDC"
RS_AUD = ["node1.example.com"]


@pytest.fixture(scope="module")
def op(tmp_path_factory, interop_pki):
    """Strict: response_types_supported ["code"] only (what the issue's AS advertised)."""
    s = OidcProvider(tmp_path_factory.mktemp("op-rs512"), interop_pki).start()
    yield s
    s.stop()


def _node(tmp_path, s, **kw):
    sel = ServerSelector(issuers=[s.issuer], ca_file=s.pki.ca_cert, auth_method=kw.get("auth_method",
                                                                                       "client_secret_basic"))
    store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k"))
    return sel, store, OAuthClient(sel, store, name=NAME, scope="registration",
                                   initial_token=s.initial_access_token, **kw)


def _tamper(token):
    h, p, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["x-nmos-registration"] = {"read": ["*"], "write": ["*"]}
    claims["exp"] += 3600  # a longer life, same signature
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ".".join((h, p2, sig))


def _readback(s, rec):
    r = requests.get(rec["registration_client_uri"], verify=s.pki.ca_cert, timeout=10,
                     headers={"authorization": "Bearer " + rec["registration_access_token"]})
    assert r.status_code == 200, r.text
    return r.json()


def test_version_is_the_pinned_one(op):
    with open(ROOT + "/tools/interop/package.json") as f:
        assert provider_version() == json.load(f)["dependencies"]["oidc-provider"]


def test_node_registers_with_basic_and_its_tokens_pass_our_resource_server(tmp_path, op):
    # RFC 7591 §2 / issue 12: the old client sent ["none"] and this AS answered 400 invalid_redirect_uri.
    async def go():
        rs = await resource_server_for(op.pki, str(tmp_path / "rs"), op.pki.ca_cert, RS_AUD, issuers=[op.issuer])
        sel, store, client = _node(tmp_path, op)
        try:
            async with TokenManager(client) as m:
                tok = await m.token()
                async with HTTPClient(ca_file=op.pki.ca_cert) as h:
                    ok = await BearerClient(m, h).post_json(rs.url, {})
                    forged = await h.request("POST", rs.url, json={}, headers=[
                        ("authorization", "Bearer " + _tamper(tok))])
                    none = await h.request("POST", rs.url, json={})
            rec = store.load(op.issuer)
            return tok, ok, forged, none, rec, rs.seen
        finally:
            await sel.close()
            await rs.close()

    tok, ok, forged, none, rec, seen = run(go())
    t = parse(tok)
    assert t.header["alg"] == "RS512" and t.header["typ"] == "at+jwt"  # differs: typ at+jwt (RS-18 accepts)
    c = t.claims
    assert c["iss"] == op.issuer and "/" not in op.issuer[len("https://"):]  # differs: issuer without a path
    assert c["aud"] == AUDIENCE  # differs: aud is one string, not an array (RS-16 accepts)
    assert c["client_id"] == rec["client_id"] == c["sub"] and c["scope"] == "registration"
    assert c["x-nmos-registration"] == {"read": ["*"], "write": ["*"]} and c["exp"] - c["iat"] == 60
    assert ok.status == 200 and ok.json()["client_id"] == c["client_id"]
    assert forged.status == 401 and none.status == 401  # IS-10 RS-22: a bad signature is refused
    assert _readback(op, rec)["response_types"] == []  # what we registered, from the metadata


def test_a_refused_none_is_retried_with_the_empty_list_at_the_real_server(tmp_path, interop_pki, caplog):
    # The provider's default response types include "none", yet "none" needs redirect_uris there.
    s = OidcProvider(tmp_path / "op-default", interop_pki,
                     response_types=("code id_token", "code", "id_token", "none")).start()
    try:
        async def go():
            sel, store, client = _node(tmp_path, s)
            try:
                with caplog.at_level(logging.INFO, logger="nmosauth_lite.oauth.client"):
                    tokens = await client.client_credentials(timeout=30)
                return tokens, store.load(s.issuer)
            finally:
                await sel.close()

        tokens, rec = run(go())
    finally:
        s.stop()
    assert parse(tokens["access_token"]).claims["client_id"] == rec["client_id"]
    assert any('refused response_types ["none"] (invalid_redirect_uri)' in r.getMessage() for r in caplog.records)


def test_private_key_jwt_node(tmp_path, op):
    async def go():
        store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k"))
        key = store.signing_key()
        jwks = JWKSServer(key, server_context(op.pki.cert, op.pki.key))
        await jwks.start("127.0.0.1", 0)
        sel, store, client = _node(tmp_path, op, auth_method="private_key_jwt", signing_key=key,
                                   jwks_uri="https://localhost:%d%s" % (jwks.port, jwks.path))
        try:
            a = await client.client_credentials(timeout=30)
            b = await client.client_credentials(timeout=30)  # a second assertion: fresh jti (RFC 7523 §3)
            return a, b, store.load(op.issuer), client.registrations
        finally:
            await sel.close()
            await jwks.close()

    a, b, rec, registrations = run(go())
    assert registrations == 1 and rec["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in rec
    assert parse(a["access_token"]).claims["client_id"] == parse(b["access_token"]).claims["client_id"]
    assert _readback(op, rec)["jwks_uri"].startswith("https://localhost:")


@pytest.mark.parametrize("alg", ["ES256", "ES512", "RS256"])
def test_other_signing_algorithms_pass_our_resource_server(tmp_path, interop_pki, alg):
    s = OidcProvider(tmp_path / ("op-" + alg), interop_pki, alg=alg).start()
    try:
        async def go():
            rs = await resource_server_for(s.pki, str(tmp_path / "rs"), s.pki.ca_cert, RS_AUD, issuers=[s.issuer])
            sel, store, client = _node(tmp_path, s)
            try:
                tokens = await client.client_credentials(timeout=30)
                async with HTTPClient(ca_file=s.pki.ca_cert) as h:
                    good = await h.request("POST", rs.url, json={}, headers=[
                        ("authorization", "Bearer " + tokens["access_token"])])
                    bad = await h.request("POST", rs.url, json={}, headers=[
                        ("authorization", "Bearer " + _tamper(tokens["access_token"]))])
                return tokens, good.status, bad.status
            finally:
                await sel.close()
                await rs.close()

        tokens, good, bad = run(go())
    finally:
        s.stop()
    assert parse(tokens["access_token"]).header["alg"] == alg
    assert good == 200 and bad == 401


def test_controller_pkce_flow_refresh_and_revocation(tmp_path, op):
    scope = "query connection"

    async def go():
        sel = ServerSelector(issuers=[op.issuer], ca_file=op.pki.ca_cert, role="controller", auth_method="none")
        client = OAuthClient(sel, CredentialStore(str(tmp_path / "ctl"), str(tmp_path / "keys" / "k")),
                             name="ACME Controller SN-OIDC", scope=scope, grant="authorization_code",
                             auth_method="none", initial_token=op.initial_access_token,
                             redirect_base="http://127.0.0.1:%d/cb" % free_port())
        urls = []

        async def user(url):
            urls.append(url)
            await asyncio.to_thread(dev_login, url, "operator", op.pki.ca_cert)

        try:
            first = await client.authorize(user, timeout=60)
            second = await client.refresh(first)
            revoked = await client.revoke(second)  # RFC 7009 on the refresh token
            try:
                await client.refresh(second)
                after = None
            except AuthorizationRequired as e:
                after = e
            return urls, first, second, revoked, after
        finally:
            await sel.close()

    urls, first, second, revoked, after = run(go())
    assert "code_challenge_method=S256" in urls[0]  # IS-10 CL-22
    c = parse(first["access_token"]).claims
    assert c["sub"] == "operator" and c["iss"] == op.issuer and c["aud"] == AUDIENCE
    assert set(c["scope"].split()) == {"query", "connection"} and "x-nmos-query" in c
    assert first["refresh_token"] and second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]  # rotated (public client)
    assert parse(second["access_token"]).claims["sub"] == "operator"
    assert revoked is True and after is not None and after.error == "invalid_grant"


def test_register_token_verify_and_protect_commands(tmp_path, op):
    state, keys = str(tmp_path / "state"), str(tmp_path / "keys" / "k")
    common = ["--issuer", op.issuer, "--ca", op.pki.ca_cert, "--state-dir", state, "--key-file", keys,
              "--timeout", "30"]

    def cli(*args, input=None):
        r = subprocess.run([sys.executable, "-m", "nmosauth_lite"] + list(args), input=input, capture_output=True,
                           text=True, env=env(), timeout=90)
        return r

    r = cli("register", *common, "--name", NAME, "--scope", "registration", "--initial-token",
            op.initial_access_token)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    r = cli("token", *common, "--scope", "registration")
    assert r.returncode == 0, r.stderr
    tok = json.loads(r.stdout)["access_token"]
    assert parse(tok).claims["client_id"] == rec["client_id"]
    verify = ["verify", "--issuer", op.issuer, "--ca", op.pki.ca_cert, "--audience", RS_AUD[0], "--state-dir",
              str(tmp_path / "verify"), "--method", "POST", "--path", "/x-nmos/registration/v1.3/resource",
              "--token", "-"]
    good = cli(*verify, input=tok)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = cli(*verify, input=_tamper(tok))
    assert bad.returncode != 0

    up = Upstream()
    p = Protect(tmp_path, op.pki, op.issuer, up.url)
    try:
        def get(token):
            headers = {"authorization": "Bearer " + token} if token else {}
            deadline = time.monotonic() + 15
            while True:  # a cold protect may answer 503 + Retry-After until the issuer's keys arrive
                r = requests.get("https://localhost:%d/x-nmos/registration/v1.3/" % p.port, headers=headers,
                                 verify=op.pki.ca_cert, timeout=10)
                if r.status_code != 503 or time.monotonic() > deadline:
                    return r
                time.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
        assert get(tok).status_code == 200
        assert get(_tamper(tok)).status_code == 401
        assert get(None).status_code == 401
    finally:
        p.stop()
        up.close()


def test_a_server_answering_only_openid_configuration_works_end_to_end(tmp_path, interop_pki):
    # issue 20 §2: metadata discovery falls back to <issuer>/.well-known/openid-configuration; the
    # document's issuer must still equal the configured one (OIDC Discovery §4.3)
    s = OidcProvider(tmp_path / "op-oidc-only", interop_pki, oidc_only=True).start()
    try:
        missing = requests.get(s.issuer + "/.well-known/oauth-authorization-server", verify=s.pki.ca_cert, timeout=10)
        assert missing.status_code == 404  # really no RFC 8414 document

        async def go():
            rs = await resource_server_for(s.pki, str(tmp_path / "rs"), s.pki.ca_cert, RS_AUD, issuers=[s.issuer])
            sel, store, client = _node(tmp_path, s)
            try:
                tokens = await client.client_credentials(timeout=30)  # register + token, found via OIDC form
                async with HTTPClient(ca_file=s.pki.ca_cert) as h:
                    good = await h.request("POST", rs.url, json={}, headers=[
                        ("authorization", "Bearer " + tokens["access_token"])])
                    bad = await h.request("POST", rs.url, json={}, headers=[
                        ("authorization", "Bearer " + _tamper(tokens["access_token"]))])
                return sel._configured[0].answered, good.status, bad.status
            finally:
                await sel.close()
                await rs.close()

        answered, good, bad = run(go())
        assert answered == ("openid-configuration", s.issuer + "/.well-known/openid-configuration")
        assert good == 200 and bad == 401
        state = str(tmp_path / "jwks")
        r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "jwks", "refresh", "--issuer", s.issuer, "--ca",
                            s.pki.ca_cert, "--state-dir", state], capture_output=True, text=True, env=env(), timeout=60)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "jwks", "show", "--state-dir", state],
                           capture_output=True, text=True, env=env(), timeout=60)
        shown = json.loads(r.stdout)[0]
        assert shown["metadata_form"] == "openid-configuration" and shown["issuer"] == s.issuer
    finally:
        s.stop()
