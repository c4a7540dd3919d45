"""CRLs for client certificates (TR-10-SEC SEC-93 NESTCRL, SEC-95, SEC-98, SEC-99): reading PEM, DER
and combined files, the start-up judgement (signature by a client CA, validity window), real TLS
handshakes in memory against contexts holding CRLs (revoked refused, good accepted, two CAs, a CA
without a CRL, a CRL that expires while in use), and ServerTLS reloads (SEC-94)."""

import logging
import os
import time
import types

import pytest

from tls_helpers import handshake_error, make_client_leaf, make_crl
from nmosauth_lite.aio.crlfiles import check_crl_files, read_crl_file, uncovered_cas
from nmosauth_lite.aio.tlsreload import ServerTLS
from nmosauth_lite.aio.tlsutil import client_context, make_test_pki, server_context
from nmosauth_lite.errors import ConfigError


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two CAs (A, B), each with a good and a to-be-revoked client certificate."""
    base = tmp_path_factory.mktemp("crl")
    a = make_test_pki(str(base / "a"), dns_names=["node.test"])
    b = make_test_pki(str(base / "b"), dns_names=["node.test"], ca_name="test CA B")
    return types.SimpleNamespace(a=a, b=b, dir=str(base), a_good=make_client_leaf(a, "good", "ctl-a"),
                                 a_bad=make_client_leaf(a, "bad", "ctl-a-revoked"),
                                 b_good=make_client_leaf(b, "good", "ctl-b"),
                                 b_bad=make_client_leaf(b, "bad", "ctl-b-revoked"))


def server(pki, cas, crls, mode="required"):
    return server_context(pki.cert, pki.key, ca_file=cas, client_cert=mode, crl_file=crls)


def client(pki, leaf):
    ctx = client_context(pki.ca_cert)
    ctx.load_cert_chain(*leaf)
    return ctx


def test_reads_pem_der_and_combined_files(two, tmp_path):
    pem = make_crl(two.a, str(tmp_path / "a.pem"))
    der = make_crl(two.a, str(tmp_path / "a.der"), der=True)
    combined = tmp_path / "gtcrl.pem"  # SEC-95: one file holding several CAs' lists
    combined.write_bytes(open(pem, "rb").read() + open(make_crl(two.b, str(tmp_path / "b.pem")), "rb").read())
    assert len(read_crl_file(pem)) == 1 and len(read_crl_file(der)) == 1
    assert len(read_crl_file(str(combined))) == 2
    assert read_crl_file(der)[0].startswith(b"-----BEGIN X509 CRL-----\n")
    infos = check_crl_files([str(combined)], [two.a.ca_cert, two.b.ca_cert])
    assert [i["state"] for i in infos] == ["valid", "valid"] and [i["ca"] for i in infos] == [two.a.ca_cert,
                                                                                           two.b.ca_cert]


@pytest.mark.parametrize("content, words", [
    (None, "cannot read CRL"),
    (b"", "holds no CRL"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "holds no CRL"),
    (b"-----BEGIN X509 CRL-----\nAAAA\n", "no END line"),
    (b"-----BEGIN X509 CRL-----\nMAMCAQA=\n-----END X509 CRL-----\n", "cannot be parsed"),
    (b"\x30\x03\x02\x01\x00", "cannot be parsed"),  # DER, but no CRL
])
def test_unusable_crl_files_are_refused_naming_the_file(two, tmp_path, content, words):
    path = str(tmp_path / "crl.pem")
    if content is not None:
        with open(path, "wb") as f:
            f.write(content)
    with pytest.raises(ConfigError) as e:
        check_crl_files([path], [two.a.ca_cert])
    assert path in str(e.value) and words in str(e.value)


def test_a_crl_with_a_bad_signature_or_from_another_ca_is_refused(two, tmp_path):
    # SEC-98: an invalid signature; SEC-95: only the client CAs may sign CRLs
    forged = make_crl(two.a, str(tmp_path / "forged.pem"), signer_key=two.b.ca_key)
    with pytest.raises(ConfigError, match="bad signature"):
        check_crl_files([forged], [two.a.ca_cert, two.b.ca_cert])
    with pytest.raises(ConfigError, match="none of the client CAs"):
        check_crl_files([make_crl(two.b, str(tmp_path / "b.pem"))], [two.a.ca_cert])
    # and a context loaded with the forged CRL anyway (no start-up check) refuses that CA's clients
    assert handshake_error(server(two.a, [two.a.ca_cert], [forged]), client(two.a, two.a_good)) == \
        "CRL signature failure"


def test_validity_window_is_reported(two, tmp_path):
    ca = [two.a.ca_cert]
    assert check_crl_files([make_crl(two.a, str(tmp_path / "e.pem"), next_update=-10, this_update=-100)],
                           ca)[0]["state"] == "expired"
    assert check_crl_files([make_crl(two.a, str(tmp_path / "f.pem"), this_update=600)], ca)[0]["state"] == \
        "not-yet-valid"
    info = check_crl_files([make_crl(two.a, str(tmp_path / "v.pem"), [two.a_bad[0]])], ca)[0]
    assert (info["state"], info["revoked"], info["issuer"]) == ("valid", 1, "CN=nmosauth-lite test CA")


def test_revoked_refused_good_accepted_with_two_cas_and_two_crls(two, tmp_path):
    # SEC-93: at least two NESTCRL; each CA's own list is honoured
    crls = [make_crl(two.a, str(tmp_path / "a.pem"), [two.a_bad[0]]),
            make_crl(two.b, str(tmp_path / "b.der"), [two.b_bad[0]], der=True)]
    ctx = server(two.a, [two.a.ca_cert, two.b.ca_cert], crls)
    got = {name: handshake_error(ctx, client(two.a, leaf)) for name, leaf in
           (("a_good", two.a_good), ("a_bad", two.a_bad), ("b_good", two.b_good), ("b_bad", two.b_bad))}
    assert got == {"a_good": None, "a_bad": "certificate revoked", "b_good": None, "b_bad": "certificate revoked"}
    # without CRLs the same certificate is accepted: the refusal above is the CRL's
    assert handshake_error(server(two.a, [two.a.ca_cert], None), client(two.a, two.a_bad)) is None


def test_a_client_ca_without_a_crl_refuses_its_clients(two, tmp_path):
    # SEC-98: the CRL is required (CRLs are configured) but there is none for B
    crls = [make_crl(two.a, str(tmp_path / "a.pem"))]
    ctx = server(two.a, [two.a.ca_cert, two.b.ca_cert], crls)
    assert handshake_error(ctx, client(two.a, two.b_good)) == "unable to get certificate CRL"
    assert handshake_error(ctx, client(two.a, two.a_good)) is None
    infos = check_crl_files(crls, [two.a.ca_cert, two.b.ca_cert])
    assert uncovered_cas(infos, [two.a.ca_cert, two.b.ca_cert]) == ["CN=test CA B"]


def test_a_crl_that_expires_while_in_use_refuses_from_then(two, tmp_path):
    # SEC-98 at run time: OpenSSL itself judges nextUpdate at every handshake
    ctx = server(two.a, [two.a.ca_cert], [make_crl(two.a, str(tmp_path / "soon.pem"), next_update=2)])
    assert handshake_error(ctx, client(two.a, two.a_good)) is None
    time.sleep(2.5)
    assert handshake_error(ctx, client(two.a, two.a_good)) == "CRL has expired"


def test_crls_need_client_certificates(two, tmp_path):
    with pytest.raises(ValueError):
        server_context(two.a.cert, two.a.key, crl_file=[make_crl(two.a, str(tmp_path / "a.pem"))])


def test_reload_swaps_the_context_and_a_failed_one_keeps_the_old(two, tmp_path, caplog):
    crl = str(tmp_path / "live.pem")
    make_crl(two.a, crl)
    tls = ServerTLS([(two.a.cert, two.a.key)], client_ca=[two.a.ca_cert], client_cert="required", client_crl=[crl])
    srv = types.SimpleNamespace(ssl=tls.start())
    first = srv.ssl
    assert handshake_error(first, client(two.a, two.a_bad)) is None
    make_crl(two.a, crl, [two.a_bad[0]])
    assert tls.reload(srv) and srv.ssl is not first  # SEC-94: new connections use the new lists
    assert handshake_error(srv.ssl, client(two.a, two.a_bad)) == "certificate revoked"
    assert handshake_error(first, client(two.a, two.a_bad)) is None  # what open sessions were made with
    second = srv.ssl
    make_crl(two.a, crl, signer_key=two.b.ca_key)  # a bad replacement: refused, the old one stays
    with caplog.at_level(logging.ERROR, logger="nmosauth_lite.tls"):
        assert not tls.reload(srv)
    assert srv.ssl is second and "bad signature" in caplog.text and crl in caplog.text
    os.unlink(crl)
    assert not tls.reload(srv) and srv.ssl is second


def test_reload_refuses_certificates_with_other_names_when_names_are_fixed(two, tmp_path):
    other = make_test_pki(str(tmp_path / "other"), dns_names=["elsewhere.test"])
    cert, key = str(tmp_path / "node.pem"), str(tmp_path / "node.key")
    for src, dst in ((two.a.cert, cert), (two.a.key, key)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    tls = ServerTLS([(cert, key)], fixed_names=True)  # ipmx: the audience was read from them (SEC-32)
    srv = types.SimpleNamespace(ssl=tls.start())
    for src, dst in ((other.cert, cert), (other.key, key)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    old = srv.ssl
    assert not tls.reload(srv) and srv.ssl is old


def test_without_cryptography_openssl_still_judges_at_the_handshake(two, tmp_path, monkeypatch, caplog):
    # devices without `cryptography`: no start-up signature check, but OpenSSL fails closed (SEC-98)
    revoking = make_crl(two.a, str(tmp_path / "a.pem"), [two.a_bad[0]])
    forged = make_crl(two.a, str(tmp_path / "forged.pem"), signer_key=two.b.ca_key)
    monkeypatch.setitem(__import__("sys").modules, "cryptography", None)
    assert [i["state"] for i in check_crl_files([revoking], [two.a.ca_cert])] == ["unchecked"]
    with caplog.at_level(logging.WARNING, logger="nmosauth_lite.tls"):
        ctx = ServerTLS([(two.a.cert, two.a.key)], client_ca=[two.a.ca_cert], client_cert="optional",
                        client_crl=[forged]).start()
    assert "cryptography is not installed" in caplog.text
    assert handshake_error(ctx, client(two.a, two.a_good)) == "CRL signature failure"
    ctx = server(two.a, [two.a.ca_cert], [revoking])
    assert handshake_error(ctx, client(two.a, two.a_bad)) == "certificate revoked"


def _chain(directory):
    """root -> intermediate -> client leaf (the leaf file carries the intermediate too), and a CRL
    from each CA; returns the paths and the CA keys."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(cn, issuer, key, signer, ca, path_length=None):
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer)).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return b.sign(signer, hashes.SHA256())

    rk, ik, lk = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root, inter = cert("chain root", "chain root", rk, rk, True, 1), cert("chain inter", "chain root", ik, rk, True, 0)
    leaf = cert("ctl-chain", "chain inter", lk, ik, False)
    out = {k: os.path.join(directory, k) for k in ("root.pem", "inter.pem", "leaf.pem", "leaf.key", "inter.crl",
                                                  "inter-revoking.crl", "root.crl")}
    for k, data in (("root.pem", root.public_bytes(pem)), ("inter.pem", inter.public_bytes(pem)),
                    ("leaf.pem", leaf.public_bytes(pem) + inter.public_bytes(pem)),
                    ("leaf.key", lk.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))):
        with open(out[k], "wb") as f:
            f.write(data)
    for k, issuer, key, revoked in (("inter.crl", "chain inter", ik, None), ("root.crl", "chain root", rk, None),
                                    ("inter-revoking.crl", "chain inter", ik, leaf.serial_number)):
        b = (x509.CertificateRevocationListBuilder().issuer_name(name(issuer))
             .last_update(now - datetime.timedelta(minutes=1)).next_update(now + datetime.timedelta(hours=1)))
        if revoked:
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(revoked)
                                          .revocation_date(now - datetime.timedelta(minutes=1)).build())
        with open(out[k], "wb") as f:
            f.write(b.sign(key, hashes.SHA256()).public_bytes(pem))
    return out


def test_an_intermediate_cas_crl_is_the_one_checked(two, tmp_path):
    # SEC-93: "Where a certificate is signed by an intermediate CA, the CRL must be signed by the
    # intermediate CA": the intermediate goes in --client-ca, its CRL is checked (CHECK_LEAF)
    c = _chain(str(tmp_path))
    cas = [c["root.pem"], c["inter.pem"]]
    leaf = client(two.a, (c["leaf.pem"], c["leaf.key"]))
    with pytest.raises(ConfigError, match="none of the client CAs"):  # the intermediate is not a client CA
        check_crl_files([c["inter.crl"]], [c["root.pem"]])
    assert handshake_error(server(two.a, cas, [c["inter.crl"]]), leaf) is None  # no root CRL needed
    assert handshake_error(server(two.a, cas, [c["inter-revoking.crl"], c["root.crl"]]), leaf) == \
        "certificate revoked"
