"""`nmosauth-lite attach` end to end (issue 19 §1): a real `attach` process between a Node with
no IS-10 code (plain HTTP on loopback) and a token-checking Registry (our own validator, keys
from a real `as serve` process), over verified TLS (BCP-003-01). Registration and heartbeats
carry attach's token (IS-10 CL-40, BCP-003-02 §2), never the Node's; a 401 gets one fresh token
and one retry (CL-41, BCP-N-01); a 503's Retry-After goes back to the Node and the Registry is
left alone (BCP-N-05); other targets, methods and paths are refused; hostile input is bounded.
"""

import json
import os
import re
import socket
import time
import urllib.request

import pytest

from attach_support import (DEVICE_ID, NODE_ID, REG, Attach, RegistryPeer, ServeProc, base_args, bundle,
                            device_doc, node_call, node_doc, raw_call, registry_pki)

JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_BODY = 8192


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attach")
    srv = ServeProc(tmp / "as", "localhost", lifetime=600)
    peer = attach = None
    try:
        srv.start()
        pki = registry_pki(tmp / "pki")
        ca = bundle(tmp / "trust.pem", srv.ca_file, pki.ca_cert)
        peer = RegistryPeer(tmp / "registry-keys", pki, srv.issuer, srv.ca_file)
        attach = Attach(tmp, "attach", base_args(tmp / "a1", srv, ca, "--registry", peer.url, "--max-body",
                                                 MAX_BODY, "--metrics", "127.0.0.1:0"))
        yield {"tmp": tmp, "as": srv, "pki": pki, "ca": ca, "peer": peer, "attach": attach}
    finally:
        if attach is not None:
            attach.stop()
        if peer is not None:
            peer.stop()
        srv.stop()


def registered(world):
    port = world["attach"].port
    status, _, _ = node_call(port, "POST", REG + "/resource", node_doc())
    assert status in (200, 201)
    return port


def test_registration_and_heartbeats_reach_the_registry_with_attachs_token(world):
    port, reg = world["attach"].port, world["peer"].reg
    before = len(reg.seen)
    status, headers, body = node_call(port, "POST", REG + "/resource", node_doc())
    assert status in (200, 201) and json.loads(body)["id"] == NODE_ID
    assert headers["Content-Type"] == "application/json"
    status, _, _ = node_call(port, "POST", REG + "/resource", device_doc())
    assert status in (200, 201)
    for _ in range(3):
        status, _, body = node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 200 and "health" in json.loads(body)
    seen = reg.seen[before:]
    assert [s[:3] for s in seen[2:]] == [("POST", REG + "/health/nodes/" + NODE_ID, 200)] * 3
    clients = set(s[3] for s in seen)
    assert len(clients) == 1 and None not in clients  # every call authorized, as one client (BCP-R-01)
    assert reg.owner[NODE_ID] == clients.pop()
    # GET of what was registered, and DELETE, pass too (IS-04 RegistrationAPI.raml)
    assert node_call(port, "GET", REG + "/health/nodes/" + NODE_ID)[0] == 200
    assert node_call(port, "DELETE", REG + "/resource/devices/" + DEVICE_ID)[0] == 204


def test_the_nodes_own_authorization_is_never_forwarded(world):
    port, reg = registered(world), world["peer"].reg
    before = len(reg.authorization)
    status, _, _ = node_call(port, "POST", REG + "/health/nodes/" + NODE_ID,
                             headers=[("Authorization", "Bearer the-nodes-own-secret"), ("Cookie", "s=1")])
    assert status == 200
    sent = reg.authorization[before:]
    assert len(sent) == 1 and JWT.fullmatch(sent[0].split(" ", 1)[1]) and "the-nodes-own-secret" not in sent[0]


def test_401_from_the_registry_gets_one_fresh_token_and_one_retry(world):
    # IS-10 CL-41 / BCP-003-02 BCP-N-01: the Registry refused a token it had accepted (revoked early)
    port, reg = registered(world), world["peer"].reg
    before = len(reg.seen)
    reg.faults.append(401)
    status, _, _ = node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)
    assert status == 200
    seen = reg.seen[before:]
    assert [(s[2], s[3] == "fault") for s in seen] == [(401, True), (200, False)]
    tokens = reg.authorization[-2:]
    assert tokens[0] != tokens[1]  # a fresh token, not the refused one again


def test_a_second_401_goes_back_to_the_node_without_a_loop(world):
    port, reg = registered(world), world["peer"].reg
    before = len(reg.seen)
    reg.faults.extend([401, 401])
    status, headers, _ = node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)
    assert status == 401 and "invalid_token" in headers["WWW-Authenticate"]
    assert len(reg.seen) - before == 2  # one retry, never more
    assert node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200


def test_503_with_retry_after_goes_back_to_the_node_and_the_registry_is_left_alone(world):
    # BCP-003-02 BCP-N-05: a short Retry-After means this Registry, later; not a storm of retries
    port, reg = registered(world), world["peer"].reg
    reg.faults.append((503, 2))
    before = len(reg.seen)
    status, headers, _ = node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)
    assert status == 503 and headers["Retry-After"] == "2"
    for _ in range(5):  # meanwhile attach answers itself
        status, headers, body = node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 503 and 1 <= int(headers["Retry-After"]) <= 2 and json.loads(body)["code"] == 503
    assert len(reg.seen) - before == 1
    time.sleep(2.2)
    assert node_call(port, "POST", REG + "/health/nodes/" + NODE_ID)[0] == 200


@pytest.mark.parametrize("request_bytes,status", [
    (b"POST http://evil.example.com" + REG.encode() + b"/resource HTTP/1.1\r\nHost: evil.example.com\r\n"
     b"Content-Length: 2\r\n\r\n{}", 403),
    (b"GET http://localhost.evil.example.com" + REG.encode() + b"/ HTTP/1.1\r\nHost: x\r\n\r\n", 403),
    (b"CONNECT evil.example.com:443 HTTP/1.1\r\nHost: evil.example.com:443\r\n\r\n", 405),
    (b"PUT " + REG.encode() + b"/resource HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 405),
    (b"GET /x-nmos/query/v1.3/nodes HTTP/1.1\r\nHost: x\r\n\r\n", 403),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 403),
    (b"GET " + REG.encode() + b"/resource/../../../query/v1.3/nodes HTTP/1.1\r\nHost: x\r\n\r\n", 403),
    (b"DELETE " + REG.encode() + b"/resource/nodes/not-a-uuid HTTP/1.1\r\nHost: x\r\n\r\n", 403),
])
def test_other_targets_methods_and_paths_are_refused_and_never_reach_the_registry(world, request_bytes, status):
    reg = world["peer"].reg
    before = len(reg.authorization)
    got, raw = raw_call(world["attach"].port, request_bytes.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
    assert got == status, raw[:300]
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == status and isinstance(body["error"], str)  # NMOS error JSON
    if status == 405:
        assert re.search(rb"(?i)\r\nallow: ", raw)
    assert len(reg.authorization) == before


def test_hostile_inputs_are_bounded_and_never_reach_the_registry(world):
    port, reg = world["attach"].port, world["peer"].reg
    before = len(reg.authorization)
    big = b"{" + b" " * (MAX_BODY + 10) + b"}"
    status, _, _ = node_call(port, "POST", REG + "/resource", body=big, headers=[("Content-Type", "application/json")])
    assert status == 413
    chunked = (b"POST " + REG.encode() + b"/resource HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(12)) + b"0\r\n\r\n")
    assert raw_call(port, chunked)[0] == 413
    assert raw_call(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0] in (414, 431, 400)
    assert raw_call(port, b"GET /x-nmos/registration/v1.3/%zz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 400
    assert raw_call(port, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")[0] == 400
    assert raw_call(port, b"GET " + REG.encode() + b" HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")[0] == 400
    assert len(reg.authorization) == before
    assert world["attach"].proc.poll() is None  # still serving
    assert node_call(port, "GET", REG)[0] == 200


def test_metrics_have_fixed_labels_and_logs_hold_no_token(world):
    a = world["attach"]
    registered(world)
    assert node_call(a.port, "GET", "/x-nmos/query/v1.3/nodes", headers=[("Authorization", "Bearer x.y.z")])[0] == 403
    with urllib.request.urlopen("http://%s/metrics" % a.info["metrics"], timeout=10) as r:
        text = r.read().decode()
    outcomes = set(re.findall(r'nmosauth_attach_requests_total\{outcome="([^"]+)"\}', text))
    assert {"2xx", "refused"} <= outcomes and outcomes <= {"2xx", "3xx", "4xx", "5xx", "other", "refused", "too_large", "no_token",
                                              "no_registry", "retry_later", "timeout", "unreachable"}
    assert re.search(r"nmosauth_attach_token_seconds_left \d", text)
    log = a.stderr()
    assert not JWT.search(log) and "the-nodes-own-secret" not in log
    assert "refused" in log  # refusals are logged (without the request's secrets)


def test_token_expiry_mid_run_is_invisible_to_the_node(tmp_path, world):
    # 30 s tokens (IS-10 TOK-07's floor): heartbeats for longer than one lifetime all pass, and the
    # Registry sees a second token before the first expires (CL-32: refreshed before expiry, BCP-N-07)
    srv = ServeProc(tmp_path / "as-short", "localhost", lifetime=30)
    peer = attach = None
    try:
        srv.start()
        ca = bundle(tmp_path / "trust.pem", srv.ca_file, world["pki"].ca_cert)
        peer = RegistryPeer(tmp_path / "keys", world["pki"], srv.issuer, srv.ca_file)
        attach = Attach(tmp_path, "attach-short", base_args(tmp_path / "a", srv, ca, "--registry", peer.url))
        assert node_call(attach.port, "POST", REG + "/resource", node_doc())[0] == 201
        start = time.time()
        statuses = []
        while time.time() - start < 33:
            statuses.append(node_call(attach.port, "POST", REG + "/health/nodes/" + NODE_ID)[0])
            time.sleep(1.5)
        assert set(statuses) == {200} and len(statuses) >= 15
        tokens = list(dict.fromkeys(a.split(" ", 1)[1] for a in peer.reg.authorization))
        assert len(tokens) >= 2
        assert not [s for s in peer.reg.seen if s[2] == 401]  # never sent an expired token
    finally:
        if attach is not None:
            attach.stop()
        if peer is not None:
            peer.stop()
        srv.stop()


def test_unix_socket_listen_config_table_and_sigterm(tmp_path, world):
    srv, peer = world["as"], world["peer"]
    sock_path = str(tmp_path / "attach.sock")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[client]\nissuer = "%s"\nca = "%s"\nmanufacturer = "ACME"\nproduct = "Enc"\nserial = "U1"\n'
                   '[attach]\nlisten = "unix:%s"\nregistry = ["%s"]\nsocket_mode = 0o600\n'
                   % (srv.issuer, world["ca"], sock_path, peer.url))
    a = Attach(tmp_path, "attach-unix", ["--config", str(cfg), "--state-dir", tmp_path / "state", "--key-file",
                                          tmp_path / "k" / "key", "--initial-token", srv.iat()])
    try:
        assert a.info["listen"] == "unix:" + sock_path and oct(os.stat(sock_path).st_mode & 0o777) == "0o600"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(sock_path)
        s.sendall(b"GET " + REG.encode() + b"/ HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
        s.close()
        assert data.startswith(b"HTTP/1.1 200 ")
        assert a.terminate() == 0
        assert not os.path.exists(sock_path)
    finally:
        a.stop()


@pytest.mark.parametrize("extra,message", [
    (["--listen", "0.0.0.0:0"], "loopback or a Unix socket"),
    (["--registry", "http://localhost:1"], "https://"),
    (["--registry", "https://localhost:1/x-nmos"], "scheme, host and port only"),
    (["--api", "Query!"], "not an NMOS API name"),
])
def test_unsafe_settings_are_refused_at_start(tmp_path, world, extra, message):
    import subprocess
    import sys

    from attach_support import env

    args = base_args(tmp_path, world["as"], world["ca"], "--registry", world["peer"].url) + extra
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "attach"] + [str(x) for x in args],
                       capture_output=True, text=True, timeout=60, env=env())
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_no_token_gives_503_retry_after_and_no_registry_gives_502(tmp_path, world):
    from dns_helpers import free_port

    dead = "https://localhost:%d" % free_port()
    a = Attach(tmp_path, "attach-dead-as", ["--issuer", dead + "/x-nmos/auth/v1.0", "--ca", world["ca"], "--state-dir",
                                            tmp_path / "s1", "--key-file", tmp_path / "k1" / "k", "--name", "A B C",
                                            "--listen", "127.0.0.1:0", "--registry", world["peer"].url,
                                            "--token-wait", "1", "--startup-timeout", "0"])
    try:
        status, headers, body = node_call(a.port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 503 and headers["Retry-After"] == "5" and "token" in json.loads(body)["error"]
    finally:
        a.stop()
    b = Attach(tmp_path, "attach-dead-registry", base_args(tmp_path / "b", world["as"], world["ca"], "--registry", dead,
                                                            "--connect-timeout", "2"))
    try:
        status, _, body = node_call(b.port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 502 and json.loads(body)["code"] == 502
        assert "failed" in b.stderr()
    finally:
        b.stop()


def test_a_registry_whose_certificate_is_not_trusted_gets_nothing(tmp_path, world):
    # BCP-003-01 / IS-10 CL-03: TLS is verified; with only the AS's CA, the Registry's chain fails
    reg = world["peer"].reg
    before = len(reg.authorization)
    a = Attach(tmp_path, "attach-untrusted", base_args(tmp_path / "a", world["as"], world["as"].ca_file, "--registry",
                                                        world["peer"].url))
    try:
        status, _, _ = node_call(a.port, "POST", REG + "/health/nodes/" + NODE_ID)
        assert status == 502 and len(reg.authorization) == before
        assert "certificate" in a.stderr().lower()
    finally:
        a.stop()


def test_an_oversized_registry_answer_is_cut_and_answered_502(tmp_path, world):
    # the Registry's answer is read whole but bounded (max_response); the stand-in echoes the resource
    a = Attach(tmp_path, "attach-small", base_args(tmp_path / "a", world["as"], world["ca"], "--registry",
                                                    world["peer"].url, "--max-response", 2048))
    try:
        doc = node_doc("7f0c1b7e-5a44-4c1e-8d52-0a9c6f3b2d10")
        doc["data"]["description"] = "x" * 4096
        status, _, body = node_call(a.port, "POST", REG + "/resource", doc)
        assert status == 502 and json.loads(body)["code"] == 502
        assert "over 2048 bytes" in a.stderr()
    finally:
        a.stop()


def test_node_side_tls_with_an_rsa_and_an_ecdsa_certificate(tmp_path, world):
    # issue 19 §2 (repeatable --cert/--key, aio/tlsutil) on attach's Node side: a Node that cannot use
    # loopback talks TLS; the handshake picks the certificate kind the client offers (BCP-003-01)
    import http.client
    import subprocess
    import sys

    from attach_support import env
    from tls_helpers import make_rsa_leaf, one_kind_client, peer_key_kind

    pki = world["pki"]
    rsa_cert, rsa_key = make_rsa_leaf(pki, "attach-rsa", dns_names=("localhost",))
    a = Attach(tmp_path, "attach-tls", base_args(tmp_path / "a", world["as"], world["ca"], "--registry",
                                                  world["peer"].url, "--cert", pki.cert, "--key", pki.key,
                                                  "--cert", rsa_cert, "--key", rsa_key))
    try:
        for kind in ("RSA", "EC"):
            conn = http.client.HTTPSConnection("127.0.0.1", a.port, context=one_kind_client(pki, kind), timeout=20)
            try:
                conn.connect()
                assert peer_key_kind(conn.sock) == kind
                conn.request("GET", REG + "/")
                assert conn.getresponse().status == 200  # through attach, with its token, to the Registry
            finally:
                conn.close()
    finally:
        a.stop()
    args = base_args(tmp_path / "b", world["as"], world["ca"], "--registry", world["peer"].url, "--cert", pki.cert)
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "attach"] + [str(x) for x in args],
                       capture_output=True, text=True, timeout=60, env=env())
    assert r.returncode == 2 and "in pairs" in r.stderr
