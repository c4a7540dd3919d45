"""`nmosauth-lite certs make` (issue 22 §2): a lab CA and a server certificate for protect, attach and
the authorization server; keys 0600 written atomically; names and addresses validated (MAX_NAMES,
MAX_NAME_LEN); TLS commands name the file they could not read."""

import os
import socket
import ssl
import stat
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.aio.certfiles import MAX_NAMES, check_dns_name, check_names, load_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, cwd=None):
    e = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "nmosauth_lite"] + list(args), capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=60)


def test_certs_make_writes_a_ca_and_a_server_certificate_with_private_keys_0600(tmp_path):
    import json

    out = tmp_path / "lab" / "certs"
    r = cli("certs", "make", "--out", str(out), "--name", "node-1.studio.example.com", "--name", "localhost",
            "--ip", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cert_file"] == str(out / "node-1.studio.example.com.pem")
    assert doc["names"] == ["node-1.studio.example.com", "localhost"] and doc["addresses"] == ["127.0.0.1"]
    assert "must trust %s" % doc["ca_file"] in r.stderr  # where controllers must trust the CA
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(out / "ca.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(doc["key_file"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(doc["cert_file"]).st_mode) == 0o644
    assert sorted(os.listdir(out)) == sorted(["ca.pem", "ca.key", "node-1.studio.example.com.pem",
                                              "node-1.studio.example.com.key"])  # no temp file left


def test_a_second_certificate_reuses_the_ca(tmp_path):
    out = str(tmp_path / "certs")
    assert cli("certs", "make", "--out", out, "--name", "a.example.com").returncode == 0
    ca = open(os.path.join(out, "ca.pem"), "rb").read()
    r = cli("certs", "make", "--out", out, "--name", "b.example.com")
    assert r.returncode == 0 and "existing CA" in r.stderr
    assert open(os.path.join(out, "ca.pem"), "rb").read() == ca


def test_the_certificate_serves_tls_that_a_client_trusting_the_ca_verifies_by_name_and_address(tmp_path):
    from nmosauth_lite.aio.certfiles import make_server_cert
    from nmosauth_lite.aio.tlsutil import client_context, server_context

    made = make_server_cert(str(tmp_path), ["localhost"], ["127.0.0.1"])
    srv = server_context(made["cert_file"], made["key_file"])
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2):
            conn, _a = listener.accept()
            try:
                with srv.wrap_socket(conn, server_side=True) as s:
                    s.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        for name in ("localhost", "127.0.0.1"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with client_context(made["ca_file"]).wrap_socket(raw, server_hostname=name) as s:
                    assert s.recv(2) == b"ok"
    finally:
        t.join(10)
        listener.close()


@pytest.mark.parametrize("args", [["--name", "bad_name"], ["--name", "a..b"], ["--name", "x" * 300],
                                  ["--name", "*."], ["--name", "-a.example.com"], ["--ip", "1.2.3.999"],
                                  ["--ip", "x" * 5000], [], ["--name", "a.example.com", "--days", "0"],
                                  ["--name", "a.example.com", "--basename", "../escape"],
                                  ["--name", "a.example.com", "--basename", "ca"]]
                         + [sum([["--name", "n%d.example.com" % i] for i in range(MAX_NAMES + 1)], [])])
def test_hostile_names_are_refused_in_one_line_without_writing(tmp_path, args):
    r = cli("certs", "make", "--out", str(tmp_path / "c"), *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not (tmp_path / "c").exists() or not any(n.endswith(".key") and n != "ca.key"
                                                    for n in os.listdir(tmp_path / "c"))


LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")


@settings(max_examples=200, deadline=None)
@given(st.lists(LABEL, min_size=1, max_size=5))
def test_every_ldh_name_is_accepted_lowercased(labels):
    name = ".".join(labels)
    assert check_dns_name(name.upper()) == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_valid_name_or_a_value_error(text):
    try:
        n = check_dns_name(text)
    except ValueError:
        return
    assert n == text.lower() and len(n) <= 253
    assert all(c.isascii() and (c.isalnum() or c in ".-*") for c in n)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=4), st.lists(st.text(max_size=40), max_size=4))
def test_check_names_never_raises_anything_but_value_error(names, addresses):
    try:
        check_names(names, addresses)
    except ValueError:
        pass


def test_load_error_names_the_missing_file(tmp_path):
    cert = tmp_path / "node.pem"
    cert.write_text("x")
    msg = load_error(str(cert), str(tmp_path / "node.key"), OSError(2, "No such file or directory"))
    assert msg == "cannot read --key %s: No such file or directory" % (tmp_path / "node.key")


def test_protect_names_the_certificate_file_it_cannot_read(tmp_path):
    jwks = os.path.join(ROOT, "nmosauth_lite", "data", "is10-example-jwks.json")
    r = cli("protect", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--audience", "a.example.com",
            "--jwks", jwks, "--cert", str(tmp_path / "node.pem"), "--key", str(tmp_path / "node.key"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot read --cert %s: No such file or directory" % (tmp_path / "node.pem") in r.stderr


def test_protect_says_which_key_does_not_belong_to_the_certificate(tmp_path):
    from nmosauth_lite.aio.certfiles import make_server_cert

    a = make_server_cert(str(tmp_path), ["a.example.com"], [])
    b = make_server_cert(str(tmp_path), ["b.example.com"], [])
    jwks = os.path.join(ROOT, "nmosauth_lite", "data", "is10-example-jwks.json")
    r = cli("protect", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--audience", "a.example.com",
            "--jwks", jwks, "--cert", a["cert_file"], "--key", b["key_file"])
    assert r.returncode == 2 and "--key %s does not belong to --cert %s" % (b["key_file"], a["cert_file"]) in r.stderr


def test_as_serve_names_the_tls_file_it_cannot_read(tmp_path):
    r = cli("as", "serve", "--state-dir", str(tmp_path / "as"), "--listen", "127.0.0.1:0",
            "--cert", str(tmp_path / "auth.pem"), "--key", str(tmp_path / "auth.key"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot read tls.cert_file (--cert) %s" % (tmp_path / "auth.pem") in r.stderr
    r = cli("as", "serve", "--state-dir", str(tmp_path / "as"), "--cert", str(tmp_path / "auth.pem"))
    assert r.returncode == 2 and "go together" in r.stderr
