"""`protect --client-crl` as real processes on loopback (TR-10-SEC SEC-93 NESTCRL, SEC-94, SEC-98,
SEC-99): revoked client certificates refused at the handshake and counted as client_cert_failed,
good ones served, two CAs' CRLs both honoured; start-up refusals naming the file (bad signature,
unreadable, no --client-ca); an expired CRL at start-up and one expiring while protect runs;
SIGHUP reloads (new connections only; a bad CRL keeps the old lists); `openssl s_client`.
"""

import http.client
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from ipmx_realclock import shifted_token
from test_ipmx_mtls_protect import BASE, _settings, args, call
from test_ipmx_protect import REPO, Child, jwks_path, m, node_pki, upstream  # noqa: F401 (fixtures)
from tls_helpers import make_client_leaf, make_crl, needs_openssl, run_tool
from nmosauth_lite.aio.tlsutil import client_context, make_test_pki
from nmosauth_lite.errors import ConfigError

REFUSED = (OSError, http.client.HTTPException)  # SEC-99: no HTTP answer is possible, the connection ends


@pytest.fixture(scope="module")
def leaves(node_pki, tmp_path_factory):  # noqa: F811
    other = make_test_pki(str(tmp_path_factory.mktemp("crl-other")), ca_name="second client CA")
    return {"good": make_client_leaf(node_pki, "crl-good", "ctl-1"),
            "bad": make_client_leaf(node_pki, "crl-bad", "ctl-1"),
            "other": other,
            "other_good": make_client_leaf(other, "crl-o-good", "ctl-1"),
            "other_bad": make_client_leaf(other, "crl-o-bad", "ctl-1")}


def served(node_pki, port, tok, leaf):  # noqa: F811
    try:
        return call(node_pki, port, tok, leaf)[0] not in (400, 401, 403)
    except REFUSED:
        return False


def wait_for(path, text, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def start_fails(argv):
    out = subprocess.run([sys.executable, "-m", "nmosauth_lite"] + argv, cwd=REPO, capture_output=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and out.stdout == b"" and b"Traceback" not in out.stderr
    return out.stderr.decode()


def test_revoked_refused_good_served_two_cas(m, node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    o = leaves["other"]
    cas = tmp_path / "cas.pem"  # both CAs also verify protect's upstream; one file or two, both work
    crl_a = make_crl(node_pki, str(tmp_path / "a.pem"), [leaves["bad"][0]])
    crl_b = make_crl(o, str(tmp_path / "b.der"), [leaves["other_bad"][0]], der=True)
    cas.write_bytes(open(o.ca_cert, "rb").read())
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--client-ca", str(cas),
                                                         "--client-crl", crl_a, "--client-crl", crl_b,
                                                         "--metrics", "127.0.0.1:0"]), tmp_path, "two")
    try:
        tok = shifted_token(m, {}, {}, 0)  # client_id ctl-1: every leaf here names it (SEC-44)
        got = {k: served(node_pki, p.port, tok, leaves[k]) for k in ("good", "bad", "other_good", "other_bad")}
        assert got == {"good": True, "bad": False, "other_good": True, "other_bad": False}
        assert served(node_pki, p.port, tok, None)  # optional: no certificate, the token alone
        count = 0
        for _ in range(50):  # SEC-49 f: a revoked certificate is a failed client certificate
            with urllib.request.urlopen("http://%s/metrics" % p.info["metrics"], timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith('nmosauth_ipmx_status_total{counter="client_cert_failed"'):
                        count = float(line.rsplit(" ", 1)[1])
            if count == 2:
                break
            time.sleep(0.1)
        assert count == 2
    finally:
        p.stop()
    assert "certificate revoked" in open(p.err_path).read()


def test_start_up_refuses_unusable_crls_naming_the_file(node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    ca = ["--client-ca", node_pki.ca_cert]
    forged = make_crl(node_pki, str(tmp_path / "forged.pem"), signer_key=leaves["other"].ca_key)
    err = start_fails(args(node_pki, upstream, jwks_path, extra=ca + ["--client-crl", forged]))
    assert forged in err and "bad signature" in err  # SEC-98
    foreign = make_crl(leaves["other"], str(tmp_path / "foreign.pem"))
    err = start_fails(args(node_pki, upstream, jwks_path, extra=ca + ["--client-crl", foreign]))
    assert foreign in err and "none of the client CAs" in err  # SEC-95
    missing = str(tmp_path / "missing.pem")
    assert missing in start_fails(args(node_pki, upstream, jwks_path, extra=ca + ["--client-crl", missing]))
    assert "--client-crl needs --client-ca" in start_fails(args(node_pki, upstream, jwks_path,
                                                                extra=["--client-crl", forged]))


def test_expired_crl_at_start_up_and_while_running(m, node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    # Expired at start-up: protect starts (clients without certificates, other CAs keep working) and
    # says loudly that this CA's certificates are refused; OpenSSL refuses them (SEC-98).
    old = make_crl(node_pki, str(tmp_path / "old.pem"), next_update=-60, this_update=-3600)
    tok = shifted_token(m, {}, {}, 0)
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--client-crl", old]),
              tmp_path, "expired")
    try:
        assert not served(node_pki, p.port, tok, leaves["good"])
        assert served(node_pki, p.port, tok, None)
    finally:
        p.stop()
    err = open(p.err_path).read()
    assert "ERROR" in err and old in err and "expired at its nextUpdate" in err and "CRL has expired" in err
    # Expiring while in use: served until nextUpdate, refused from then, and said when it happens
    soon = make_crl(node_pki, str(tmp_path / "soon.pem"), next_update=4)
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--client-crl", soon]),
              tmp_path, "soon")
    try:
        assert served(node_pki, p.port, tok, leaves["good"])
        assert wait_for(p.err_path, "expired at its nextUpdate", timeout=15)
        assert not served(node_pki, p.port, tok, leaves["good"])
    finally:
        p.stop()
    assert "CRL has expired" in open(p.err_path).read()


def test_sighup_reloads_crls_for_new_connections(m, node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    crl = str(tmp_path / "live.pem")
    make_crl(node_pki, crl)
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--client-crl", crl,
                                                         "--client-cert", "required"]), tmp_path, "hup")
    tok = shifted_token(m, {}, {}, 0)
    ctx = client_context(node_pki.ca_cert)
    ctx.load_cert_chain(*leaves["bad"])
    held = http.client.HTTPSConnection("127.0.0.1", p.port, context=ctx, timeout=15)
    try:
        held.request("GET", "/x-nmos/node/v1.3/self", headers={"Authorization": "Bearer " + tok})
        first = held.getresponse()
        first.read()
        assert first.status not in (400, 401, 403)
        make_crl(node_pki, crl, [leaves["bad"][0]])
        p.proc.send_signal(signal.SIGHUP)
        assert wait_for(p.err_path, "TLS configuration reloaded")
        assert not served(node_pki, p.port, tok, leaves["bad"])  # new connections: the new list (SEC-94)
        assert served(node_pki, p.port, tok, leaves["good"])
        held.request("GET", "/x-nmos/node/v1.3/self", headers={"Authorization": "Bearer " + tok})
        again = held.getresponse()  # the session made before the reload keeps its configuration (SEC-94)
        again.read()
        assert again.status not in (400, 401, 403)
        # a replacement that fails validation: logged, the revoking list stays in use
        make_crl(node_pki, crl, signer_key=leaves["other"].ca_key)
        p.proc.send_signal(signal.SIGHUP)
        assert wait_for(p.err_path, "TLS reload failed")
        assert not served(node_pki, p.port, tok, leaves["bad"]) and served(node_pki, p.port, tok, leaves["good"])
        assert p.proc.poll() is None
    finally:
        held.close()
        p.stop()
    err = open(p.err_path).read()
    assert "bad signature" in err and crl in err and "Traceback" not in err


def test_settings_for_client_crls(tmp_path):
    ipmx = BASE + ["--profile", "ipmx", "--instance-id", "X", "--client-ca", "ca.pem"]
    assert _settings(ipmx + ["--client-crl", "a.crl", "--client-crl", "b.der"])["client_crl"] == ["a.crl", "b.der"]
    assert _settings(ipmx, 'client_crl = "a.crl"\n', tmp_path)["client_crl"] == ["a.crl"]
    assert _settings(ipmx)["client_crl"] is None
    with pytest.raises(ConfigError, match="needs --client-ca"):
        _settings(BASE + ["--profile", "ipmx", "--instance-id", "X", "--client-crl", "a.crl"])


def test_is10_profile_honours_crls_too(node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    # the CRL is TLS's business: the same under is-10 (no client_id binding there)
    crl = make_crl(node_pki, str(tmp_path / "a.pem"), [leaves["bad"][0]])
    p = Child(args(node_pki, upstream, jwks_path, "is-10", ["--client-ca", node_pki.ca_cert, "--client-cert",
                                                            "required", "--client-crl", crl]), tmp_path, "is10")
    try:
        got = {}
        for name in ("good", "bad"):
            try:
                got[name] = call(node_pki, p.port, "x", leaves[name])[0]  # a bad token: 401 once served
            except REFUSED:
                got[name] = "refused"
        assert got == {"good": 401, "bad": "refused"}
    finally:
        p.stop()


@needs_openssl
def test_openssl_s_client_with_a_revoked_certificate(node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    crl = make_crl(node_pki, str(tmp_path / "a.pem"), [leaves["bad"][0]])
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--client-crl", crl]),
              tmp_path, "s_client")
    try:
        def s_client(leaf):
            out = run_tool(["openssl", "s_client", "-connect", "127.0.0.1:%d" % p.port, "-CAfile", node_pki.ca_cert,
                            "-cert", leaf[0], "-key", leaf[1], "-servername", "localhost", "-ign_eof"],
                           input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return (out.stdout + out.stderr).decode(errors="replace")
        assert "certificate revoked" in s_client(leaves["bad"])  # the server's TLS alert (SEC-99)
        good = s_client(leaves["good"])
        assert "certificate revoked" not in good and "HTTP/1.1 401" in good  # served: no token, 401
    finally:
        p.stop()
