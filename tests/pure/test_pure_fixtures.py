"""The pure lane's fixture sources, checked against pyca/cryptography in the main lane.

tests/pure/pure_minting.py must sign exactly like tests/minting.py (PKCS#1 v1.5 is
deterministic: the same bytes), offer the same API and claims, and its ES signatures
must verify with OpenSSL; tests/pure/pure_pki.py must write a PKI that TLS accepts
with the same names, usages and constraints as tlsutil.make_test_pki.
"""

import asyncio
import ipaddress
import os
import ssl

import pytest

pytest.importorskip("cryptography")

import minting  # noqa: E402
import pure_minting  # noqa: E402
import pure_pki  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

from nmosauth_lite.aio.tlsutil import client_context, server_context  # noqa: E402


@pytest.fixture(scope="module")
def both():
    return minting.Minter(), pure_minting.Minter()


def test_same_api_and_claims(both):
    ref, pure = both
    names = {n for n in dir(minting) if not n.startswith("_") and callable(getattr(minting, n))
             and getattr(getattr(minting, n), "__module__", None) == "minting"}
    assert names <= set(dir(pure_minting))
    assert ref.claims() == pure.claims() and ref.claims(sub=None, aud="x") == pure.claims(sub=None, aud="x")
    assert (ref.NOW, ref.ISS) == (pure.NOW, pure.ISS)
    assert ref.jwks["keys"][0] == pure.jwks["keys"][0]  # the test-only key, read by our DER parser
    assert [k["kid"] for k in ref.jwks["keys"]] == [k["kid"] for k in pure.jwks["keys"]]


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rsa_tokens_are_byte_identical(both, alg):
    ref, pure = both
    assert ref.token(alg) == pure.token(alg)
    assert ref.token(alg, kid="x", sub="y") == pure.token(alg, kid="x", sub="y")


def test_generated_rsa_keys_sign_what_openssl_verifies(both):
    _, pure = both
    key = pure.attacker
    pub = x509_public_rsa(key)
    sig = pure_minting.sign_raw(key, "RS512", b"signing input")
    pub.verify(sig, b"signing input", padding.PKCS1v15(), hashes.SHA512())
    assert key.n.bit_length() == 2048 and pure.rsa2.n != key.n


def x509_public_rsa(key):
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPublicNumbers(key.e, key.n).public_key()


@pytest.mark.parametrize("alg,curve,size", [("ES256", ec.SECP256R1(), 32), ("ES384", ec.SECP384R1(), 48)])
def test_ec_signatures_verify_with_openssl(both, alg, curve, size):
    _, pure = both
    priv, _kid = pure.key_by_alg[alg]
    sig = pure_minting.sign_raw(priv, alg, b"signing input")
    assert len(sig) == 2 * size
    pt = priv.point
    pub = ec.EllipticCurvePublicNumbers(pt.x(), pt.y(), curve).public_key()
    h = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    pub.verify(der, b"signing input", ec.ECDSA(h))


def test_openssl_pki_matches_make_test_pki(tmp_path):
    pki = pure_pki.make_test_pki(str(tmp_path), dns_names=["node.test", "localhost"])
    with open(pki.ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(pki.cert, "rb") as f:
        leaf = x509.load_pem_x509_certificate(f.read())
    with open(pki.client_cert, "rb") as f:
        client = x509.load_pem_x509_certificate(f.read())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["node.test", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    for key in (pki.ca_key, pki.key, pki.client_key):
        assert os.stat(key).st_mode & 0o077 == 0
    assert handshake(pki) == "node.test"


def handshake(pki):
    """A real TLS handshake over loopback with our contexts (mutual: the client cert too)."""
    async def go():
        got = {}

        async def on_conn(reader, writer):
            got["peer"] = writer.get_extra_info("peercert")
            writer.close()

        sctx = server_context(pki.cert, pki.key, ca_file=pki.ca_cert, client_cert="required")
        server = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        cctx = client_context(pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="node.test")
        cert = writer.get_extra_info("peercert")
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return dict(x[0] for x in cert["subject"])["commonName"]

    return asyncio.run(asyncio.wait_for(go(), 20))


def test_ssl_module_is_the_only_tls_dependency():
    assert ssl.OPENSSL_VERSION  # the pure lane still uses the stdlib's OpenSSL for TLS, never cryptography
