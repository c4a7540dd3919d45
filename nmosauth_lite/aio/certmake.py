"""Making lab certificates (`nmosauth-lite certs make`): a CA and server certificates signed by it,
ECDSA P-256 keys written 0600 and atomically (temp + fsync + rename), certificates 0644. Needs
`cryptography`. A laptop tool, left out of the firmware bundle; the checks `doctor` runs on a
device are in aio/certfiles.py.
"""

import datetime
import ipaddress
import os
import time

from .certfiles import (CA_CERT, CA_KEY, CA_NAME, DEFAULT_DAYS, MAX_DAYS, CertError, _read, check_names,
                        validity)
from .files import atomic_write, ensure_private_dir


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _key_pem(key):
    _x, _h, serialization, _e, _u, _n = _crypto()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert):
    _x, _h, serialization, _e, _u, _n = _crypto()
    return cert.public_bytes(serialization.Encoding.PEM)


def load_or_make_ca(directory, days=MAX_DAYS, now=None):
    """(ca cert, ca key, made) from `directory`/ca.pem + ca.key, made there first when absent."""
    x509, hashes, serialization, ec, _u, NameOID = _crypto()
    cert_path, key_path = os.path.join(directory, CA_CERT), os.path.join(directory, CA_KEY)
    if os.path.exists(cert_path) or os.path.exists(key_path):
        try:
            cert = x509.load_pem_x509_certificate(_read(cert_path))
        except ValueError:
            raise CertError("%s is not a PEM certificate" % cert_path)
        try:
            key = serialization.load_pem_private_key(_read(key_path), None)
        except (ValueError, TypeError):
            raise CertError("%s is not an unencrypted PEM private key" % key_path)
        if _pub(key.public_key()) != _pub(cert.public_key()):
            raise CertError("%s does not belong to %s" % (key_path, cert_path))
        return cert, key, False
    ensure_private_dir(directory)
    now = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    atomic_write(key_path, _key_pem(key), 0o600)  # the key first: a cert without its key is useless
    atomic_write(cert_path, _cert_pem(cert), 0o644)
    return cert, key, True


def _pub(public_key):
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def make_server_cert(directory, dns_names, ip_addresses, *, basename=None, days=DEFAULT_DAYS, now=None):
    """Write `basename`.pem (the certificate) and `basename`.key (0600, written first) signed by the
    directory's CA (made when absent). Returns a dict of the paths, names and validity."""
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    dns, ips = check_names(dns_names, ip_addresses)
    if not 1 <= days <= MAX_DAYS:
        raise ValueError("--days must be 1..%d" % MAX_DAYS)
    base = basename or (dns[0] if dns else ips[0]).replace("*", "wildcard").replace(":", "-")
    if not 1 <= len(base) <= 64 or base[0] == "." or base in (CA_CERT[:-4],) or \
            any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in base):
        raise ValueError("--basename %r: 1..64 letters, digits, '.', '_', '-', not 'ca'" % base[:80])
    ca, ca_key, made = load_or_make_ca(directory, now=now)
    t = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
    end = min(t + datetime.timedelta(days=days), validity(ca)[1])
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else ips[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(minutes=5)).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, base + ".pem"), os.path.join(directory, base + ".key")
    atomic_write(key_path, _key_pem(key), 0o600)
    atomic_write(cert_path, _cert_pem(cert), 0o644)
    return {"ca_file": os.path.abspath(os.path.join(directory, CA_CERT)), "ca_made": made,
            "cert_file": os.path.abspath(cert_path), "key_file": os.path.abspath(key_path),
            "names": dns, "addresses": ips, "not_after": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
