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


def test_second_issuer_key_not_held_after_startup_is_503_retry_after_then_200(pki, upstream, late_as, tmp_path, m):
    """The AMWA tool's "No Matching Public Keys" sequence (IS-10 RS-06, RS-07; issue 19 §2) with
    default settings: a second trusted issuer, down at start-up, comes up later and its token
    (no kid, as the tool mints them) gets 503 + Retry-After + WWW-Authenticate at once and starts
    a fetch; after Retry-After seconds the same token gets 200. Waiting and answering 200 at
    once is what the tool fails ("Incorrect response code, expected 401 or 503")."""
    from standin_as import StandinAS

    from minting import public_jwk

    primary = StandinAS(str(tmp_path / "primary"), path="/x-nmos/auth/v1.0")
    primary.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    late_as.jwks = {"keys": [public_jwk(m.rsa2)]}  # the tool's mock publishes no kid either
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(b"".join(open(p, "rb").read() for p in (pki.ca_cert, late_as.pki.ca_cert,
                                                                 primary.pki.ca_cert)))
    args = ["--listen", "127.0.0.1:0", "--upstream", "https://127.0.0.1:%d" % upstream.port, "--audience", AUD,
            "--issuer", primary.issuer, "--issuer", late_as.issuer, "--ca", str(bundle),
            "--state-dir", str(tmp_path / "state"), "--cert", pki.cert, "--key", pki.key, "--audit", "off",
            "--startup-timeout", "1"]  # --key-wait stays at its default (2 s)
    p = Protect(args, tmp_path, "two-issuers")
    try:
        first = token(m, primary.issuer)
        deadline = time.monotonic() + 20
        while "no keys for %s" % late_as.issuer not in p.stderr():  # the start-up window has ended
            assert time.monotonic() < deadline, p.stderr()[-2000:]
            time.sleep(0.1)
        assert call(pki, p.port, "GET", SELF, bearer(first))[0] == 200
        late_as.start_late(0).listening.wait(5)  # the tool starts its second mock AS now
        now = int(time.time())
        second = m.token("RS512", key=m.rsa2, kid=None,
                         claims=m.claims(iss=late_as.issuer, aud=[AUD], iat=now - 10, exp=now + 600))
        hits = late_as.hits["jwks"]
        status, h, body = call(pki, p.port, "GET", SELF, bearer(second))
        assert status == 503, (status, body[:200])  # before: a 2 s wait, the fetch, then 200
        assert h["Retry-After"] == "2" and h["WWW-Authenticate"].startswith("Bearer ")
        assert ",error=invalid_token," in h["WWW-Authenticate"]
        time.sleep(int(h["Retry-After"]))  # as the tool does
        status, h, body = call(pki, p.port, "GET", SELF, bearer(second))
        assert status == 200, (status, body[:200], p.stderr()[-2000:])
        assert late_as.hits["jwks"] > hits  # the 503 started a fetch of the new issuer's keys
    finally:
        p.kill()
        primary.stop()
