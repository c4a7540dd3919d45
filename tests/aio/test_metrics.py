"""Prometheus metrics (issue 14 item 2): our stdlib text writer read back by prometheus_client's own
parser, then `protect --metrics` and `as serve --metrics` as subprocesses, scraped before and after
real traffic: the counters move, and the metrics never appear on the public port."""

import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from test_probe_cli import NODE, REPO, Child, demo_node, probe, wait_for_text  # noqa: F401
from tls_helpers import client_ssl, pki  # noqa: F401
from nmosauth_lite.issuer import metadata_url
from nmosauth_lite.aio.metrics import MAX_SERIES, Registry
from nmosauth_lite.probe.issuer import KEY_FILE, SUBDIR, Minter, _load_or_make_key


def families(text):
    return dict((f.name, f) for f in text_string_to_metric_families(text))


def value(fams, family, sample, **labels):
    """The sample's value (0 when absent)."""
    for s in fams[family].samples if family in fams else ():
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0


def scrape(addr):
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return families(r.read().decode())


# --- the writer -------------------------------------------------------------------------------------
def test_text_format_round_trips_through_prometheus_client_parser():
    r = Registry()
    c = r.counter("nmosauth_decisions", "Requests decided", ("status", "reason"))
    c.inc(401, 'no "token"\nhere\\')
    c.inc(200, "ok", amount=3)
    g = r.gauge("nmosauth_key_age_seconds", "age", ("issuer",), collect=lambda: {("https://a",): 12.5})
    h = r.histogram("nmosauth_upstream_response_seconds", "latency", ("outcome",), buckets=(0.01, 0.1))
    h.observe("answered", value=0.05)
    h.observe("answered", value=5.0)
    fams = families(r.render().decode())
    assert fams["nmosauth_decisions"].type == "counter"  # _total stripped by the parser: the convention
    assert value(fams, "nmosauth_decisions", "nmosauth_decisions_total", status="401",
                 reason='no "token"\nhere\\') == 1
    assert value(fams, "nmosauth_decisions", "nmosauth_decisions_total", status="200") == 3
    assert value(fams, "nmosauth_key_age_seconds", "nmosauth_key_age_seconds", issuer="https://a") == 12.5
    assert value(fams, "nmosauth_upstream_response_seconds", "nmosauth_upstream_response_seconds_bucket",
                 le="0.1") == 1
    assert value(fams, "nmosauth_upstream_response_seconds", "nmosauth_upstream_response_seconds_bucket",
                 le="+Inf") == 2
    assert value(fams, "nmosauth_upstream_response_seconds", "nmosauth_upstream_response_seconds_sum") == 5.05
    assert g.kind == "gauge"


def test_label_sets_are_capped_so_attacker_strings_cannot_grow_memory():
    r = Registry()
    c = r.counter("nmosauth_decisions", "d", ("status", "reason"))
    for i in range(MAX_SERIES * 3):
        c.inc(401, "alg x%d not allowed" % i)
    fams = families(r.render().decode())
    assert len(fams["nmosauth_decisions"].samples) == MAX_SERIES + 1
    assert value(fams, "nmosauth_decisions", "nmosauth_decisions_total", status="other") == MAX_SERIES * 2


# --- protect --metrics ----------------------------------------------------------------------------------
def _get(pki, port, path, token=None):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_ssl(pki), timeout=15)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_protect_metrics_move_with_decisions_cache_keys_upstream_and_rejects(tmp_path, pki, demo_node):  # noqa: F811
    state = str(tmp_path / "probe")
    issuer = Child(["probe", "--issuer-only", "--json", "--state-dir", state], tmp_path, "issuer")
    try:
        url = issuer.info["issuer"]
        node = Child(["protect", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:%d" % demo_node.port,
                      "--audience", NODE, "--issuer", url, "--ca", issuer.info["ca_file"], "--cert", pki.cert,
                      "--key", pki.key, "--state-dir", str(tmp_path / "node"), "--audit", "off",
                      "--metrics", "127.0.0.1:0"], tmp_path, "protect")
        try:
            wait_for_text(node.err_path, "new key")
            addr = node.info["metrics"]
            port = int(node.info["listen"].rsplit(":", 1)[1])
            before = scrape(addr)
            assert value(before, "nmosauth_decisions", "nmosauth_decisions_total") == 0
            assert value(before, "nmosauth_key_fetches", "nmosauth_key_fetches_total") >= 1
            assert value(before, "nmosauth_key_age_seconds", "nmosauth_key_age_seconds", issuer=url) >= 0
            assert value(before, "nmosauth_keys", "nmosauth_keys", issuer=url) == 1
            mint = Minter(url, NODE, {"a": _load_or_make_key(os.path.join(state, SUBDIR, KEY_FILE))})
            token = mint(scope="node", **{"x-nmos-node": {"read": ["*"]}})
            assert _get(pki, port, "/x-nmos/node/v1.3/self", token) == 200
            assert _get(pki, port, "/x-nmos/node/v1.3/self", token) == 200  # a cache hit
            assert _get(pki, port, "/x-nmos/node/v1.3/self") == 401
            assert _get(pki, port, "/metrics") == 401  # the public port has no metrics, only the guard
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with client_ssl(pki).wrap_socket(raw, server_hostname="node.test") as s:
                s.sendall(b"NOT HTTP\r\n\r\n")
                s.recv(4096)
            after = scrape(addr)
            assert value(after, "nmosauth_decisions", "nmosauth_decisions_total", status="200", reason="ok") == 2
            assert value(after, "nmosauth_decisions", "nmosauth_decisions_total", status="401") == 2
            assert value(after, "nmosauth_token_cache_lookups", "nmosauth_token_cache_lookups_total",
                         result="hit") == 1
            assert value(after, "nmosauth_token_cache_lookups", "nmosauth_token_cache_lookups_total",
                         result="miss") == 1
            assert value(after, "nmosauth_upstream_response_seconds", "nmosauth_upstream_response_seconds_count",
                         outcome="answered") == 2
            assert value(after, "nmosauth_rejected_connections", "nmosauth_rejected_connections_total",
                         cause="bad_request") == 1
            assert value(after, "nmosauth_open_connections", "nmosauth_open_connections") >= 0
        finally:
            node.kill()
    finally:
        issuer.kill()


def test_protect_refuses_metrics_on_the_public_port(tmp_path, pki):  # noqa: F811
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "protect", "--listen", "127.0.0.1:18443",
                        "--upstream", "http://127.0.0.1:1", "--audience", NODE, "--issuer", "https://a.test",
                        "--cert", pki.cert, "--key", pki.key, "--metrics", "127.0.0.1:18443"],
                       cwd=REPO, capture_output=True, timeout=30)
    assert r.returncode == 2 and b"never the public one" in r.stderr


# --- as serve --metrics -----------------------------------------------------------------------------------------
def test_as_metrics_count_tokens_by_grant_and_alg_registrations_and_refusals(tmp_path):
    state = str(tmp_path / "as")
    srv = Child(["as", "serve", "--state-dir", state, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                 "--log-level", "WARNING"], tmp_path, "as")
    try:
        addr, issuer, ca = srv.info["metrics"], srv.info["issuer"], srv.info["ca_file"]
        assert issuer.startswith("https://") and addr.startswith("127.0.0.1:")
        added = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "client", "add", "--state-dir", state,
                                "--name", "metrics-test", "--scope", "registration", "--grant", "client_credentials"],
                               cwd=REPO, capture_output=True, timeout=30)
        client = json.loads(added.stdout)
        before = scrape(addr)
        assert value(before, "nmosauth_as_tokens_issued", "nmosauth_as_tokens_issued_total") == 0
        s = requests  # verify= on each call: a Session's verify loses to REQUESTS_CA_BUNDLE
        meta = s.get(metadata_url(issuer), timeout=10, verify=ca).json()
        good = s.post(meta["token_endpoint"], data={"grant_type": "client_credentials", "scope": "registration"},
                      auth=(client["client_id"], client["client_secret"]), timeout=10, verify=ca)
        assert good.status_code == 200
        bad = s.post(meta["token_endpoint"], data={"grant_type": "client_credentials"},
                     auth=(client["client_id"], "wrong"), timeout=10, verify=ca)
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        reg = s.post(meta["registration_endpoint"], json={"client_name": "x", "grant_types": ["client_credentials"],
                                                            "scope": "registration"}, timeout=10, verify=ca)
        after = scrape(addr)
        assert value(after, "nmosauth_as_tokens_issued", "nmosauth_as_tokens_issued_total",
                     grant_type="client_credentials", alg="RS512") == 1
        assert value(after, "nmosauth_as_token_refusals", "nmosauth_as_token_refusals_total", error="invalid_client") == 1
        outcome = "registered" if reg.status_code in (200, 201) else reg.json()["error"]
        assert value(after, "nmosauth_as_registrations", "nmosauth_as_registrations_total", outcome=outcome) == 1
    finally:
        assert srv.terminate() == 0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
