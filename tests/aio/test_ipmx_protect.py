"""The IPMX profile in real processes and with real key fetches (issue 21): `protect --profile ipmx`
decides the verdict corpus (tests/ipmx_corpus.py) over real TLS in front of a real upstream, with
the audience names read from its own certificate (SEC-32) and the SEC-49 counters on --metrics;
the key store under the profile fetches over verified TLS from a real stand-in authorization
server, refuses keys 36 h after they were obtained (SEC-54, an injected clock), logs it
(SEC-56), refreshes on the 23 h + U(0, 3600) s schedule (SEC-52), backs off 1..64 s (SEC-55),
never fetches because of a token (SEC-57) and does not use an earlier run's keys (SEC-53).
"""

import http.client
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

import ipmx_corpus as C
from ipmx_realclock import shifted_token
from minting import Minter, encode_token, public_jwk
from nmos_upstream import NodeUpstream
from standin_as import StandinAS
from tls_helpers import ServerThread, run, server_ssl
from nmosauth_lite import TokenValidator
from nmosauth_lite.aio.keystore import KeyStore
from nmosauth_lite.aio.tlsutil import certificate_names, client_context, make_test_pki

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Child:
    """A `python -m nmosauth_lite ...` child; stopped by PID at the end."""

    def __init__(self, args, tmp, name, env=None):
        self.err_path = os.path.join(str(tmp), name + ".stderr")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite"] + list(args), cwd=REPO,
                                         stdout=subprocess.PIPE, stderr=err,
                                         env=None if env is None else dict(os.environ, **env))
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], 30)
            line = self.proc.stdout.readline() if ready else b""
            if not line:
                raise AssertionError("did not start: " + open(self.err_path).read()[-2000:])
            self.info = json.loads(line)
            self.port = int(self.info["listen"].rsplit(":", 1)[1])
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture(scope="module")
def node_pki(tmp_path_factory):
    # The Node's own certificate carries the names the corpus's aud entries are judged against.
    return make_test_pki(str(tmp_path_factory.mktemp("ipmx-pki")), dns_names=C.CERT_NAMES, ip_addresses=("127.0.0.1",))


@pytest.fixture(scope="module")
def upstream(node_pki):
    node = NodeUpstream()
    with ServerThread(node, ssl=server_ssl(node_pki)) as srv:
        srv.node = node
        yield srv


@pytest.fixture(scope="module")
def jwks_path(m, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ipmx-jwks") / "jwks.json")
    with open(path, "w") as f:
        json.dump(m.jwks, f)
    return path


def start(node_pki, upstream, jwks_path, tmp, name, config, extra=()):
    cfg = C.CONFIGS[config]
    args = ["protect", "--profile", "ipmx", "--listen", "127.0.0.1:0", "--upstream",
            "https://127.0.0.1:%d" % upstream.port, "--jwks", jwks_path, "--cert", node_pki.cert,
            "--key", node_pki.key, "--ca", node_pki.ca_cert, "--audit", "off", "--oaim", str(cfg["oaim"])]
    if "instance_id" in cfg:
        args += ["--instance-id", cfg["instance_id"]]
    if "grant_policy" in cfg:
        args += ["--grant-policy", cfg["grant_policy"]]
    for g in cfg.get("guest_paths", ()):
        args += ["--guest-path", g]
    if "claims_location" in cfg:
        args += ["--claims-location", cfg["claims_location"]]
    return Child(args + list(extra), tmp, name)


def call(node_pki, port, method, path, headers=()):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(node_pki.ca_cert), timeout=15)
    try:
        conn.request(method, path, headers=dict(headers))
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def test_protect_reads_the_audience_names_from_its_own_certificate(node_pki):  # SEC-32
    assert certificate_names(node_pki.cert) == [n.lower() for n in C.CERT_NAMES]


# Not through protect: upgrades (a query-token upgrade below, over a real socket) and TRACE
# (protect's HTTP server answers 405 before any guard, in both profiles).
_HTTP_CASES = [c for c in C.CASES if c[4] not in ("GET websocket", "TRACE")]


def test_protect_decides_the_corpus(m, node_pki, upstream, jwks_path, tmp_path):
    children = {}
    try:
        for config in sorted(set(c[7] for c in _HTTP_CASES)):
            children[config] = start(node_pki, upstream, jwks_path, tmp_path, "protect-" + config, config)
        wrong = []
        for cid, sec, claims, header, method, path, status, config, now in _HTTP_CASES:
            tok = shifted_token(m, claims, header, now, cid)
            before = len(upstream.node.hits)
            got, headers, body = call(node_pki, children[config].port, method, path,
                                      [("Authorization", "Bearer " + tok)])
            forwarded = len(upstream.node.hits) > before  # the upstream records the routes it has
            if status == 200:
                ok = got not in (400, 401, 403, 503) and "WWW-Authenticate" not in headers  # forwarded
            else:
                ok = got == status and not forwarded and json.loads(body)["code"] == status \
                    and headers["WWW-Authenticate"].startswith('Bearer realm="')
            if not ok:
                wrong.append((cid, sec, status, got))
        assert wrong == []
        # SEC-11: a query token is never read, also on a WebSocket upgrade
        tok = shifted_token(m, {"scope": "query"}, {}, 0)
        got, _, _ = call(node_pki, children["oaim0"].port, "GET", "/x-nmos/query/v1.3/ws?access_token=" + tok,
                         [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
        assert got == 401
        # SEC-37: `/` needs a token
        assert call(node_pki, children["oaim0"].port, "GET", "/")[0] == 401
    finally:
        for c in children.values():
            c.stop()


def test_protect_metrics_expose_the_sec49_counters(m, node_pki, upstream, jwks_path, tmp_path):
    p = start(node_pki, upstream, jwks_path, tmp_path, "protect-metrics", "oaim0", ["--metrics", "127.0.0.1:0"])
    try:
        call(node_pki, p.port, "GET", C.CONN)
        call(node_pki, p.port, "GET", C.CONN, [("Authorization", "Bearer " + shifted_token(m, {"scope": "node"}, {}, 0))])
        call(node_pki, p.port, "PATCH", C.CONN,
             [("Authorization", "Bearer " + shifted_token(m, {"aud": [C.OTHER]}, {}, 0))])
        call(node_pki, p.port, "GET", C.CONN, [("Authorization", "Bearer " + shifted_token(m, {}, {}, 3600 + 1800))])
        with urllib.request.urlopen("http://%s/metrics" % p.info["metrics"], timeout=10) as r:
            text = r.read().decode()
        counts = {}
        for line in text.splitlines():
            if line.startswith("nmosauth_ipmx_status_total{"):
                name = line.split('counter="', 1)[1].split('"', 1)[0]
                counts[name] = float(line.rsplit(" ", 1)[1])
        assert counts["no_token"] == 1 and counts["ro_denied_scope"] == 1
        assert counts["rw_denied_aud"] == 1 and counts["expired_token"] == 1
        assert counts["no_keys"] == 0 and counts["key_fetch_failed"] == 0 and counts["invalid_token"] == 0
        assert set(counts) <= set(C_STATUS) | {"other"}
    finally:
        p.stop()


C_STATUS = __import__("nmosauth_lite.ipmx", fromlist=["STATUS_COUNTERS"]).STATUS_COUNTERS


def test_protect_refuses_an_audience_under_ipmx(node_pki, tmp_path):
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "protect", "--profile", "ipmx", "--listen",
                        "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--audience", "a.example.com",
                        "--issuer", "https://a.test", "--cert", node_pki.cert, "--key", node_pki.key],
                       cwd=REPO, capture_output=True, timeout=30)
    assert r.returncode == 2 and b"certificate names" in r.stderr


# --- keys under the profile (SEC-50..SEC-57) ------------------------------------------------------

class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def standin(tmp_path, m):
    s = StandinAS(str(tmp_path), dns_names=("localhost",))
    s.jwks = {"keys": [public_jwk(m.ec256, "ec-256")]}
    yield s
    s.stop()


def _token(m, iss, at, **over):
    claims = C.claims_for(dict({"iss": iss, "exp": at + 3600}, **over))
    return encode_token({"alg": "ES256", "typ": "at+jwt", "kid": "ec-256"}, claims, m.ec256, "ES256")


def test_keys_refused_36h_after_they_were_obtained_then_a_refresh_restores(standin, tmp_path, m, caplog):
    async def go():
        clock = Clock(time.time())
        store = KeyStore([standin.issuer], state_dir=str(tmp_path / "s"), ca_file=standin.pki.ca_cert, clock=clock,
                         rng=lambda: 0.5, profile="ipmx", algorithms=("RS256", "RS512", "ES256", "ES512"))
        v = TokenValidator(keys=store, profile="ipmx", clock=clock, **C.CONFIGS["oaim0"])
        try:
            t0 = clock.t
            assert v.check(_token(m, standin.issuer, t0), "GET", C.CONN).status_counter == "no_keys"  # SEC-53
            assert await store.prime(5.0) == []  # SEC-51: the boot fetch
            state = store._issuers[standin.issuer]
            assert state.next_refresh - state.fetched_at == 23 * 3600 + 0.5 * 3600  # SEC-52
            assert v.check(_token(m, standin.issuer, t0), "GET", C.CONN).status == 200
            clock.t = t0 + 36 * 3600 - 1
            tok = _token(m, standin.issuer, clock.t)
            assert v.check(tok, "GET", C.CONN).status == 200
            clock.t = t0 + 36 * 3600  # SEC-54: 36 h after they were obtained
            d = v.check(tok, "GET", C.CONN)
            assert (d.status, d.error, d.status_counter) == (401, "invalid_token", "no_keys")  # cached token too
            d = v.check(_token(m, standin.issuer, clock.t, jti="fresh"), "GET", C.CONN)
            assert (d.status, d.status_counter) == (401, "no_keys")  # SEC-48: fail closed, not 503
            with caplog.at_level(logging.WARNING, logger="nmosauth_lite.keys"):
                assert store.note_expiry(clock.t) == [standin.issuer]
                store.note_expiry(clock.t)
            assert sum("invalidated" in r.getMessage() for r in caplog.records) == 1  # SEC-56, logged once
            fetches = standin.hits["jwks"]
            await store.refresh(force=True)
            assert standin.hits["jwks"] + standin.hits["304"] > fetches
            assert v.check(tok, "GET", C.CONN).status == 200
        finally:
            await store.close()
    run(go(), timeout=60)


def test_an_unknown_kid_never_causes_a_fetch(standin, tmp_path, m):  # SEC-57
    async def go():
        store = KeyStore([standin.issuer], state_dir=str(tmp_path / "s"), ca_file=standin.pki.ca_cert, profile="ipmx",
                         algorithms=("RS256", "RS512", "ES256", "ES512"))
        v = TokenValidator(keys=store, profile="ipmx", **C.CONFIGS["oaim0"])
        try:
            await store.prime(5.0)
            before = store.fetch_count
            tok = encode_token({"alg": "ES256", "typ": "JWT", "kid": "rotated"},
                               C.claims_for({"iss": standin.issuer, "exp": time.time() + 3600}), m.ec256,
                               "ES256")
            assert v.check(tok, "GET", C.CONN).status == 200  # kid unknown, but a held key verifies it
            other = encode_token({"alg": "RS256", "typ": "JWT", "kid": "rsa-9"},
                                 C.claims_for({"iss": standin.issuer, "exp": time.time() + 3600}), m.rsa, "RS256")
            d = v.check(other, "GET", C.CONN)
            assert d.status == 401 and d.retry_after is None  # never 503 while fetching: nothing is fetched
            import asyncio

            await asyncio.sleep(0.2)
            assert store.fetch_count == before and not store.pending
        finally:
            await store.close()
    run(go(), timeout=60)


def test_earlier_runs_keys_wait_for_this_runs_fetch_and_backoff_is_1_to_64_s(standin, tmp_path, m):  # SEC-53, SEC-55
    async def go():
        state = str(tmp_path / "s")
        first = KeyStore([standin.issuer], state_dir=state, ca_file=standin.pki.ca_cert, profile="ipmx",
                         algorithms=("ES256",))
        await first.prime(5.0)
        await first.close()
        standin.mode = "500"
        clock = Clock(time.time())
        second = KeyStore([standin.issuer], state_dir=state, ca_file=standin.pki.ca_cert, profile="ipmx",
                          algorithms=("ES256",), clock=clock, rng=lambda: 0.9)
        v = TokenValidator(keys=second, profile="ipmx", clock=clock, **C.CONFIGS["oaim0"])
        try:
            assert v.check(_token(m, standin.issuer, clock.t), "GET", C.CONN).status_counter == "no_keys"
            s = second._issuers[standin.issuer]
            delays = [s.fetch_failed(clock.t, lambda: 0.9, "x") for _ in range(9)]
            assert delays == [1, 2, 4, 8, 16, 32, 64, 64, 64]
            await second.refresh(force=True)
            assert second.fetch_failures == 1  # SEC-49 g
        finally:
            await second.close()
        is10 = KeyStore([standin.issuer], state_dir=state, ca_file=standin.pki.ca_cert)  # IS-10 keeps RS-04
        assert is10.keys_for(standin.issuer)
        await is10.close()
    run(go(), timeout=60)


@pytest.mark.parametrize("content", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                     b"-----BEGIN CERTIFICATE-----\n" + b"A" * (2 << 20) + b"\n-----END CERTIFICATE-----\n",
                                     b"-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n"])
def test_certificate_names_refuse_hostile_files_with_valueerror(tmp_path, content):
    path = tmp_path / "cert.pem"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        certificate_names(str(path))
    with pytest.raises(ValueError):
        certificate_names(str(tmp_path / "missing.pem"))


def test_protect_with_a_certificate_it_cannot_read_names_from_exits_2(node_pki, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"garbage")
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "protect", "--profile", "ipmx", "--oaim", "1",
                        "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--jwks", "/dev/null",
                        "--cert", str(bad), "--key", node_pki.key], cwd=REPO, capture_output=True, timeout=30)
    assert r.returncode == 2 and b"Traceback" not in r.stderr
