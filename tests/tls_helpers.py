"""Test helpers for the HTTP/TLS tests: a generated PKI, our server on a background
thread (for blocking peers such as http.client and curl), a response reader, and
subprocesses that are always reaped. Import the `pki` fixture into a test module."""

import asyncio
import shutil
import subprocess
import threading

import pytest

from nmosauth_lite.aio.server import HTTPServer
from nmosauth_lite.aio.tlsutil import client_context, make_test_pki, server_context
from nmosauth_lite.http11 import CLOSED, NEED_DATA, Data, EndOfMessage, ResponseParser

SERVER_NAME = "node.test"
# The OpenSSL configuration docs/ipmx.md gives for the TR-10-SEC key-exchange groups (SEC-82):
# loaded when OPENSSL_CONF names it, before the ssl module is imported.
IPMX_GROUPS_CONF = """openssl_conf = openssl_init

[openssl_init]
ssl_conf = ssl_sect

[ssl_sect]
system_default = system_default_sect

[system_default_sect]
Groups = X25519:P-256:P-521:X448
"""


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA, a server certificate for node.test/localhost/127.0.0.1/::1, a client certificate."""
    return make_test_pki(str(tmp_path_factory.mktemp("pki")), dns_names=[SERVER_NAME, "localhost"])


def run(coro, timeout=30):
    """Run a coroutine on a fresh loop, bounded in time."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def server_ssl(pki, **kw):
    return server_context(pki.cert, pki.key, **kw)


def client_ssl(pki, **kw):
    return client_context(pki.ca_cert, **kw)


async def open_tls(port, pki, *, ctx=None, host="127.0.0.1"):
    return await asyncio.open_connection(host, port, ssl=ctx or client_ssl(pki), server_hostname=SERVER_NAME)


async def read_response(reader, method="GET", timeout=5):
    """Read one response with our parser (kept on the reader, so pipelined answers
    are not lost); returns (head, body), or None on a clean EOF."""
    parser = getattr(reader, "test_parser", None)
    if parser is None:
        parser = reader.test_parser = ResponseParser(64 * 1024 * 1024)
    parser.start(method)
    head, body = None, b""
    while True:
        ev = parser.next_event()
        if ev is CLOSED:
            return None
        if ev is NEED_DATA:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                if head is None and not parser.buffered:
                    return None
                parser.feed_eof()
            parser.feed(data)
        elif isinstance(ev, Data):
            body += ev.data
        elif isinstance(ev, EndOfMessage):
            return head, body
        elif ev.status >= 200 or ev.status == 101:
            head = ev
            if ev.status == 101:
                return head, parser.take_buffer()


class ServerThread:
    """Our HTTPServer running on its own loop in a thread: `with ServerThread(h, ssl=...) as s:`."""

    def __init__(self, handler, host="127.0.0.1", **kw):
        self.handler, self.host, self.kw = handler, host, kw
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None

    def __enter__(self):
        self.thread.start()
        self.server = HTTPServer(self.handler, **self.kw)
        self.call(self.server.start(self.host, 0))
        self.port = self.server.port
        return self

    def call(self, coro, timeout=20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc):
        try:
            self.call(self.server.shutdown(2.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def run_tool(args, timeout=20, input=None):
    """Run curl/openssl; on timeout the child is killed and reaped by subprocess.run."""
    return subprocess.run(args, input=input, capture_output=True, timeout=timeout)


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def make_rsa_leaf(pki, name="server-rsa", dns_names=(SERVER_NAME, "localhost"), ip_addresses=("127.0.0.1",)):
    """An RSA-2048 server certificate from the test CA (make_test_pki's leaves are ECDSA):
    with pki.cert it gives a server one certificate of each kind (BCP-003-01). Returns (cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with open(pki.ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(pki.ca_key, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    key = rsa.generate_private_key(65537, 2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            # Python 3.13 verifies with VERIFY_X509_STRICT: a leaf without an Authority Key
            # Identifier is refused there ("Missing Authority Key Identifier"), as make_test_pki's are not
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return write_leaf(pki, name, cert, key)


def write_leaf(pki, name, cert, key):
    """Save a test leaf as NAME.pem and NAME.key (0600) in the PKI's directory: (cert, key) paths."""
    import os

    from cryptography.hazmat.primitives import serialization

    cert_path = os.path.join(pki.directory, name + ".pem")
    key_path = os.path.join(pki.directory, name + ".key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def one_kind_client(pki, kind):
    """A TLS 1.2 client context that can only accept an `kind` ("RSA" or "EC") server certificate:
    its only cipher suite names that signature kind."""
    import ssl

    ctx = client_ssl(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256" if kind == "RSA" else "ECDHE-ECDSA-AES128-GCM-SHA256")
    return ctx


def peer_key_kind(ssl_object):
    """"RSA" or "EC": the kind of key in the certificate the server chose."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True)).public_key()
    return "RSA" if isinstance(key, rsa.RSAPublicKey) else "EC" if isinstance(key, ec.EllipticCurvePublicKey) else "?"


def make_client_leaf(pki, name, cn, dns_names=(), days=2):
    """An ECDSA P-256 client certificate (clientAuth) from the test CA, with subject CN `cn` (None:
    no CN) and DNS SANs `dns_names` (wildcards allowed: the CA signs what it is asked). For the
    IPMX client_id binding (SEC-44). Returns (cert, key) paths."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with open(pki.ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(pki.ca_key, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else \
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no common name")]
    b = (x509.CertificateBuilder().subject_name(x509.Name(subject)).issuer_name(ca.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if dns_names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return write_leaf(pki, name, cert, key)


def make_crl(pki, path, revoked=(), *, signer_key=None, next_update=3600, this_update=-60, der=False):
    """A CRL from the test CA (or signed by `signer_key`, a CA key file, under the test CA's name: a bad
    signature) revoking the certificates at the paths in `revoked`; nextUpdate/thisUpdate are seconds
    from now. Written to `path`, PEM or DER; returns `path`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    with open(pki.ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(signer_key or pki.ca_key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now + datetime.timedelta(seconds=this_update))
         .next_update(now + datetime.timedelta(seconds=next_update)))
    for cert_path in revoked:
        with open(cert_path, "rb") as f:
            serial = x509.load_pem_x509_certificate(f.read()).serial_number
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now - datetime.timedelta(seconds=30)).build())
    crl = b.sign(key, hashes.SHA256())
    with open(path, "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM))
    return path


def handshake_error(server_ctx, client_ctx):
    """One TLS handshake in memory (tlspolicy.memory_handshake): None when it succeeds, else the
    verify message of the side that refused a certificate."""
    import ssl

    from nmosauth_lite.aio.tlspolicy import memory_handshake

    e = memory_handshake(server_ctx, client_ctx, SERVER_NAME)
    if isinstance(e, ssl.SSLCertVerificationError):
        return e.verify_message
    if isinstance(e, Exception):
        raise e
    return e