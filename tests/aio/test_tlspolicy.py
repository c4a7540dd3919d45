"""The IPMX TLS policy (aio/tlspolicy.py; TR-10-SEC SEC-81..SEC-85, issue 21): the suites an ipmx
context offers, the refusal of a context offering an unlisted one, the key-exchange group probe
with OpenSSL's defaults and with the configuration docs/ipmx.md gives, and the key store's client
context under the profile. protect itself, seen by openssl s_client: test_ipmx_mtls_protect.py."""

import os
import ssl
import subprocess
import sys

import pytest

from tls_helpers import IPMX_GROUPS_CONF as GROUPS_CONF, pki  # noqa: F401 (pki: a fixture)
from nmosauth_lite.aio.keystore import KeyStore
from nmosauth_lite.aio.tlspolicy import IPMX_TLS12_CIPHERS, IPMX_TLS13_CIPHERS, check_ipmx_ciphers, group_policy
from nmosauth_lite.aio.tlsutil import client_context, server_context
from nmosauth_lite.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def names(ctx):
    return [c["name"] for c in ctx.get_ciphers()]


def test_ipmx_contexts_offer_listed_suites_only(pki):  # noqa: F811
    for ctx in (server_context(pki.cert, pki.key, policy="ipmx"), client_context(pki.ca_cert, policy="ipmx")):
        offered = names(ctx)
        assert "ECDHE-RSA-AES128-GCM-SHA256" in offered and "TLS_AES_128_GCM_SHA256" in offered  # MUST
        assert all(n in IPMX_TLS12_CIPHERS or n in IPMX_TLS13_CIPHERS for n in offered)  # SEC-85
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2  # SEC-81


def test_a_context_offering_an_unlisted_suite_is_refused():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256")  # a CBC suite (MAY, not offered)
    with pytest.raises(ConfigError, match="ECDHE-RSA-AES128-SHA256"):
        check_ipmx_ciphers(ctx)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")  # the MUST suite missing
    with pytest.raises(ConfigError, match="needs ECDHE-RSA-AES128-GCM-SHA256"):
        check_ipmx_ciphers(ctx)


def test_unknown_policy_is_refused(pki):  # noqa: F811
    with pytest.raises(ValueError):
        server_context(pki.cert, pki.key, policy="tls1.0")


def _probe(pki, env):  # noqa: F811
    code = ("import sys; from nmosauth_lite.aio.tlsutil import server_context, group_policy; "
            "print(group_policy(server_context(sys.argv[1], sys.argv[2], policy='ipmx')))")
    out = subprocess.run([sys.executable, "-c", code, pki.cert, pki.key], cwd=REPO, env=env,
                         capture_output=True, timeout=60)
    return out.stdout.decode().strip()


def test_group_probe_tells_openssl_defaults_from_the_documented_configuration(pki, tmp_path):  # noqa: F811
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    assert _probe(pki, env) == "openssl-default"  # secp384r1 and ffdhe* accepted (not SEC-82 groups)
    conf = tmp_path / "ipmx-openssl.cnf"
    conf.write_text(GROUPS_CONF)
    env["OPENSSL_CONF"] = str(conf)
    assert _probe(pki, env) == "restricted"
    conf.write_text(GROUPS_CONF.replace("X25519:P-256:P-521:X448", "X25519:X448"))
    assert _probe(pki, env) == "broken"  # P-256 is a MUST (SEC-82)


def test_group_probe_in_process(pki):  # noqa: F811
    if os.environ.get("OPENSSL_CONF"):
        pytest.skip("an OpenSSL configuration is set for this process")
    assert group_policy(server_context(pki.cert, pki.key, policy="ipmx")) == "openssl-default"


def test_key_store_fetches_with_the_ipmx_suites(pki, tmp_path):  # noqa: F811  SEC-58
    ks = KeyStore(["https://auth.example.com"], state_dir=str(tmp_path), ca_file=pki.ca_cert, profile="ipmx")
    server = ks._servers["https://auth.example.com"][0]
    offered = names(ks._client(server)._ssl_context())
    assert set(offered) - set(IPMX_TLS13_CIPHERS) == set(IPMX_TLS12_CIPHERS)
    is10 = KeyStore(["https://auth.example.com"], state_dir=str(tmp_path / "b"), ca_file=pki.ca_cert)
    assert is10._client(is10._servers["https://auth.example.com"][0])._ssl is None  # built lazily, as before
