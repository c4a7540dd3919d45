"""`nmosauth-lite register` and `nmosauth-lite token` as real processes (issue 7 item 5)."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from client_support import ServeProc, advertise, cli, consent, env, make_pki
from dns_helpers import free_port
from nmosauth_lite.jws import parse

NAME = "ACME Encoder-9 SN-CLI"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("cli-pki")))


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    s = ServeProc(tmp_path_factory.mktemp("cli-as"), "localhost", lifetime=30, trust_ca=pki.ca_cert)
    try:
        s.start()
        s.add_user("alice")
        yield s
    finally:
        s.stop()


def _common(srv, tmp_path, node="node"):
    return ["--issuer", srv.issuer, "--ca", srv.ca_file, "--state-dir", str(tmp_path / node),
            "--key-file", str(tmp_path / "keys" / "client.key")]


def test_register_prints_the_redacted_record_and_never_registers_twice(srv, tmp_path):
    before = len(srv.clients())
    args = ["register"] + _common(srv, tmp_path) + ["--name", NAME, "--scope", "registration",
                                                   "--initial-token", srv.iat()]
    first = json.loads(cli(*args).stdout)
    assert first["client_secret"] == "<redacted>" and first["issuer"] == srv.issuer
    assert first["client_name"] == NAME and first["token_endpoint_auth_method"] == "client_secret_basic"
    again = json.loads(cli(*args).stdout)
    assert again["client_id"] == first["client_id"]
    assert len(srv.clients()) == before + 1

    out = cli("token", *_common(srv, tmp_path), "--scope", "registration")
    tok = json.loads(out.stdout)
    assert set(tok) == {"access_token", "token_type", "expires_in", "scope"}
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 30 and tok["scope"] == "registration"
    assert parse(tok["access_token"]).claims["client_id"] == first["client_id"]
    assert out.stderr == ""


def test_register_and_token_from_the_device_config(srv, tmp_path):
    iat_file = tmp_path / "iat.txt"
    iat_file.write_text(srv.iat() + "\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text("\n".join([
        "[protect]", 'listen = "0.0.0.0:8443"',  # other components' tables are left alone
        "[client]", 'manufacturer = "ACME"', 'product = "Encoder-9"', 'serial = "SN-CFG"',
        'scope = "registration"', 'issuer = "%s"' % srv.issuer, 'ca = "%s"' % srv.ca_file,
        'state_dir = "%s"' % (tmp_path / "node"), 'key_file = "%s"' % (tmp_path / "keys" / "k"),
        'initial_token_file = "%s"' % iat_file]) + "\n")
    rec = json.loads(cli("register", "--config", cfg).stdout)
    assert rec["client_name"] == "ACME Encoder-9 SN-CFG" and rec["client_secret"] == "<redacted>"
    tok = json.loads(cli("token", "--config", cfg).stdout)
    assert parse(tok["access_token"]).claims["client_id"] == rec["client_id"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[client]\nsecret = "x"\n')
    r = cli("register", "--config", bad, check=False)
    assert r.returncode == 2 and "client.secret" in r.stderr


def test_token_with_a_client_registered_by_the_operator(srv, tmp_path):
    c = json.loads(srv.admin("client", "add", "--name", "pre", "--grant", "client_credentials", "--scope",
                             "registration").stdout)
    out = cli("token", "--issuer", srv.issuer, "--ca", srv.ca_file, "--client-id", c["client_id"],
              "--client-secret", c["client_secret"], "--scope", "registration")
    assert parse(json.loads(out.stdout)["access_token"]).claims["client_id"] == c["client_id"]
    bad = cli("token", "--issuer", srv.issuer, "--ca", srv.ca_file, "--client-id", c["client_id"],
              "--client-secret", "wrong", "--scope", "registration", check=False)
    assert bad.returncode == 1 and "invalid_client" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert "wrong" not in bad.stderr


def test_token_without_a_registration_says_what_to_do(srv, tmp_path):
    r = cli("token", *_common(srv, tmp_path, "empty"), "--scope", "registration", check=False)
    assert r.returncode == 2 and "nmosauth-lite register" in r.stderr and len(r.stderr.splitlines()) == 1


def test_untrusted_server_certificate_is_refused(srv, tmp_path, pki):
    r = cli("token", "--issuer", srv.issuer, "--ca", pki.ca_cert, "--client-id", "x", "--client-secret", "y",
            "--scope", "registration", "--timeout", "2", check=False)
    assert r.returncode == 1 and "certificate verify failed" in r.stderr  # IS-10 CL-03, CL-04


def test_register_and_token_by_discovery_with_private_key_jwt(tmp_path, pki):
    host = "auth7.nmos-cli.test"
    s = ServeProc(tmp_path / "as", host, lifetime=30, trust_ca=pki.ca_cert)
    dns = None
    try:
        s.start()
        dns = advertise(tmp_path / "dns", [("as7", "auth7", s.port, 5)], domain="nmos-cli.test")
        port = free_port()
        sel = ["--discover", "--domain", "nmos-cli.test", "--nameserver", "%s:%d" % dns.server, "--ca", s.ca_file,
               "--state-dir", str(tmp_path / "node"), "--key-file", str(tmp_path / "keys" / "k")]
        jwks_uri = "https://127.0.0.1:%d/x-nmos/auth-client/jwks" % port
        rec = json.loads(cli("register", *sel, "--name", NAME, "--scope", "registration", "--auth", "private_key_jwt",
                             "--jwks-uri", jwks_uri, "--initial-token", s.iat()).stdout)
        assert rec["issuer"] == "https://%s:%d/x-nmos/auth/v1.0" % (host, s.port)
        assert rec["jwks_uri"] == jwks_uri and "client_secret" not in rec
        out = cli("token", *sel, "--auth", "private_key_jwt", "--scope", "registration", "--jwks-listen",
                  "127.0.0.1:%d" % port, "--jwks-cert", pki.cert, "--jwks-key", pki.key)
        claims = parse(json.loads(out.stdout)["access_token"]).claims
        assert claims["client_id"] == rec["client_id"] and claims["iss"] == rec["issuer"]
        (row,) = s.clients()
        assert row["auth_method"] == "private_key_jwt"
    finally:
        if dns is not None:
            dns.stop()
        s.stop()


def test_authorization_code_cli_prints_the_url_and_takes_the_redirect(srv, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nmosauth_lite", "token", "--grant", "authorization_code",
                             *_common(srv, tmp_path, "ctl"), "--name", "ACME Controller SN-CLI", "--scope",
                             "query connection", "--initial-token", srv.iat(), "--redirect-base",
                             "http://127.0.0.1:%d/cb" % port], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env(), text=True)
    try:
        url = None
        for _ in range(10):  # blocking reads: the process prints the URL at once or exits
            line = proc.stderr.readline()
            assert line, "token exited early"
            if line.startswith("https://"):
                url = line.strip()
                break
        assert url and url.startswith(srv.issuer + "/authorize?")
        status, location = asyncio.run(asyncio.wait_for(consent(url, "alice", ca_file=srv.ca_file), 60))
        assert status == 200 and location.startswith("http://127.0.0.1:%d/cb/" % port)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        tok = json.loads(out)
        assert tok["refresh_token"] and parse(tok["access_token"]).claims["sub"] == "alice"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 9)  # our child, by its PID
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_register_and_token_reach_an_unresolvable_issuer_with_connect(tmp_path, pki):
    """issue 22 item 3: --connect HOST=ADDR; TLS still verifies HOST (IS-10 CL-03)."""
    host = "auth8.nmos-cli.test"  # no resolver knows it
    s = ServeProc(tmp_path / "as", host, lifetime=30, trust_ca=pki.ca_cert)
    try:
        s.start()
        sel = ["--issuer", s.issuer, "--ca", s.ca_file, "--state-dir", str(tmp_path / "node"),
               "--key-file", str(tmp_path / "keys" / "k"), "--timeout", "10"]
        r = cli("register", *sel, "--name", NAME, "--scope", "registration", "--initial-token", s.iat(), check=False)
        assert r.returncode == 1 and host in r.stderr  # without the override: the name does not resolve
        sel += ["--connect", "%s=127.0.0.1" % host]
        rec = json.loads(cli("register", *sel, "--name", NAME, "--scope", "registration",
                             "--initial-token", s.iat()).stdout)
        assert rec["issuer"] == s.issuer
        tok = json.loads(cli("token", *sel, "--scope", "registration").stdout)
        assert parse(tok["access_token"]).claims["client_id"] == rec["client_id"]
        wrong = cli("token", *sel[:-1], "auth8.nmos-cli.test=127.0.0.2", "--scope", "registration", "--timeout",
                    "3", check=False)
        assert wrong.returncode == 1  # nothing listens there: the override is really used
    finally:
        s.stop()


def test_register_without_initial_token_says_it_awaits_approval_and_exits_3(srv, tmp_path):
    """issue 22 item 6 (IS-10 AS-21 2.): a held registration is not a success; approval turns it into one."""
    args = ["register"] + _common(srv, tmp_path, "held") + ["--name", NAME + "-held", "--scope", "registration"]
    r = cli(*args, check=False)
    assert r.returncode == 3, r.stderr
    rec = json.loads(r.stdout)
    assert "awaits the operator's approval" in r.stderr and rec["client_id"] in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    again = cli(*args, check=False)  # still held: same record, same answer, nothing registered twice
    assert again.returncode == 3 and json.loads(again.stdout)["client_id"] == rec["client_id"]
    t = cli("token", *_common(srv, tmp_path, "held"), "--scope", "registration", check=False)
    assert t.returncode == 3 and "approval" in t.stderr
    approved = json.loads(srv.admin("client", "approve", rec["client_id"]).stdout)
    assert approved["approved"] == rec["client_id"]
    ok = cli(*args)
    assert json.loads(ok.stdout)["client_id"] == rec["client_id"] and ok.stderr == ""
    assert "approval" not in json.loads(ok.stdout)
    cli("token", *_common(srv, tmp_path, "held"), "--scope", "registration")
