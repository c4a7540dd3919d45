"""Certificate revocation lists for client certificates (TR-10-SEC SEC-93 NESTCRL, SEC-95, SEC-98).

`read_crl_file` takes a PEM file (one or more CRLs: a combined GTCRL, SEC-95) or one DER CRL;
`check_crl_files` judges every CRL against the client CAs: readable, parseable, signed by one of
them (SEC-95), and reports its validity window; `load_crls` hands them to an SSLContext, which then
checks the client certificate itself against its issuer's CRL (VERIFY_CRL_CHECK_LEAF, see
load_crls). OpenSSL fails closed on its own while running: a CRL past its nextUpdate, not yet
valid, or badly signed makes every certificate from its CA fail the handshake (SEC-98, SEC-99).
Parsing and signature checks need `cryptography`; without it only OpenSSL's loading is checked.
"""

import base64
import datetime
import os
import ssl
import tempfile

from ..errors import ConfigError

MAX_CRL_FILE = 8 * 1024 * 1024  # a large CA's CRL is a few MB; bigger is not a CRL we should hold
MAX_CRLS_PER_FILE = 64  # a GTCRL (SEC-95) combines the device's few CAs' lists
PEM_BEGIN, PEM_END = b"-----BEGIN X509 CRL-----", b"-----END X509 CRL-----"


def read_crl_file(path):
    """The CRLs of a file as PEM blocks (bytes, each ending in a newline). PEM with one or more
    CRLs, or one DER CRL. ConfigError naming the file when it cannot be read or holds none."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CRL_FILE + 1)
    except OSError as e:
        raise ConfigError("cannot read CRL %s: %s" % (path, e.strerror or e))
    if len(data) > MAX_CRL_FILE:
        raise ConfigError("CRL %s is larger than %d bytes" % (path, MAX_CRL_FILE))
    if data[:1] == b"\x30":  # DER: a SEQUENCE; OpenSSL's file loader wants PEM, so wrap it
        b64 = base64.b64encode(data)
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return [PEM_BEGIN + b"\n" + b"\n".join(lines) + b"\n" + PEM_END + b"\n"]
    blocks, at = [], 0
    while True:
        start = data.find(PEM_BEGIN, at)
        if start < 0:
            break
        end = data.find(PEM_END, start)
        if end < 0:
            raise ConfigError("CRL %s: a PEM block has no END line" % path)
        at = end + len(PEM_END)
        blocks.append(data[start:at] + b"\n")
        if len(blocks) > MAX_CRLS_PER_FILE:
            raise ConfigError("CRL %s holds more than %d CRLs" % (path, MAX_CRLS_PER_FILE))
    if not blocks:
        raise ConfigError("CRL %s holds no CRL (PEM 'BEGIN X509 CRL' or DER expected)" % path)
    return blocks


def _ca_certificates(ca_files):
    """[(file, cryptography Certificate)] of every certificate in the client CA files."""
    from cryptography import x509

    out = []
    for path in ca_files:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CRL_FILE)
        except OSError as e:
            raise ConfigError("cannot read client CA %s: %s" % (path, e.strerror or e))
        at = 0
        while True:
            start = data.find(b"-----BEGIN CERTIFICATE-----", at)
            end = data.find(b"-----END CERTIFICATE-----", start)
            if start < 0 or end < 0:
                break
            at = end + 25
            try:
                out.append((path, x509.load_pem_x509_certificate(data[start:at])))
            except ValueError as e:
                raise ConfigError("client CA %s: a certificate cannot be parsed (%s)" % (path, e))
    return out


def _window(crl):
    """(thisUpdate, nextUpdate or None), aware UTC; cryptography < 42 has no *_utc."""
    if hasattr(crl, "last_update_utc"):
        return crl.last_update_utc, crl.next_update_utc
    u = datetime.timezone.utc
    return crl.last_update.replace(tzinfo=u), crl.next_update.replace(tzinfo=u) if crl.next_update else None


def check_crl_files(crl_files, ca_files, now=None):
    """Judge every CRL of `crl_files` against the certificates of `ca_files`. Raises ConfigError
    naming the file for one that cannot be read or parsed, whose issuer is none of the client CAs,
    or whose signature does not verify with that CA's key (SEC-95, SEC-98). Returns one dict per
    CRL: file, issuer, ca (the CA file), this_update, next_update (aware datetimes; None without
    cryptography or without a nextUpdate), revoked (count) and state: "valid", "expired",
    "not-yet-valid", or "unchecked" (no `cryptography`: OpenSSL alone judges it, at handshakes)."""
    try:
        from cryptography import x509
    except ImportError:
        x509 = None
    now = datetime.datetime.now(datetime.timezone.utc) if now is None else now
    cas = _ca_certificates(ca_files) if x509 is not None else []
    out = []
    for path in crl_files:
        for pem in read_crl_file(path):
            if x509 is None:
                out.append({"file": path, "issuer": None, "ca": None, "this_update": None, "next_update": None,
                            "revoked": None, "state": "unchecked"})
                continue
            try:
                crl = x509.load_pem_x509_crl(pem)
            except ValueError as e:
                raise ConfigError("CRL %s cannot be parsed: %s" % (path, e))
            issuer = crl.issuer.rfc4514_string()
            same = [(f, c) for f, c in cas if c.subject == crl.issuer]
            if not same:
                raise ConfigError("CRL %s is issued by %s, which is none of the client CAs (--client-ca): "
                                  "its signature cannot be checked (SEC-95)" % (path, issuer))
            signer = next(((f, c) for f, c in same if _signed_by(crl, c)), None)
            if signer is None:
                raise ConfigError("CRL %s has a bad signature: not signed by the key of client CA %s (%s) "
                                  "(SEC-98)" % (path, issuer, same[0][0]))
            this_update, next_update = _window(crl)
            state = "valid"
            if next_update is not None and now >= next_update:
                state = "expired"
            elif now < this_update:
                state = "not-yet-valid"
            out.append({"file": path, "issuer": issuer, "ca": signer[0], "this_update": this_update,
                        "next_update": next_update, "revoked": len(crl), "state": state})
    return out


def _signed_by(crl, ca_cert):
    try:
        return crl.is_signature_valid(ca_cert.public_key())
    except (TypeError, ValueError):  # a key type cryptography cannot check a CRL with
        return False


def problem(info):
    """The loud line for a CRL that OpenSSL will refuse (expired or not yet valid), else None."""
    def when(d):
        return d.strftime("%Y-%m-%d %H:%M:%S UTC")

    if info["state"] == "expired":
        return ("CRL %s (%s) expired at its nextUpdate %s: every client certificate that CA issued is "
                "refused until a newer CRL is installed and protect reloads (SIGHUP) (SEC-98)"
                % (info["file"], info["issuer"], when(info["next_update"])))
    if info["state"] == "not-yet-valid":
        return ("CRL %s (%s) is not valid before %s (or the clock is wrong): every client certificate that "
                "CA issued is refused until then (SEC-98)" % (info["file"], info["issuer"], when(info["this_update"])))
    return None


def load_crls(ctx, crl_files):
    """Add the CRLs to a server context's trust store and turn revocation checking on.

    VERIFY_CRL_CHECK_LEAF, not CHECK_CHAIN: the client certificate is checked against the CRL of
    the CA that issued it, which SEC-93 says is the one to use ("the CRL must be signed by the
    intermediate CA"). CHAIN would also require a CRL from every CA above it, root included, or
    refuse every client; an intermediate CA that must no longer be trusted is taken out of
    --client-ca instead. A client CA with no CRL: the certificates it issues are refused
    ("unable to get certificate CRL"): fail closed (SEC-98)."""
    fd, tmp = tempfile.mkstemp(suffix=".pem")  # OpenSSL loads CRLs from a file only (cadata: certificates)
    os.close(fd)
    try:
        for path in crl_files:  # only the CRL blocks: a certificate in a CRL file must not become a CA
            with open(tmp, "wb") as f:
                f.write(b"".join(read_crl_file(path)))
            try:
                ctx.load_verify_locations(tmp)
            except ssl.SSLError as e:
                raise ConfigError("CRL %s cannot be loaded: %s" % (path, getattr(e, "reason", None) or e))
    finally:
        os.unlink(tmp)
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def uncovered_cas(infos, ca_files):
    """The subjects of client CA certificates that no CRL in `infos` is issued by (their
    clients are refused, SEC-98); [] without `cryptography` (nothing known)."""
    if not infos or infos[0]["state"] == "unchecked":
        return []
    issuers = set(i["issuer"] for i in infos)
    out = []
    for _path, cert in _ca_certificates(ca_files):
        name = cert.subject.rfc4514_string()
        if name not in issuers and name not in out:
            out.append(name)
    return out
