"""A throw-away test PKI made with the `openssl` command: the pure lane's make_test_pki.

Writes the same files, names and extensions as nmosauth_lite.aio.tlsutil.make_test_pki
(which needs `cryptography`): an ECDSA P-256 CA (basicConstraints CA, pathlen 0,
keyCertSign/cRLSign, SKI) and two leaves signed by it (serverAuth with every name and
address as a SAN, clientAuth), PKCS#8 keys 0600. For tests only.
"""

import os
import subprocess

from nmosauth_lite.aio.tlsutil import TestPKI

OPENSSL_TIMEOUT = 60


def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], p.stderr[-500:]))


def _key(path, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path, cwd=cwd)
    os.chmod(os.path.join(cwd, path), 0o600)


def make_test_pki(directory, dns_names=("localhost",), ip_addresses=("127.0.0.1", "::1"),
                  *, client_name="test-client", days=7):
    os.makedirs(directory, exist_ok=True)
    pki = TestPKI(directory)
    d = directory
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("[ca]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier = hash\n")
        sans = ["DNS:%s" % n for n in dns_names] + ["IP:%s" % a for a in ip_addresses]
        f.write("[server]\nbasicConstraints = critical,CA:FALSE\nextendedKeyUsage = serverAuth\n"
                "authorityKeyIdentifier = keyid\n")
        if sans:
            f.write("subjectAltName = %s\n" % ",".join(sans))
        f.write("[client]\nbasicConstraints = critical,CA:FALSE\nextendedKeyUsage = clientAuth\n"
                "authorityKeyIdentifier = keyid\nsubjectAltName = DNS:%s\n" % client_name)
    _key("ca.key", d)
    _openssl("req", "-new", "-key", "ca.key", "-subj", "/CN=nmosauth-lite test CA", "-out", "ca.csr", cwd=d)
    _sign(d, "ca.csr", "ca.pem", "ca", days, "-signkey", "ca.key")
    cn = dns_names[0] if dns_names else ip_addresses[0]
    for name, key, cert, section in ((cn, "server.key", "server.pem", "server"),
                                     (client_name, "client.key", "client.pem", "client")):
        _key(key, d)
        _openssl("req", "-new", "-key", key, "-subj", "/CN=%s" % name, "-out", section + ".csr", cwd=d)
        _sign(d, section + ".csr", cert, section, days, "-CA", "ca.pem", "-CAkey", "ca.key")
    for tmp in ("ca.csr", "server.csr", "client.csr", "ext.cnf"):
        os.unlink(os.path.join(d, tmp))
    return pki


def _sign(d, csr, cert, section, days, *signer):
    # -days (not -not_before, which needs OpenSSL 3.4): Debian bookworm has 3.0
    _openssl("x509", "-req", "-in", csr, *signer, "-sha256", "-days", str(days),
             "-set_serial", "0x%s" % os.urandom(8).hex(), "-extfile", "ext.cnf", "-extensions", section,
             "-out", cert, cwd=d)
