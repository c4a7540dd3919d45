"""aio/tlsutil.server_context with two certificates (BCP-003-01 recommends an RSA and an ECDSA
one; issue 19 §2): the handshake picks by what the client offers, tested with an RSA-only and an
ECDSA-only client (TLS 1.2 by cipher suite in Python; TLS 1.3 by signature algorithms with
`openssl s_client -sigalgs`), and every load error names the file at fault."""

import socket
import ssl

import pytest

from tls_helpers import (SERVER_NAME, ServerThread, make_rsa_leaf, needs_openssl, one_kind_client, peer_key_kind,
                         pki, run_tool)
from nmosauth_lite.aio.tlsutil import server_context
from nmosauth_lite.aio.web import json_response
from nmosauth_lite.errors import ConfigError

assert pki  # the fixture


@pytest.fixture(scope="module")
def rsa_pair(pki):
    return make_rsa_leaf(pki)


@pytest.fixture(scope="module")
def two_cert_server(pki, rsa_pair):
    ctx = server_context([(pki.cert, pki.key), rsa_pair])
    with ServerThread(lambda r: json_response({"ok": True}), ssl=ctx) as srv:
        yield srv


def handshake(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
            return peer_key_kind(tls), tls.version()


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_handshake_picks_the_certificate_the_client_can_use(pki, two_cert_server, kind):
    assert handshake(two_cert_server.port, one_kind_client(pki, kind)) == (kind, "TLSv1.2")


def test_single_certificate_server_fails_a_client_that_cannot_use_it(pki):
    # the check above can fail: with only the ECDSA certificate an RSA-only client gets no handshake
    with ServerThread(lambda r: json_response({}), ssl=server_context(pki.cert, pki.key)) as srv:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(srv.port, one_kind_client(pki, "RSA"))


@needs_openssl
@pytest.mark.parametrize("sigalg,bits", [("rsa_pss_rsae_sha256", "2048"), ("ecdsa_secp256r1_sha256", "256")])
def test_tls13_client_offering_one_signature_algorithm_gets_that_kind(pki, two_cert_server, sigalg, bits):
    r = run_tool(["openssl", "s_client", "-connect", "127.0.0.1:%d" % two_cert_server.port, "-servername",
                  SERVER_NAME, "-tls1_3", "-sigalgs", sigalg, "-CAfile", pki.ca_cert, "-verify_return_error"],
                 input=b"")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out[-2000:] + r.stderr.decode(errors="replace")[-500:]
    assert "Server public key is %s bit" % bits in out and "Verify return code: 0 (ok)" in out


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_load_errors_name_the_file_at_fault(pki, rsa_pair, tmp_path):
    missing = str(tmp_path / "nowhere.pem")
    with pytest.raises(ConfigError, match="cannot read --cert %s" % missing):
        server_context([(missing, pki.key)])
    with pytest.raises(ConfigError, match="cannot read --key %s" % missing):
        server_context([(pki.cert, missing)])
    garbage = _write(tmp_path, "garbage.pem", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="--cert %s: no PEM certificate" % garbage):
        server_context([(garbage, pki.key)])
    with pytest.raises(ConfigError, match="--key %s does not belong to --cert %s" % (rsa_pair[1], pki.cert)):
        server_context([(pki.cert, rsa_pair[1])])
    # the second pair's key is the first pair's: OpenSSL alone would accept it and never serve RSA
    with pytest.raises(ConfigError, match="--key %s does not belong to --cert %s" % (pki.key, rsa_pair[0])):
        server_context([(pki.cert, pki.key), (rsa_pair[0], pki.key)])
    bad_key = _write(tmp_path, "bad.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="cannot load --key %s" % bad_key):
        server_context([(pki.cert, bad_key), rsa_pair])
    with pytest.raises(ConfigError):
        server_context([])
