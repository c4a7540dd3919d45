"""`protect` TLS as BCP-003-01 asks (issue 19 §2): a real subprocess with an RSA and an ECDSA
certificate (repeatable --cert/--key; the handshake picks by what the client offers) and
Strict-Transport-Security on every answer it sends (guard refusals, pre-flights, forwarded
answers), max-age configurable, 0 = off; a certificate that cannot be loaded is named."""

import http.client
import socket
import subprocess
import sys

import pytest

from test_protect import AUD, REPO, SELF, Protect, base_args, bearer, jwks_path, m, token, upstream  # noqa: F401
from tls_helpers import SERVER_NAME, make_rsa_leaf, one_kind_client, peer_key_kind, pki  # noqa: F401

assert pki and jwks_path and m and upstream  # fixtures, imported for pytest


def request(port, ctx, method, path, headers=()):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=15)
    try:
        conn.connect()
        kind = peer_key_kind(conn.sock)
        conn.request(method, path, headers=dict(headers))
        r = conn.getresponse()
        r.read()
        return kind, r.status, r.headers
    finally:
        conn.close()


@pytest.fixture(scope="module")
def two_certs(pki, upstream, jwks_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    rsa_cert, rsa_key = make_rsa_leaf(pki, "protect-rsa")
    p = Protect(base_args(pki, upstream, jwks_path) + ["--cert", rsa_cert, "--key", rsa_key, "--audit", "off"],
                tmp, "two-certs")
    yield p
    p.kill()


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_rsa_only_and_ecdsa_only_clients_both_connect_and_get_hsts(pki, two_certs, m, kind):
    ctx = one_kind_client(pki, kind)
    got, status, h = request(two_certs.port, ctx, "GET", SELF)  # a guard refusal
    assert (got, status) == (kind, 401)
    assert h["Strict-Transport-Security"] == "max-age=31536000"  # BCP-003-01's production value
    got, status, h = request(two_certs.port, ctx, "GET", SELF, bearer(token(m)))  # a forwarded answer
    assert (got, status, h["Strict-Transport-Security"]) == (kind, 200, "max-age=31536000")
    got, status, h = request(two_certs.port, ctx, "OPTIONS", SELF, [("Origin", "https://ui.example.com"),
                                                                    ("Access-Control-Request-Method", "PUT")])
    assert (status, h["Strict-Transport-Security"]) == (200, "max-age=31536000")


def test_hsts_max_age_is_configurable_and_zero_turns_it_off(pki, upstream, jwks_path, tmp_path):
    from tls_helpers import client_ssl

    for value, want in (("600", "max-age=600"), ("0", None)):
        p = Protect(base_args(pki, upstream, jwks_path) + ["--hsts-max-age", value, "--audit", "off"], tmp_path,
                    "hsts-" + value)
        try:
            _, status, h = request(p.port, client_ssl(pki), "GET", SELF)
            assert status == 401 and h.get("Strict-Transport-Security") == want
        finally:
            p.kill()


def test_a_bad_certificate_pair_is_named_and_exits_2(pki, upstream, jwks_path, tmp_path):
    rsa_cert, rsa_key = make_rsa_leaf(pki, "protect-rsa-2")
    args = base_args(pki, upstream, jwks_path) + ["--cert", rsa_cert, "--key", pki.key]  # the EC key
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "protect"] + args, cwd=REPO, capture_output=True,
                       timeout=30)
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1
    assert ("--key %s does not belong to --cert %s" % (pki.key, rsa_cert)).encode() in r.stderr
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "protect"] + base_args(pki, upstream, jwks_path)
                       + ["--cert", rsa_cert], cwd=REPO, capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--cert and --key go in pairs" in r.stderr
