"""TLS contexts per BCP-003-01, and a throw-away PKI for tests and demos.

Server and client contexts allow TLS 1.2 and 1.3 only, with forward-secret AEAD
suites for 1.2 (BCP-003-01 requires TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256; ECDSA
certificates are suggested for small devices; a server may hold one of each). Client contexts always verify the
chain and the host name (IS-10 CL-03). The IPMX policy (`policy="ipmx"`, TR-10-SEC SEC-81..SEC-85)
names its TLS 1.2 suites one by one and refuses a context offering any TLS 1.3 suite it does not
list; key-exchange groups cannot be set from Python 3.11 (no set_groups): `group_policy` probes
what a context accepts, and docs/ipmx.md shows the OpenSSL configuration that restricts them.
`peer_cert_names` reads a verified client certificate's CN and DNS SANs (SEC-44).
`make_test_pki` writes a CA and leaf certificates with `cryptography` (imported only when
called): never for production.
"""

import datetime
import ipaddress
import os
import ssl

from ..errors import ConfigError
from .closing import close
from .tlspolicy import IPMX_TLS12_CIPHERS, check_ipmx_ciphers, group_policy  # noqa: F401 (group_policy: re-exported)

# TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites are
# OpenSSL's defaults, all of which qualify.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

POLICIES = ("bcp-003-01", "ipmx")
def _harden(ctx, policy="bcp-003-01"):
    if policy not in POLICIES:
        raise ValueError("TLS policy must be bcp-003-01 or ipmx")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # SEC-10, SEC-81: TLS 1.2 or 1.3
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_alpn_protocols(["http/1.1"])
    if policy == "ipmx":
        try:
            ctx.set_ciphers(":".join(IPMX_TLS12_CIPHERS))
        except ssl.SSLError:
            raise ConfigError("this OpenSSL offers none of the IPMX TLS 1.2 cipher suites")
        check_ipmx_ciphers(ctx)
    else:
        ctx.set_ciphers(TLS12_CIPHERS)
    return ctx


def server_context(pairs, key_file=None, *, ca_file=None, client_cert="none", password=None,
                   cert_flag="--cert", key_flag="--key", policy="bcp-003-01", crl_file=None):
    """A server SSLContext. `pairs`: [(cert_file, key_file)], or one cert file and `key_file`. One
    RSA and one ECDSA pair (BCP-003-01): OpenSSL keeps one per key type and picks per client.
    ConfigError names a file that fails as `cert_flag`/`key_flag`. `client_cert`: "none",
    "optional" or "required" (needs `ca_file`: one PEM file or a list of them, the CAs that
    sign client certificates). `crl_file`: CRL files (PEM or DER) the client certificates are
    checked against (aio/crlfiles.py). `policy`: "bcp-003-01" or "ipmx" (cipher suites, above)."""
    if isinstance(pairs, (str, os.PathLike)):
        pairs = [(pairs, key_file)]
    pairs = list(pairs)
    if not pairs:
        raise ConfigError("a TLS server needs a certificate and its key")
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), policy)
    for cert, key in pairs:
        load_pair(ctx, cert, key, password, cert_flag, key_flag)
    modes = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
    if client_cert not in modes:
        raise ValueError("client_cert must be none, optional or required")
    if client_cert != "none":
        if not ca_file:
            raise ValueError("client certificate checks need ca_file")
        for f in ([ca_file] if isinstance(ca_file, (str, os.PathLike)) else ca_file):
            try:
                ctx.load_verify_locations(f)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError("cannot load client CA %s: %s" % (f, getattr(e, "strerror", None) or e))
        ctx.verify_mode = modes[client_cert]
    if crl_file:  # SEC-93 NESTCRL
        if client_cert == "none":
            raise ValueError("CRLs check client certificates: they need client_cert optional or required")
        from .crlfiles import load_crls

        load_crls(ctx, [crl_file] if isinstance(crl_file, (str, os.PathLike)) else crl_file)
    return ctx


def load_pair(ctx, cert, key, password=None, cert_flag="--cert", key_flag="--key"):
    """ctx.load_cert_chain with an error that names the file that failed (ConfigError)."""
    for flag, path in ((cert_flag, cert), (key_flag, key)):
        if not path:
            raise ConfigError("%s missing: %s and %s go together, in pairs" % (flag, cert_flag, key_flag))
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise ConfigError("cannot read %s %s: %s" % (flag, path, e.strerror or e))
    try:
        # each pair alone first: else OpenSSL may match the key to an earlier certificate
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=password)
        ctx.load_cert_chain(cert, key, password=password)
    except ssl.SSLError as e:
        text = str(e)
        if not _has_certificate(cert):
            raise ConfigError("%s %s: no PEM certificate in it" % (cert_flag, cert))
        if "KEY_VALUES_MISMATCH" in text or "values mismatch" in text or "NO_CERTIFICATE_ASSIGNED" in text:
            raise ConfigError("%s %s does not belong to %s %s" % (key_flag, key, cert_flag, cert))
        raise ConfigError("cannot load %s %s: %s (an unencrypted PEM key expected)"
                          % (key_flag, key, getattr(e, "reason", None) or text[:80]))


def _has_certificate(path):
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(1 << 20)
        i = text.index("-----BEGIN CERTIFICATE-----")
        ssl.PEM_cert_to_DER_cert(text[i:text.index("-----END CERTIFICATE-----", i) + 25])
        return True
    except (OSError, ValueError):
        return False


def client_context(ca_file=None, *, cert_file=None, key_file=None, policy="bcp-003-01"):
    """A client SSLContext: chain and host name always verified (system CAs plus `ca_file`)."""
    ctx = _harden(ssl.create_default_context(ssl.Purpose.SERVER_AUTH), policy)
    if ca_file:
        ctx.load_verify_locations(ca_file)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def peer_cert_names(peercert):
    """The CN(s) and DNS SANs of a verified peer certificate, from `getpeercert()` (or asyncio's
    get_extra_info("peercert")), as a tuple of strings in certificate order; None when there is
    no certificate (None or {}: the peer sent none, or it was never verified). What the IPMX
    client_id binding compares (SEC-44); the core folds case and refuses wildcards."""
    if not peercert:
        return None
    names = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(value)
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "DNS":
            names.append(value)
    return tuple(names)


class TestPKI:
    """Paths of a generated CA and certificates (all PEM)."""

    def __init__(self, directory):
        self.directory = directory
        self.ca_cert = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "server.pem")
        self.key = os.path.join(directory, "server.key")
        self.client_cert = os.path.join(directory, "client.pem")
        self.client_key = os.path.join(directory, "client.key")


def _write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make_test_pki(directory, dns_names=("localhost",), ip_addresses=("127.0.0.1", "::1"),
                  *, client_name="test-client", days=7, ca_name="nmosauth-lite test CA"):
    """Write a CA, a server certificate for the names/addresses and a client certificate.

    Keys are ECDSA P-256. The server certificate's first DNS name is its CN and every
    name and address is a SAN (BCP-003-01 advises against IP SANs in production: here
    they let tools connect by address).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    pki = TestPKI(directory)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save_key(key, path):
        _write(path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), private=True)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(ca_name)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write(pki.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    save_key(ca_key, pki.ca_key)

    def leaf(cn, sans, usage, cert_path, key_path):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        save_key(key, key_path)

    sans = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cn = dns_names[0] if dns_names else ip_addresses[0]
    leaf(cn, sans, ExtendedKeyUsageOID.SERVER_AUTH, pki.cert, pki.key)
    leaf(client_name, [x509.DNSName(client_name)], ExtendedKeyUsageOID.CLIENT_AUTH,
         pki.client_cert, pki.client_key)
    return pki


# --- server-side TLS per connection with a small read buffer (issue 23) ------------------------
# asyncio's SSLProtocol gives every connection a 256 KiB receive buffer (sslproto.SSLProtocol.max_size)
# for its whole life: ~275 KiB per held connection, 140 MB at 512, and the heap rarely gives it
# back. The bytes read from the socket are copied into the connection's MemoryBIO at once
# (buffer_updated runs right after recv_into, on the loop's thread), so one receive buffer per
# thread serves every connection. Decrypted reads take TLS_READ_SIZE at a time: a TLS record
# carries at most 16 KiB of plaintext (RFC 8446 §5.1), so that loses nothing.
TLS_READ_SIZE = 16 * 1024 + 512
TLS_RECEIVE_SIZE = 64 * 1024  # the shared receive buffer: a few records per syscall


def _small_protocol_class():
    import threading
    from asyncio import sslproto

    local = threading.local()

    def shared_view():
        view = getattr(local, "view", None)
        if view is None:
            view = local.view = memoryview(bytearray(TLS_RECEIVE_SIZE))
        return view

    class SmallBufferSSLProtocol(sslproto.SSLProtocol):
        max_size = TLS_READ_SIZE

        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self._ssl_buffer = None  # no buffer of its own
            self._ssl_buffer_view = shared_view()

        def get_buffer(self, n):
            return self._ssl_buffer_view

        def _on_handshake_complete(self, handshake_exc):
            if isinstance(handshake_exc, ssl.SSLError):
                # OpenSSL has written the alert that says why ("certificate revoked", "unknown ca"):
                # send it before asyncio cuts the connection, so the client can tell (TR-10-SEC SEC-99)
                self._process_outgoing()
            super()._on_handshake_complete(handshake_exc)

    return SmallBufferSSLProtocol


_SMALL = []


def _feed(ssl_protocol, transport, data):
    """Give `data`, read off the socket before TLS began, to the TLS protocol as its first input:
    the same get_buffer/buffer_updated steps the transport takes for bytes it reads."""
    view = memoryview(data)
    while view and not transport.is_closing():
        buf = ssl_protocol.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        view = view[n:]
        ssl_protocol.buffer_updated(n)


async def start_tls(loop, transport, protocol, sslcontext, *, server_side=True, server_hostname=None,
                    ssl_handshake_timeout=None, ssl_shutdown_timeout=None, initial=b""):
    """loop.start_tls with a TLS_READ_SIZE read buffer: the same steps as asyncio's base_events
    start_tls (3.11-3.13), with our SSLProtocol subclass. `initial`: bytes already read off the
    transport (a server's first bytes, read to tell TLS from plain HTTP: aio/sniff.py), fed to
    TLS before anything else. Returns the TLS transport."""
    if not _SMALL:
        _SMALL.append(_small_protocol_class())
    waiter = loop.create_future()
    ssl_protocol = _SMALL[0](loop, protocol, sslcontext, waiter, server_side, server_hostname,
                             ssl_handshake_timeout=ssl_handshake_timeout,
                             ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False)
    transport.pause_reading()  # so data_received cannot run before connection_made
    transport.set_protocol(ssl_protocol)
    conmade = loop.call_soon(ssl_protocol.connection_made, transport)
    feed = loop.call_soon(_feed, ssl_protocol, transport, initial) if initial else None
    resume = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        close(transport)
        for handle in (conmade, feed, resume):
            if handle is not None:
                handle.cancel()
        raise
    return ssl_protocol._app_transport


MAX_CERT_FILE = 1 << 20
MAX_PEM_NAMES = 256


def certificate_names(cert_file):
    """The CN and DNS SANs of the first certificate in a PEM file, lower-case, in file order:
    what an IPMX Node matches `aud` against (SEC-27, SEC-28, SEC-32). Uses the ssl module's
    certificate decoder (no extra library); raises ValueError when the file has no certificate."""
    try:
        with open(cert_file, "rb") as f:
            pem = f.read(MAX_CERT_FILE + 1)
    except OSError as e:
        raise ValueError("cannot read certificate %s: %s" % (cert_file, e.strerror or e))
    if len(pem) > MAX_CERT_FILE:
        raise ValueError("%s holds no PEM certificate" % cert_file)
    names = []
    for n in pem_cert_names(pem, cert_file):
        if n.lower() not in names:
            names.append(n.lower())
    return names


_PEM_NAMES = {}


def pem_cert_names(pem, what="certificate"):
    """The CN(s) and DNS SANs of the first certificate in PEM text (str or bytes), as a tuple in
    certificate order, case kept; ValueError when there is none. For hosts that hand over the
    client certificate as PEM (the ASGI `tls` extension, SSL_CLIENT_CERT in a WSGI environ).
    Decoded by the ssl module's own decoder; the last MAX_PEM_NAMES results are kept."""
    import tempfile

    if isinstance(pem, str):
        pem = pem.encode("ascii", "replace")
    start = pem.find(b"-----BEGIN CERTIFICATE-----")
    end = pem.find(b"-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        raise ValueError("%s holds no PEM certificate" % what)
    first = pem[start:end + 25] + b"\n"
    known = _PEM_NAMES.get(first)
    if known is not None:
        return known
    fd, tmp = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(first)
        info = ssl._ssl._test_decode_cert(tmp)  # CPython's own decoder (used by its test suite)
    except (ssl.SSLError, OSError) as e:
        raise ValueError("cannot decode %s: %s" % (what, e))
    finally:
        os.unlink(tmp)
    names = peer_cert_names(info) or ()
    if len(_PEM_NAMES) >= MAX_PEM_NAMES:
        _PEM_NAMES.clear()
    _PEM_NAMES[first] = names
    return names
