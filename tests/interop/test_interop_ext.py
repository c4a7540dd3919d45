"""Tokens whose x-nmos-* claims sit under `ext` (issue 20 §2), made by a third-party server:
panva's oidc-provider (tools/interop) configured to put them there, as Ory Hydra does by
default, or in both places. Our resource server reads them with claims_location "ext" or
"either" (`verify` and `protect`, real processes), ignores them with the default "top"
(IS-10 TOK-20 puts them at top level), and refuses a token holding one in both places under
"either" (401: ambiguous, never merged)."""

import json
import subprocess
import sys
import time

import pytest
import requests

from client_support import ROOT, env, run
from interop_support import OidcProvider, Protect, Upstream
from nmosauth_lite.aio.oauth import CredentialStore, OAuthClient, ServerSelector
from nmosauth_lite.jws import parse

RS_AUD = "node1.example.com"
PATH = "/x-nmos/registration/v1.3/resource"


def _token(tmp_path, s):
    async def go():
        sel = ServerSelector(issuers=[s.issuer], ca_file=s.pki.ca_cert, auth_method="client_secret_basic")
        client = OAuthClient(sel, CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k")),
                             name="ACME Encoder-9 SN-EXT", scope="registration", initial_token=s.initial_access_token)
        try:
            return (await client.client_credentials(timeout=30))["access_token"]
        finally:
            await sel.close()
    return run(go())


def _verify(tmp_path, s, tok, location):
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "verify", "--issuer", s.issuer, "--ca", s.pki.ca_cert,
                        "--audience", RS_AUD, "--state-dir", str(tmp_path / "verify"), "--method", "POST",
                        "--path", PATH, "--token", "-", "--claims-location", location],
                       input=tok, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env())
    return json.loads(r.stdout)


def _through_protect(tmp_path, s, up, tok, location):
    p = Protect(tmp_path / ("protect-" + location), s.pki, s.issuer, up.url, extra=["--claims-location", location])
    try:
        deadline = time.monotonic() + 15
        while True:  # a cold protect answers 503 + Retry-After until the issuer's keys arrive
            r = requests.get("https://localhost:%d/x-nmos/registration/v1.3/health/nodes" % p.port,
                             headers={"authorization": "Bearer " + tok}, verify=s.pki.ca_cert, timeout=10)
            if r.status_code != 503 or time.monotonic() > deadline:
                return r
            time.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
    finally:
        p.stop()


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.close()


def test_claims_under_ext_are_read_with_ext_or_either(tmp_path, interop_pki, upstream):
    s = OidcProvider(tmp_path / "op-ext", interop_pki, claims_location="ext").start()
    try:
        tok = _token(tmp_path, s)
        claims = parse(tok).claims
        assert claims["ext"]["x-nmos-registration"] == {"read": ["*"], "write": ["*"]}
        assert not [k for k in claims if k.startswith("x-nmos-")]  # nothing at top level
        assert _verify(tmp_path, s, tok, "top")["status"] == 403  # IS-10's place holds nothing
        assert _verify(tmp_path, s, tok, "ext")["status"] == 200
        assert _verify(tmp_path, s, tok, "either")["status"] == 200
        (tmp_path / "protect-ext").mkdir()
        assert _through_protect(tmp_path, s, upstream, tok, "ext").status_code == 200
    finally:
        s.stop()


def test_a_claim_in_both_places_is_ambiguous_under_either(tmp_path, interop_pki, upstream):
    s = OidcProvider(tmp_path / "op-both", interop_pki, claims_location="both").start()
    try:
        tok = _token(tmp_path, s)
        claims = parse(tok).claims
        assert claims["x-nmos-registration"] == claims["ext"]["x-nmos-registration"]
        d = _verify(tmp_path, s, tok, "either")
        assert (d["status"], d["error"]) == (401, "invalid_token") and "both" in d["reason"]
        assert _verify(tmp_path, s, tok, "top")["status"] == 200
        (tmp_path / "protect-either").mkdir()
        r = _through_protect(tmp_path, s, upstream, tok, "either")
        assert r.status_code == 401 and ",error=invalid_token," in r.headers["www-authenticate"]
    finally:
        s.stop()
