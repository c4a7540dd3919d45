"""`protect --profile ipmx` with client certificates and the IPMX TLS policy (issue 21), as real
processes on loopback: the mTLS client_id binding (SEC-44, SEC-45) against client certificates
from the test CA (CN, SAN in another case, wildcard SANs, sub as CN, none), the IS-10 profile
binding nothing, the settings (flags and the [protect] table); and `openssl s_client` against
protect: listed suites negotiate, CBC / non-PFS suites and TLS 1.1 are refused (SEC-81..SEC-85),
key-exchange groups outside SEC-82 refused once OpenSSL is configured as docs/ipmx.md shows,
and a start-up warning (or refusal, --tls-groups require) when it is not.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys

import pytest

import ipmx_corpus as C
from ipmx_realclock import shifted_token
from test_ipmx_protect import REPO, Child, jwks_path, m, node_pki, upstream  # noqa: F401 (fixtures)
from tls_helpers import IPMX_GROUPS_CONF as GROUPS_CONF, make_client_leaf, needs_openssl, run_tool
from nmosauth_lite.aio.tlsutil import client_context
from nmosauth_lite.commands import protect
from nmosauth_lite.errors import ConfigError

READ = C.NODEP  # the upstream echoes it; the token reads it by its node scope


@pytest.fixture(scope="module")
def leaves(node_pki):  # noqa: F811
    return {
        "cn": make_client_leaf(node_pki, "p-cn", "ctl-1"),
        "san": make_client_leaf(node_pki, "p-san", "controller", ["other.example", "Ctl-1"]),
        "wild": make_client_leaf(node_pki, "p-wild", "*.example", ["ctl-*", "*.ctl-1"]),
        "sub": make_client_leaf(node_pki, "p-sub", "operator@example.com"),
    }


def args(node_pki, upstream, jwks_path, profile="ipmx", extra=()):  # noqa: F811
    a = ["protect", "--profile", profile, "--listen", "127.0.0.1:0", "--upstream",
         "https://127.0.0.1:%d" % upstream.port, "--jwks", jwks_path, "--cert", node_pki.cert,
         "--key", node_pki.key, "--ca", node_pki.ca_cert, "--audit", "off"]
    if profile == "ipmx":
        a += ["--oaim", "0", "--instance-id", C.INSTANCE]
    else:
        a += ["--audience", C.NODE]
    return a + list(extra)


def call(node_pki, port, tok, leaf=None):  # noqa: F811
    ctx = client_context(node_pki.ca_cert)
    if leaf is not None:
        ctx.load_cert_chain(*leaf)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=15)
    try:
        conn.request("GET", READ, headers={"Authorization": "Bearer " + tok})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def test_protect_binds_client_id_to_the_client_certificate(m, node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    # --client-ca alone: client certificates optional under ipmx
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert]), tmp_path, "mtls")
    try:
        tok = shifted_token(m, {}, {}, 0)  # client_id ctl-1, sub operator@example.com
        wrong = []
        for leaf, want in ((None, "forwarded"), ("cn", "forwarded"), ("san", "forwarded"), ("wild", 401),
                           ("sub", 401)):
            before = len(upstream.node.hits)
            status, headers, body = call(node_pki, p.port, tok, leaves.get(leaf))
            forwarded = len(upstream.node.hits) > before
            got = "forwarded" if forwarded and status not in (401, 403) else status
            if got != want or (want == 401 and "error=invalid_token" not in headers["WWW-Authenticate"]):
                wrong.append((leaf, want, got))
        assert wrong == []
        # SEC-45: a token whose sub is the certificate's CN, client_id another name
        tok2 = shifted_token(m, {"sub": "ctl-1", "client_id": "ctl-2"}, {}, 0)
        assert call(node_pki, p.port, tok2, leaves["cn"])[0] == 401
    finally:
        p.stop()


def test_protect_required_client_certificates_and_is10(m, node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    req = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--client-cert",
                                                           "required"]), tmp_path, "required")
    try:
        tok = shifted_token(m, {}, {}, 0)
        with pytest.raises((OSError, http.client.HTTPException)):  # no certificate: no handshake (SEC-99)
            call(node_pki, req.port, tok)
        assert call(node_pki, req.port, tok, leaves["cn"])[0] not in (400, 401, 403)
    finally:
        req.stop()
    # IS-10 with client certificates: TLS checks them, nothing binds the token (IS-10 unchanged)
    is10 = Child(args(node_pki, upstream, jwks_path, "is-10", ["--client-ca", node_pki.ca_cert, "--client-cert",
                                                               "optional"]), tmp_path, "is10")
    try:
        tok = m.token(aud=[C.NODE], exp=int(__import__("time").time()) + 300, iat=None)
        assert call(node_pki, is10.port, tok, leaves["wild"])[0] not in (400, 401, 403)
    finally:
        is10.stop()


def _settings(argv, config=None, tmp_path=None):
    p = argparse.ArgumentParser()
    protect.add_arguments(p)
    a = p.parse_args(argv)
    if config is not None:
        path = tmp_path / "protect.toml"
        path.write_text(config)
        a.config = str(path)
    return protect.load_settings(a)


BASE = ["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--cert", "c", "--key", "k", "--jwks", "j"]


def test_settings_for_client_certificates(tmp_path):
    ipmx = BASE + ["--profile", "ipmx", "--instance-id", "X"]
    assert _settings(ipmx)["client_cert"] == "none"
    assert _settings(ipmx + ["--client-ca", "ca.pem"])["client_cert"] == "optional"  # ipmx + a CA
    assert _settings(ipmx + ["--client-ca", "a.pem", "--client-ca", "b.pem", "--client-cert", "required"])[
        "client_ca"] == ["a.pem", "b.pem"]
    cfg = _settings(ipmx, 'client_ca = "ca.pem"\nclient_cert = "required"\ntls_groups = "require"\n', tmp_path)
    assert (cfg["client_ca"], cfg["client_cert"], cfg["tls_groups"]) == (["ca.pem"], "required", "require")
    for bad in (ipmx + ["--client-cert", "optional"],  # no CA
                BASE + ["--audience", "n", "--client-ca", "ca.pem"],  # is-10: the mode must be said
                ipmx + ["--client-ca", "ca.pem", "--client-cert", "none"]):
        with pytest.raises(ConfigError):
            _settings(bad)
    with pytest.raises(ConfigError):
        _settings(ipmx, 'client_cert = "sometimes"\nclient_ca = "x"\n', tmp_path)


# --- the TLS policy, seen by openssl s_client ------------------------------------------------------

def s_client(port, pki, *opts):  # noqa: F811
    return run_tool(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", pki.ca_cert,
                     "-servername", "localhost"] + list(opts), input=b"")


def negotiated(out):
    text = out.stdout.decode("latin-1")
    for line in text.splitlines():
        if "Cipher is " in line and "(NONE)" not in line:
            return line.split("Cipher is ", 1)[1].strip()
    return None


@needs_openssl
def test_ipmx_tls_suites_and_versions(node_pki, upstream, jwks_path, tmp_path):  # noqa: F811
    p = Child(args(node_pki, upstream, jwks_path), tmp_path, "suites")
    try:
        # SEC-83 (the node certificate is ECDSA: the ECDSA forms of the listed suites), SEC-84
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            assert negotiated(s_client(p.port, node_pki, "-tls1_2", "-cipher", suite)) == suite
        for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
            assert negotiated(s_client(p.port, node_pki, "-tls1_3", "-ciphersuites", suite)) == suite
        # SEC-85: everything else is refused: CBC, SHA-1 CBC, non-PFS, TLS 1.3 CCM_8, TLS 1.1
        for opts in (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"),
                     ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"),
                     ("-tls1_2", "-cipher", "AES128-GCM-SHA256"),
                     ("-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_8_SHA256"),
                     ("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")):
            out = s_client(p.port, node_pki, *opts)
            assert out.returncode != 0 and negotiated(out) is None, opts
        # SEC-81: TLS 1.3 is preferred
        assert b"TLSv1.3" in s_client(p.port, node_pki).stdout
    finally:
        p.stop()
    err = open(p.err_path).read()
    assert "key-exchange groups TR-10-SEC forbids" in err  # OpenSSL's default groups: said at start-up


@needs_openssl
def test_ipmx_key_exchange_groups_with_the_documented_openssl_configuration(node_pki, upstream, jwks_path,  # noqa: F811
                                                                            tmp_path):
    conf = tmp_path / "ipmx-openssl.cnf"
    conf.write_text(GROUPS_CONF)
    p = Child(args(node_pki, upstream, jwks_path, extra=["--tls-groups", "require"]), tmp_path, "groups",
              env={"OPENSSL_CONF": str(conf)})
    try:
        for group, shown in (("X25519", "X25519"), ("P-256", "ECDH, prime256v1"), ("P-521", "ECDH, secp521r1"),
                             ("X448", "X448")):  # SEC-82
            out = s_client(p.port, node_pki, "-tls1_3", "-groups", group)
            assert negotiated(out) and ("Server Temp Key: " + shown).encode() in out.stdout, group
        # TLS 1.2: the client's groups also bound the curve of the ECDSA certificate (P-256 here)
        assert negotiated(s_client(p.port, node_pki, "-tls1_2", "-groups", "P-256"))
        for group in ("P-384", "ffdhe2048"):  # SEC-85: not listed
            out = s_client(p.port, node_pki, "-groups", group)
            assert out.returncode != 0 and negotiated(out) is None, group
    finally:
        p.stop()
    assert "forbids" not in open(p.err_path).read()


def test_tls_groups_require_refuses_to_start_with_openssl_defaults(node_pki, upstream, jwks_path):  # noqa: F811
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    out = subprocess.run([sys.executable, "-m", "nmosauth_lite"] + args(node_pki, upstream, jwks_path,
                                                                       extra=["--tls-groups", "require"]),
                         cwd=REPO, env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and out.stdout == b""
    assert b"Groups = X25519:P-256:P-521:X448" in out.stderr and b"Traceback" not in out.stderr


def test_sec49_counters_for_client_certificates(m, node_pki, upstream, jwks_path, leaves, tmp_path):  # noqa: F811
    import urllib.request

    from nmosauth_lite.aio.tlsutil import make_test_pki

    other = make_test_pki(str(tmp_path / "other-ca"), client_name="ctl-1")
    p = Child(args(node_pki, upstream, jwks_path, extra=["--client-ca", node_pki.ca_cert, "--metrics",
                                                         "127.0.0.1:0"]), tmp_path, "metrics")
    try:
        tok = shifted_token(m, {}, {}, 0)
        assert call(node_pki, p.port, tok, leaves["wild"])[0] == 401  # the binding: an invalid token (d)
        with pytest.raises((OSError, http.client.HTTPException)):  # another CA: no handshake (f, SEC-99)
            call(node_pki, p.port, tok, (other.client_cert, other.client_key))
        counts = {}
        for _ in range(50):  # the refused handshake is counted when the server sees the failure
            with urllib.request.urlopen("http://%s/metrics" % p.info["metrics"], timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("nmosauth_ipmx_status_total{"):
                        counts[line.split('counter="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
            if counts.get("client_cert_failed"):
                break
            __import__("time").sleep(0.1)
        assert counts["invalid_token"] == 1 and counts["client_cert_failed"] == 1
    finally:
        p.stop()
    assert "client certificate refused" in open(p.err_path).read()
