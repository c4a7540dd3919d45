"""`attach --profile ipmx` end to end (TR-10-SEC §6): the Node is not an OAuth client (SEC-04,
SEC-63), so no authorization server runs here at all. A real `attach` process forwards a Node's
plain-HTTP registrations and heartbeats to TLS-only stand-in Registries on loopback: RAP 2 with
the device's client certificate over mutual TLS (SEC-79), RAP 1 over HTTPS with the Registry
authenticated (SEC-78); no Authorization header ever reaches a Registry (SEC-75). A Registry that
refuses the client certificate gives the Node a clear 502 in NMOS error JSON (SEC-99), and
settings that contradict the profile are refused at start (RAP 0, SEC-80; OAuth flags, SEC-04).
"""

import json
import os
import subprocess
import sys

import pytest

from attach_support import (NODE_ID, REG, Attach, OpenSSLRegistryPeer, TlsRegistryPeer, device_doc, env, ipmx_args,
                            node_call, node_doc, registry_pki)
from tls_helpers import make_client_leaf

DEVICE_CN = "encoder-7.attach.test"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attach-ipmx")
    pki = registry_pki(tmp / "pki")
    cert, key = make_client_leaf(pki, "device", DEVICE_CN, dns_names=(DEVICE_CN,))  # the device's TCC (SEC-93)
    mutual = TlsRegistryPeer(pki, client_ca=pki.ca_cert)  # RAP 2: client certificates required
    attach = None
    try:
        attach = Attach(tmp, "attach-rap2", ipmx_args(pki.ca_cert, "--rap", 2, "--client-cert", cert, "--client-key",
                                                      key, "--registry", mutual.url))
        yield {"tmp": tmp, "pki": pki, "cert": cert, "key": key, "mutual": mutual, "attach": attach}
    finally:
        if attach is not None:
            attach.stop()
        mutual.stop()


def test_rap2_registration_and_heartbeats_pass_over_mutual_tls_with_no_token(world):
    attach, reg = world["attach"], world["mutual"].reg
    assert attach.info["profile"] == "ipmx" and attach.info["rap"] == 2
    status, _, body = node_call(attach.port, "POST", REG + "/resource", node_doc())
    assert status == 201 and json.loads(body)["id"] == NODE_ID
    assert node_call(attach.port, "POST", REG + "/resource", device_doc())[0] == 201
    for _ in range(2):
        assert node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
    # SEC-79: the Registry knew the device by its client certificate; SEC-75: no token was sent
    assert reg.owner[NODE_ID] == DEVICE_CN and reg.heartbeats[NODE_ID] == 2
    assert set(reg.clients) == {DEVICE_CN} and reg.authorization and set(reg.authorization) == {None}
    assert "TLS only, RAP 2: mutual TLS" in attach.stderr()


def test_the_nodes_own_authorization_never_reaches_the_registry(world):
    # the Node's credentials are never forwarded (attach_rules.outbound_headers), under ipmx as under is-10
    attach, reg = world["attach"], world["mutual"].reg
    before = len(reg.authorization)
    status, _, _ = node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID,
                             headers=[("Authorization", "Bearer node.own.token"), ("Cookie", "s=1")])
    assert status in (200, 404)
    assert reg.authorization[before:] == [None]


def test_not_an_open_proxy_under_ipmx(world):
    # other hosts, methods and paths are refused before any TLS connection (attach_rules.admit)
    attach, reg = world["attach"], world["mutual"].reg
    before = len(reg.seen)
    assert node_call(attach.port, "GET", "http://evil.test" + REG + "/")[0] == 403
    assert node_call(attach.port, "GET", "/x-nmos/query/v1.3/nodes")[0] == 403
    assert node_call(attach.port, "PUT", REG + "/resource")[0] == 405
    assert len(reg.seen) == before


def test_a_registry_that_does_not_trust_the_client_certificate_gives_the_node_a_clear_502(tmp_path, world):
    # SEC-79, SEC-99: an OpenSSL Registry refuses a client certificate from a CA it does not trust
    # (TLS alert unknown_ca); the Node hears why in NMOS error JSON, the log names the cause, and
    # no request reached the Registry. The right certificate passes the same server (interop).
    other = registry_pki(tmp_path / "other-ca")
    cert, key = make_client_leaf(other, "stranger", "stranger.attach.test")
    peer = OpenSSLRegistryPeer(world["pki"], world["pki"].ca_cert)
    good = bad = None
    try:
        bad = Attach(tmp_path, "attach-stranger", ipmx_args(world["pki"].ca_cert, "--rap", 2, "--client-cert", cert,
                                                            "--client-key", key, "--registry", peer.url))
        status, headers, body = node_call(bad.port, "POST", REG + "/health/nodes/" + NODE_ID)
        doc = json.loads(body)
        assert status == 502 and doc["code"] == 502 and headers["Content-Type"] == "application/json"
        assert "refused attach's TLS client certificate (TLSV1_ALERT_UNKNOWN_CA)" in doc["error"]
        assert peer.seen == []
        log = bad.stderr()
        assert "refused attach's TLS client certificate" in log and "Traceback" not in log
        good = Attach(tmp_path, "attach-device", ipmx_args(world["pki"].ca_cert, "--rap", 2, "--client-cert",
                                                           world["cert"], "--client-key", world["key"], "--registry",
                                                           peer.url))
        assert node_call(good.port, "POST", REG + "/resource", node_doc(), headers=[("Authorization", "Bearer x")])[0] \
            == 201
        assert peer.seen == [("POST", REG + "/resource", None, DEVICE_CN)]  # SEC-75: no token, SEC-79: the TCC
    finally:
        for a in (good, bad):
            if a is not None:
                a.stop()
        peer.stop()


class SilentRefusalPeer:
    """A Registry that ends each connection right after the TLS handshake with a TCP reset and no
    alert, as some TLS stacks do when they refuse a client certificate after a TLS 1.3 handshake
    (or when a reset overtakes the alert). Our own servers send the alert now: this one must not."""

    def __init__(self, pki):
        import socket
        import ssl
        import struct
        import threading

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.cert, pki.key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "https://localhost:%d" % self.port
        self.handshakes = 0
        self.running = True

        def serve():
            while self.running:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    continue
                try:
                    conn.settimeout(10)
                    tls = ctx.wrap_socket(conn, server_side=True)
                    self.handshakes += 1
                    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    tls.close()  # a reset, no close_notify, no alert
                except OSError:
                    conn.close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


def test_a_registry_that_closes_without_an_alert_is_named_as_the_likely_refusal(tmp_path, world):
    # a Registry that cuts the connection after the handshake with no alert: attach cannot know
    # for sure, so it says what is likely (RAP 2, SEC-79), still a clear 502
    other = registry_pki(tmp_path / "other-ca")
    cert, key = make_client_leaf(other, "stranger", "stranger.attach.test")
    peer = SilentRefusalPeer(world["pki"])
    a = None
    try:
        a = Attach(tmp_path, "attach-closed", ipmx_args(world["pki"].ca_cert, "--rap", 2, "--client-cert", cert,
                                                        "--client-key", key, "--registry", peer.url))
        status, _, body = node_call(a.port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 502 and "may not accept attach's client certificate" in json.loads(body)["error"]
        assert peer.handshakes >= 1 and "Traceback" not in a.stderr()
    finally:
        if a is not None:
            a.stop()
        peer.stop()


def test_our_own_tls_server_refuses_a_client_certificate_with_an_alert(tmp_path, world):
    # protect and our stand-ins send OpenSSL's alert on a failed handshake (SEC-99): attach names it
    other = registry_pki(tmp_path / "other-ca")
    cert, key = make_client_leaf(other, "stranger", "stranger.attach.test")
    reg = world["mutual"].reg
    before = len(reg.seen)
    a = Attach(tmp_path, "attach-alert", ipmx_args(world["pki"].ca_cert, "--rap", 2, "--client-cert", cert,
                                                   "--client-key", key, "--registry", world["mutual"].url))
    try:
        status, _, body = node_call(a.port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 502 and "refused attach's TLS client certificate" in json.loads(body)["error"]
        assert len(reg.seen) == before and "Traceback" not in a.stderr()
    finally:
        a.stop()


def test_rap1_meeting_a_mutual_tls_registry_gets_a_clear_502(tmp_path, world):
    # A RAP 1 attach (no client certificate) meets a RAP 2 Registry (SEC-77: all Registries share
    # one policy; this one wants a certificate, TLS alert certificate_required): a clear 502
    peer = OpenSSLRegistryPeer(world["pki"], world["pki"].ca_cert)
    a = None
    try:
        a = Attach(tmp_path, "attach-nocert", ipmx_args(world["pki"].ca_cert, "--rap", 1, "--registry", peer.url))
        status, _, body = node_call(a.port, "POST", REG + "/resource", node_doc())
        assert status == 502 and "client certificate" in json.loads(body)["error"]
        assert peer.seen == [] and "Traceback" not in a.stderr()
    finally:
        if a is not None:
            a.stop()
        peer.stop()


def test_rap1_against_a_server_auth_only_registry_from_the_config_file(tmp_path, world):
    # SEC-78: RAP 1 is HTTPS with the Registry authenticated, anyone may register; settings from
    # the [attach] table, trust from the shared [client] table (its issuer ignored with a warning)
    open_reg = TlsRegistryPeer(world["pki"])
    config = tmp_path / "device.toml"
    config.write_text('[client]\nca = "%s"\nissuer = "https://as.example/x-nmos/auth/v1.0"\n\n'
                      '[attach]\nprofile = "ipmx"\nrap = 1\nregistry = ["%s"]\nlisten = "127.0.0.1:0"\n'
                      % (world["pki"].ca_cert, open_reg.url))
    a = None
    try:
        a = Attach(tmp_path, "attach-rap1", ["--config", config])
        assert a.info["rap"] == 1
        assert node_call(a.port, "POST", REG + "/resource", node_doc())[0] == 201
        assert node_call(a.port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200
        assert open_reg.reg.owner[NODE_ID] == "anyone" and set(open_reg.reg.authorization) == {None}
        assert "client.issuer not used" in a.stderr()
    finally:
        if a is not None:
            a.stop()
        open_reg.stop()


def test_a_registry_that_is_not_trusted_gets_nothing_under_ipmx(tmp_path, world):
    # SEC-78/SEC-93 CTCA: the Registry's certificate is verified against the configured CA bundle
    other = registry_pki(tmp_path / "other-ca")
    reg = world["mutual"].reg
    before = len(reg.seen)
    a = Attach(tmp_path, "attach-untrusted", ipmx_args(other.ca_cert, "--rap", 2, "--client-cert", world["cert"],
                                                       "--client-key", world["key"], "--registry",
                                                       world["mutual"].url))
    try:
        status, _, body = node_call(a.port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 502 and "certificate failed verification" in json.loads(body)["error"]
        assert len(reg.seen) == before
    finally:
        a.stop()


def run_attach(args):
    return subprocess.run([sys.executable, "-m", "nmosauth_lite", "attach"] + [str(x) for x in args],
                          capture_output=True, text=True, timeout=60, env=env())


@pytest.mark.parametrize("extra,message", [
    ([], "needs --rap 1"),  # no silent default: the spec's default RAP 0 is refused (SEC-80)
    (["--rap", 0], "rap 0 is registration over plain HTTP"),
    (["--rap", 3], "rap must be 1 or 2"),
    (["--rap", 2], "--rap 2 (mutual TLS, SEC-79) needs --client-cert"),
    (["--rap", 1, "--issuer", "https://as.example/x-nmos/auth/v1.0"], "--issuer: under --profile ipmx"),
    (["--rap", 1, "--discover"], "not an OAuth client"),
    (["--rap", 1, "--name", "A B C"], "not an OAuth client"),
    (["--rap", 1, "--registry", "http://localhost:1"], "https://"),
])
def test_settings_that_contradict_the_ipmx_profile_are_refused_at_start(tmp_path, world, extra, message):
    args = ipmx_args(world["pki"].ca_cert, *extra)
    if "--registry" not in extra:
        args += ["--registry", world["mutual"].url]
    r = run_attach(args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_client_certificate_settings_are_checked(tmp_path, world):
    ca, url = world["pki"].ca_cert, world["mutual"].url
    r = run_attach(ipmx_args(ca, "--rap", 1, "--client-cert", world["cert"], "--client-key", world["key"],
                             "--registry", url))
    assert r.returncode == 2 and "are for --rap 2" in r.stderr
    loose = tmp_path / "loose.key"
    with open(world["key"], "rb") as src:
        loose.write_bytes(src.read())
    os.chmod(loose, 0o644)  # a private key others can read is refused (0600)
    r = run_attach(ipmx_args(ca, "--rap", 2, "--client-cert", world["cert"], "--client-key", loose, "--registry", url))
    assert r.returncode == 2 and "has mode 0644: make it 0600" in r.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(open(world["pki"].key, "rb").read())
    os.chmod(wrong, 0o600)  # the key of another certificate: named, not a traceback
    r = run_attach(ipmx_args(ca, "--rap", 2, "--client-cert", world["cert"], "--client-key", wrong, "--registry", url))
    assert r.returncode == 2 and "does not belong to --client-cert" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("extra", [["--rap", 2], ["--client-cert", "x.pem"]])
def test_ipmx_settings_are_refused_under_is10(tmp_path, world, extra):
    # the IS-10 profile stays as it was: IPMX-only settings there are a mistake, said at start
    r = run_attach(["--issuer", "https://as.example/x-nmos/auth/v1.0", "--ca", world["pki"].ca_cert, "--name",
                    "A B C", "--listen", "127.0.0.1:0", "--registry", world["mutual"].url] + extra)
    assert r.returncode == 2 and "belongs to --profile ipmx" in r.stderr
