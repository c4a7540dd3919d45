"""Finding the issuer on a device (issue 22 item 3; commands/issuers.py): `--discover --domain D`
and `--connect HOST=ADDR` on protect, verify, jwks refresh, register and token.

Real peers: an HTTPS stand-in authorization server (and a real `as serve` for the client side)
whose certificate names a host this machine cannot resolve (`*.nmos-reach.test`), a real dnsmasq
advertising it, and the CLI as child processes. Only what DNS-SD finds is trusted (IS-10 RS-43,
DS-05, DS-14); the override changes where we connect, never whose certificate we accept (CL-03).
"""

import json
import os
import subprocess
import sys
import time

import pytest

from dns_helpers import Dnsmasq
from minting import Minter, public_jwk
from nmos_upstream import NodeUpstream
from standin_as import StandinAS
from test_protect import AUD, SELF, Protect, bearer, call
from tls_helpers import ServerThread, pki, server_ssl  # noqa: F401

assert pki  # the fixture, imported for pytest

DOMAIN = "nmos-reach.test"
HOST = "auth1." + DOMAIN  # resolvable only through the DNS-SD answer (or --connect)
PATH = "/x-nmos/auth/v1.0"


def cli(*args, stdin=None):
    env = dict(os.environ)
    for k in ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite"] + [str(a) for a in args], capture_output=True,
                       text=True, input=stdin, timeout=90, env=env)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reach")
    m = Minter()
    s = StandinAS(str(tmp), dns_names=(HOST,), ip_addresses=(), path=PATH)
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    name = "as1._nmos-auth._tcp." + DOMAIN
    conf = ['ptr-record=_nmos-auth._tcp.%s,"%s"' % (DOMAIN, name),
            'srv-host="%s",%s,%d,0,0' % (name, HOST, s.port),
            'txt-record="%s","api_proto=https","api_ver=v1.0","pri=10","api_selector=x-nmos/auth/v1.0"' % name,
            "host-record=%s,127.0.0.1" % HOST]
    (tmp / "dns").mkdir()
    d = Dnsmasq(tmp / "dns", conf, local_domains=[DOMAIN])
    d.start()
    s.m, s.dns = m, d
    try:
        yield s
    finally:
        d.stop()
        s.stop()


def discover_args(world):
    return ["--discover", "--domain", DOMAIN, "--nameserver", "%s:%d" % world.dns.server]


def test_jwks_refresh_discover_trusts_what_dns_sd_advertises(world, tmp_path):
    code, out, err = cli("jwks", "refresh", *discover_args(world), "--ca", world.pki.ca_cert,
                         "--state-dir", tmp_path / "state")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["issuer"] == world.issuer and entry["kids"] == ["rsa-1"]


def test_jwks_refresh_connect_reaches_an_unresolvable_issuer(world, tmp_path):
    base = ["jwks", "refresh", "--issuer", world.issuer, "--ca", world.pki.ca_cert, "--state-dir", tmp_path / "s"]
    code, _, err = cli(*base)
    assert code == 1  # the machine's resolver does not know the name
    code, out, err = cli(*base, "--connect", "%s=127.0.0.1" % HOST)
    assert code == 0, err
    assert json.loads(out)[0]["kids"] == ["rsa-1"]


def test_connect_still_verifies_the_certificate_for_the_named_host(world, tmp_path):
    """IS-10 CL-03: the override moves the connection, not the trust: a certificate that does not
    name the URL's host is refused even when the address is right."""
    other = world.issuer.replace(HOST, "auth2." + DOMAIN)
    code, out, err = cli("jwks", "refresh", "--issuer", other, "--ca", world.pki.ca_cert, "--state-dir",
                         tmp_path / "s", "--connect", "auth2.%s=127.0.0.1" % DOMAIN)
    assert code == 1
    assert "certificate" in json.loads(out)[0]["last_error"].lower()


def test_verify_discover_and_connect(world, tmp_path):
    m = world.m
    tok = m.token("RS512", claims=m.claims(iss=world.issuer, aud=["node1.example.com"]))
    base = ["verify", "--ca", world.pki.ca_cert, "--audience", "node1.example.com", "--now", str(m.NOW),
            "--path", "/x-nmos/node/v1.3/self", "--token", tok]
    code, out, err = cli(*base, *discover_args(world), "--state-dir", tmp_path / "a")
    assert code == 0, (out, err)
    code, out, err = cli(*base, "--issuer", world.issuer, "--connect", "%s=127.0.0.1" % HOST,
                         "--state-dir", tmp_path / "b")
    assert code == 0, (out, err)
    other = m.token("RS512", claims=m.claims(iss="https://elsewhere.%s" % DOMAIN, aud=["node1.example.com"]))
    code, out, _ = cli(*base[:-1], other, *discover_args(world), "--state-dir", tmp_path / "a")
    assert code == 1 and "issuer" in json.loads(out)["reason"]  # only what DNS-SD found is trusted


@pytest.mark.parametrize("argv,needle", [
    (["verify", "--audience", "a.example.com", "--jwks", "x.json", "--discover"], "do not go with --jwks"),
    (["verify", "--audience", "a.example.com", "--issuer", "https://a.test", "--domain", "x.test"],
     "go with --discover"),
    (["jwks", "refresh", "--issuer", "https://a.test", "--connect", "a.test"], "HOST=ADDRESS"),
    (["jwks", "refresh"], "--discover"),
    (["register", "--issuer", "https://a.test", "--name", "n", "--scope", "registration", "--connect", "x=1.2.3"],
     "--connect"),
])
def test_bad_discovery_settings_exit_2_in_one_line(argv, needle, tmp_path):
    code, out, err = cli(*argv, "--state-dir", tmp_path)
    assert code == 2 and needle in err and "Traceback" not in err and len(err.splitlines()) == 1, err


@pytest.fixture(scope="module")
def upstream(pki):
    with ServerThread(NodeUpstream(), ssl=server_ssl(pki)) as srv:
        yield srv


def test_protect_discover_trusts_the_advertised_issuer_at_start_up(world, pki, upstream, tmp_path):
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(open(pki.ca_cert, "rb").read() + open(world.pki.ca_cert, "rb").read())
    p = Protect(["--listen", "127.0.0.1:0", "--upstream", "https://127.0.0.1:%d" % upstream.port,
                 "--audience", AUD, *discover_args(world), "--ca", bundle, "--state-dir", tmp_path / "state",
                 "--cert", pki.cert, "--key", pki.key, "--audit", "off", "--startup-timeout", "20"],
                tmp_path, "protect-discover")
    try:
        # DNS-SD is asked before priming and before READY; wait for the line logged after both
        deadline = time.monotonic() + 60
        while "protecting " not in p.stderr() and time.monotonic() < deadline and p.proc.poll() is None:
            time.sleep(0.05)
        m = world.m
        now = int(time.time())
        tok = m.token("RS512", claims=m.claims(iss=world.issuer, aud=[AUD], iat=now - 10, exp=now + 600))
        status, _, _ = call(pki, p.port, "GET", SELF, bearer(tok))
        assert status == 200, p.stderr()[-2000:]
        alien = m.token("RS512", claims=m.claims(iss="https://auth9.%s" % DOMAIN, aud=[AUD], iat=now - 10,
                                                 exp=now + 600))
        assert call(pki, p.port, "GET", SELF, bearer(alien))[0] == 401
        assert "trusting discovered issuer %s" % world.issuer in p.stderr()
        assert p.terminate() == 0
    finally:
        p.kill()


def test_protect_connect_fetches_keys_from_the_given_address(world, pki, upstream, tmp_path):
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(open(pki.ca_cert, "rb").read() + open(world.pki.ca_cert, "rb").read())
    p = Protect(["--listen", "127.0.0.1:0", "--upstream", "https://127.0.0.1:%d" % upstream.port,
                 "--audience", AUD, "--issuer", world.issuer, "--connect", "%s=127.0.0.1" % HOST, "--ca", bundle,
                 "--state-dir", tmp_path / "state", "--cert", pki.cert, "--key", pki.key, "--audit", "off"],
                tmp_path, "protect-connect")
    try:
        now = int(time.time())
        m = world.m
        tok = m.token("RS512", claims=m.claims(iss=world.issuer, aud=[AUD], iat=now - 10, exp=now + 600))
        status, _, _ = call(pki, p.port, "GET", SELF, bearer(tok))
        assert status == 200, p.stderr()[-2000:]
        assert p.terminate() == 0
    finally:
        p.kill()
