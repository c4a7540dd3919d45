"""Lab certificates: a CA and server certificates for `protect`, `attach` and the authorization server,
and the checks `doctor` runs on every configured certificate and key file.

Making needs `cryptography`; checking works without it (the pair check then uses the ssl module,
expiry and names are reported as unknown). Keys are ECDSA P-256 (BCP-003-01 suggests ECDSA
for small devices), written 0600 and atomically (temp + fsync + rename); certificates 0644.
Names are DNS names or IP addresses given by the operator, validated before any work
(MAX_NAMES, MAX_NAME_LEN). For labs: production sites use their own CA (BCP-003-01).
"""

import datetime
import ipaddress
import os
import time

from .files import atomic_write, ensure_private_dir

MAX_NAMES = 32  # names + addresses in one certificate
MAX_NAME_LEN = 253  # RFC 1035 §2.3.4: a DNS name's text form
MAX_LABEL_LEN = 63
MAX_PEM_BYTES = 64 * 1024  # a certificate chain or key file larger than this is not ours
MAX_DAYS = 825  # CA/Browser Forum ceiling; lab certificates need no more
DEFAULT_DAYS = 397
CA_CERT, CA_KEY = "ca.pem", "ca.key"
CA_NAME = "nmosauth-lite lab CA"
EXPIRY_WARNING = 30 * 86400  # doctor warns this long before a certificate ends


class CertError(Exception):
    """A certificate or key file that cannot be made, read or used; the message names the file."""


def check_dns_name(name):
    """A host name (LDH labels, optional leading "*." wildcard, no trailing dot) -> lowercased, or ValueError."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN:
        raise ValueError("a name must be 1..%d characters" % MAX_NAME_LEN)
    n = name.lower()
    labels = n.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            raise ValueError("%r: a wildcard needs a domain" % name[:80])
    for label in labels:
        if not 1 <= len(label) <= MAX_LABEL_LEN or label[0] == "-" or label[-1] == "-" or \
                any(not ("a" <= c <= "z" or "0" <= c <= "9" or c == "-") for c in label):
            raise ValueError("%r is not a DNS name (letters, digits, inner '-', dot-separated)" % name[:80])
    return n


def check_names(names, addresses):
    """(dns names, ip address strings) validated and de-duplicated; ValueError otherwise."""
    dns, ips = [], []
    if len(names) + len(addresses) > MAX_NAMES:
        raise ValueError("at most %d names and addresses in one certificate" % MAX_NAMES)
    for n in names:
        n = check_dns_name(n)
        if n not in dns:
            dns.append(n)
    for a in addresses:
        try:
            ip = str(ipaddress.ip_address(a.strip("[]") if isinstance(a, str) and len(a) <= 64 else ""))
        except ValueError:
            raise ValueError("%r is not an IP address" % str(a)[:80])
        if ip not in ips:
            ips.append(ip)
    if not dns and not ips:
        raise ValueError("give at least one --name or --ip")
    return dns, ips


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _read(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as e:
        raise CertError("cannot read %s: %s" % (path, e.strerror or e))
    if len(data) > MAX_PEM_BYTES:
        raise CertError("%s is larger than %d bytes: not a PEM certificate or key" % (path, MAX_PEM_BYTES))
    return data


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
    end = min(t + datetime.timedelta(days=days), ca.not_valid_after_utc)
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


def load_error(cert_file, key_file, exc, cert_flag="--cert", key_flag="--key"):
    """One line for a TLS pair that did not load: which file, and why (issue 22: name the file)."""
    for flag, path in ((cert_flag, cert_file), (key_flag, key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            return "cannot read %s %s: %s" % (flag, path, e.strerror or e)
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    if "mismatch" in str(exc).lower():
        return "%s %s does not belong to %s %s (%s)" % (key_flag, key_file, cert_flag, cert_file, reason)
    return "cannot load %s %s with %s %s: %s (PEM certificate and unencrypted PEM key expected)" % (
        cert_flag, cert_file, key_flag, key_file, reason)


# --- checks (doctor) ---------------------------------------------------------------------------
def _host_covered(host, dns, ips):
    """RFC 6125 §6.4: exact name, or one left-most "*" label; an address only by an IP SAN."""
    h = host.lower().rstrip(".")
    if h.startswith("https://"):
        h = h[8:]
    try:
        return str(ipaddress.ip_address(h.strip("[]"))) in ips
    except ValueError:
        pass
    for n in dns:
        n = n.lower().rstrip(".")
        if n == h or (n.startswith("*.") and "." in h and h.split(".", 1)[1] == n[2:]):
            return True
    return False


def check_pair(cert_file, key_file, hosts=(), now=None):
    """Problems of one configured pair: [(serious, message)], each naming the file it is about.

    Exists and readable (by this process: run doctor as the service's user), the key matches
    the certificate, the certificate is within its validity, and its names cover each of
    `hosts` (the configured audience: the names clients use to reach this service).
    """
    import ssl

    out = []
    for path in (cert_file, key_file):
        if not os.path.exists(path):
            out.append((True, "%s does not exist" % path))
        elif not os.access(path, os.R_OK):
            out.append((True, "%s is not readable by uid %d (run doctor as the service's user)" % (path, os.geteuid())))
    if out:
        return out
    try:
        st = os.stat(key_file)
        if st.st_mode & 0o007:  # 0640 root:<service group> is the board's way; others must not read it
            out.append((False, "%s has mode %o: other users can read this private key (0600 or 0640)"
                        % (key_file, st.st_mode & 0o777)))
    except OSError:
        pass
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as e:
        text = str(e)
        what = "does not match" if "mismatch" in text.lower() else "cannot be used with"
        out.append((True, "%s %s %s (%s)" % (key_file, what, cert_file, getattr(e, "reason", None) or text)))
        return out
    except OSError as e:
        out.append((True, "cannot read %s / %s: %s" % (cert_file, key_file, e.strerror or e)))
        return out
    try:
        from cryptography import x509
    except ImportError:
        return out  # expiry and names need cryptography; the pair itself is checked
    try:
        cert = x509.load_pem_x509_certificate(_read(cert_file))
    except (ValueError, CertError) as e:
        out.append((True, "%s: %s" % (cert_file, e)))
        return out
    t = time.time() if now is None else now
    end, start = cert.not_valid_after_utc.timestamp(), cert.not_valid_before_utc.timestamp()
    if t >= end:
        out.append((True, "%s expired on %s" % (cert_file, cert.not_valid_after_utc.strftime("%Y-%m-%d"))))
    elif end - t < EXPIRY_WARNING:
        out.append((False, "%s expires on %s" % (cert_file, cert.not_valid_after_utc.strftime("%Y-%m-%d"))))
    if t < start:
        out.append((True, "%s is not valid before %s (or the clock is wrong)"
                    % (cert_file, cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M"))))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    for host in hosts:
        if "*" in host:
            continue  # a wildcard audience names a group, not this service's own name
        if not _host_covered(host, dns, ips):
            out.append((True, "%s does not name %s (it names %s): clients checking the host name will refuse it"
                        % (cert_file, host, ", ".join(dns + ips) or "nothing")))
    return out
