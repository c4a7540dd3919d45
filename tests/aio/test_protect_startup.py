"""A cold `protect` and an authorization server starting at the same moment (issue 12 §1): the
first request succeeds (it waits, bounded, for the key fetch in flight), READY reaches systemd
only after the issuer's keys are in, and an AS that is down delays READY by --startup-timeout at
most, after which requests get the RS-07 503 + Retry-After. A real `protect` subprocess over TLS.
"""

import os
import socket
import threading
import time

import pytest

from minting import Minter
from nmos_upstream import NodeUpstream
from test_keystore_startup import late_as  # noqa: F401 (the fixture: an AS that starts late)
from test_protect import AUD, SELF, Protect, bearer, call
from tls_helpers import ServerThread, pki, server_ssl  # noqa: F401

assert pki and late_as  # the fixtures, imported for pytest


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture(scope="module")
def upstream(pki):
    with ServerThread(NodeUpstream(), ssl=server_ssl(pki)) as srv:
        yield srv


class Notify:
    """A NOTIFY_SOCKET (sd_notify) that records each datagram with the AS's JWKS hit count then."""

    def __init__(self, path, standin):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.got = []
        self.standin = standin
        self.ready = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.got.append((data, self.standin.hits["jwks"], time.monotonic()))
            if b"READY=1" in data:
                self.ready.set()

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


def args_for(pki, upstream, late_as, tmp_path, *extra):
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(open(pki.ca_cert, "rb").read() + open(late_as.pki.ca_cert, "rb").read())
    return ["--listen", "127.0.0.1:0", "--upstream", "https://127.0.0.1:%d" % upstream.port, "--audience", AUD,
            "--issuer", late_as.issuer, "--ca", str(bundle), "--state-dir", str(tmp_path / "state"),
            "--cert", pki.cert, "--key", pki.key, "--audit", "off"] + list(extra)


def token(m, issuer):
    now = int(time.time())
    return m.token("RS512", claims=m.claims(iss=issuer, aud=[AUD], iat=now - 10, exp=now + 600))


def test_first_request_succeeds_when_the_as_starts_at_the_same_moment(pki, upstream, late_as, tmp_path, m,
                                                                      monkeypatch):
    sock_path = str(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", sock_path)
    notify = Notify(sock_path, late_as)
    p = Protect(args_for(pki, upstream, late_as, tmp_path), tmp_path, "cold")  # default --key-wait 2
    try:
        late_as.start_late(0.3)  # the AS comes up now, after protect listens
        t0 = time.monotonic()
        status, h, body = call(pki, p.port, "GET", SELF, bearer(token(m, late_as.issuer)))
        took = time.monotonic() - t0
        assert status == 200, (status, body[:200])  # before: 503 from a cold key store
        assert took < 4, took
        assert notify.ready.wait(10)
        ready = [g for g in notify.got if b"READY=1" in g[0]][0]
        assert ready[1] >= 1  # READY only once the keys were fetched
        assert "no keys for" not in p.stderr()
    finally:
        p.kill()
        notify.close()


def test_as_down_delays_ready_by_the_startup_timeout_only(pki, upstream, late_as, tmp_path, m, monkeypatch):
    sock_path = str(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", sock_path)
    notify = Notify(sock_path, late_as)
    p = Protect(args_for(pki, upstream, late_as, tmp_path, "--startup-timeout", "1", "--key-wait", "0.3"),
                tmp_path, "down")
    try:
        t0 = time.monotonic()
        assert notify.ready.wait(10), "READY never sent with the AS down"
        assert time.monotonic() - t0 < 5
        status, h, body = call(pki, p.port, "GET", SELF, bearer(token(m, late_as.issuer)))
        assert status == 503 and h["Retry-After"] == "2", (status, body, p.stderr()[-3000:])  # RS-07 remains
        assert "no keys for" in p.stderr()
    finally:
        p.kill()
        notify.close()
    assert os.path.exists(sock_path)
