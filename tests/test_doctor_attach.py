"""`doctor` checks the `[attach]` table the way attach itself does: its settings go through attach's
own loader (so a problem doctor reports is the error `attach` exits with, checked here against a
real attach process), the Registry is https (BCP-003-01) or found by DNS-SD in a known domain, the
issuer is https (IS-10 GEN-01) and the client identity is there (IS-10 CL-09), and every file attach
reads exists and is usable. Real doctor and attach processes, real certificates."""

import json
import os
import subprocess
import sys

import pytest

from nmosauth_lite.aio.certmake import make_server_cert

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISS = "https://auth.example.com/x-nmos/auth/v1.0"
REGISTRY = "https://registry.studio.example.com:8443"


def _env():
    e = dict(os.environ)
    for name in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "CREDENTIALS_DIRECTORY"):
        e.pop(name, None)
    e["PYTHONPATH"] = ROOT
    return e


def doctor(*args):
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--json"] + list(args),
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout)


def problems(doc, check, level="serious"):
    return [p["message"] for p in doc["problems"] if p["check"] == check and p["level"] == level]


@pytest.fixture
def lab(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (tmp_path / "attach-state").mkdir(mode=0o700)
    made = make_server_cert(str(tmp_path / "certs"), ["attach.studio.example.com"], ["127.0.0.1"])
    token = tmp_path / "iat.txt"
    token.write_text("initial-access-token\n")
    os.chmod(token, 0o600)
    return tmp_path, state, made


def attach_config(tmp_path, made, client=None, attach=None):
    """A config with a good [client] and [attach] table; `client`/`attach`: keys replaced (None: removed)."""
    c = {"issuer": ISS, "manufacturer": "ACME", "product": "Encoder-7", "serial": "SN-1",
         "ca": made["ca_file"], "state_dir": str(tmp_path / "attach-state"),
         "initial_token_file": str(tmp_path / "iat.txt")}
    a = {"listen": "127.0.0.1:8445", "registry": [REGISTRY], "cert": [made["cert_file"]], "key": [made["key_file"]]}
    for table, changes in ((c, client or {}), (a, attach or {})):
        for k, v in changes.items():
            if v is None:
                table.pop(k, None)
            else:
                table[k] = v
    text = "".join("[%s]\n%s\n" % (name, "".join("%s = %s\n" % (k, json.dumps(v)) for k, v in t.items()))
                   for name, t in (("client", c), ("attach", a)))
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def test_a_good_attach_table_is_healthy_and_every_file_it_names_is_checked(lab):
    tmp_path, state, made = lab
    code, doc = doctor("--state-dir", str(state), "--config", attach_config(tmp_path, made))
    assert code == 0 and doc["healthy"], doc["problems"]
    assert problems(doc, "attach") == [] and problems(doc, "files") == []
    section = doc["config"]["attach"]
    assert section["registry"] == [REGISTRY] and section["issuer"] == ISS
    assert section["name"] == "ACME Encoder-7 SN-1" and section["apis"] == ["registration"]
    assert section["address_group"] == 32
    assert {f["what"] for f in doc["files"]} == {"certificate", "private key", "client.ca",
                                                 "client.initial_token_file", "client.state_dir"}
    assert all(f["ok"] for f in doc["files"])


def test_text_report_names_the_attach_route_and_says_healthy(lab):
    tmp_path, state, made = lab
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--state-dir", str(state), "--config",
                        attach_config(tmp_path, made)], capture_output=True, text=True, env=_env(), timeout=60)
    assert p.returncode == 0 and p.stdout.rstrip().endswith("\nhealthy")
    assert "attach  127.0.0.1:8445 -> %s (token from %s)" % (REGISTRY, ISS) in p.stdout


@pytest.mark.parametrize("client,attach,message", [
    ({}, {"registry": ["http://registry.studio.example.com"]}, "registry must be an https:// URL"),  # BCP-003-01
    ({}, {"registy": [REGISTRY]}, "unknown setting 'registy'"),
    ({}, {"max_body": 0}, "max_body must be >= 1"),
    ({}, {"listen": "0.0.0.0:8445", "cert": None, "key": None}, "plain HTTP listens on loopback"),
    ({"issuer": None}, {}, "give --issuer URL or --discover"),  # IS-10 CL-01
    ({"issuer": "http://auth.example.com/x-nmos/auth/v1.0"}, {}, "is not https"),  # IS-10 GEN-01
    ({"serial": None, "manufacturer": None, "product": None}, {}, "give --name"),  # IS-10 CL-09
    ({"initial_token_file": "/nonexistent/iat.txt"}, {}, "cannot read client.initial_token_file"),
])
def test_each_unusable_setting_is_serious_and_is_the_error_attach_exits_with(lab, client, attach, message):
    tmp_path, state, made = lab
    cfg = attach_config(tmp_path, made, client, attach)
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    found = problems(doc, "attach")
    assert code == 1 and not doc["healthy"] and len(found) == 1 and message in found[0], doc["problems"]
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "attach", "--config", cfg], capture_output=True,
                       text=True, env=_env(), timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "nmosauth-lite attach: " + found[0], r.stderr


def test_missing_files_are_serious_naming_each_file(lab):
    tmp_path, state, made = lab
    cfg = attach_config(tmp_path, made, {"ca": str(tmp_path / "gone-ca.pem")},
                        {"cert": [str(tmp_path / "gone.pem")], "key": [str(tmp_path / "gone.key")]})
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    msgs = problems(doc, "files")
    assert code == 1 and not doc["healthy"]
    for name in ("gone-ca.pem", "gone.pem", "gone.key"):
        assert any(str(tmp_path / name) in m and "does not exist" in m and m.startswith("attach ") for m in msgs), msgs


def test_a_ca_bundle_without_certificates_is_serious(lab):
    tmp_path, state, made = lab
    empty = tmp_path / "empty-ca.pem"
    empty.write_text("not a certificate\n")
    code, doc = doctor("--state-dir", str(state), "--config", attach_config(tmp_path, made, {"ca": str(empty)}))
    assert code == 1 and any("client.ca" in m and str(empty) in m for m in problems(doc, "files"))


def test_a_state_dir_that_is_a_file_is_serious_and_a_missing_one_a_warning(lab):
    tmp_path, state, made = lab
    not_dir = tmp_path / "state-file"
    not_dir.write_text("")
    code, doc = doctor("--state-dir", str(state), "--config",
                       attach_config(tmp_path, made, {"state_dir": str(not_dir)}))
    assert code == 1 and any("client.state_dir" in m and "is not a directory" in m for m in problems(doc, "files"))
    code, doc = doctor("--state-dir", str(state), "--config",
                       attach_config(tmp_path, made, {"state_dir": str(tmp_path / "later")}))
    assert code == 0 and any("later" in m and "does not exist yet" in m for m in problems(doc, "files", "warning"))


def test_a_missing_sealing_key_is_a_warning_and_a_present_one_must_be_readable(lab):
    tmp_path, state, made = lab
    key = tmp_path / "keys" / "client.key"
    code, doc = doctor("--state-dir", str(state), "--config", attach_config(tmp_path, made, {"key_file": str(key)}))
    assert code == 0 and any(str(key) in m for m in problems(doc, "files", "warning"))
    key.parent.mkdir(mode=0o700)
    key.write_text("x\n")
    code, doc = doctor("--state-dir", str(state), "--config", attach_config(tmp_path, made, {"key_file": str(key)}))
    assert code == 0 and {"file": str(key), "what": "client.key_file", "ok": True} in doc["files"]


def test_registry_by_dns_sd_in_the_client_domain_is_healthy(lab):
    tmp_path, state, made = lab
    cfg = attach_config(tmp_path, made, {"domain": ["studio.example.com"]}, {"registry": None})
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 0 and problems(doc, "attach") == []
    assert doc["config"]["attach"]["registry"] == "dns-sd"
    assert doc["config"]["attach"]["registry_domains"] == ["studio.example.com"]


def test_writable_dir_by_wants_write_and_search_for_the_service_user():
    import shutil
    import tempfile

    from nmosauth_lite.commands.doctor_files import writable_dir_by

    d = tempfile.mkdtemp(prefix="nmosauth-doctor-", dir="/tmp")  # pytest's tmp_path parents are 0700
    try:
        st = os.stat(d)
        os.chmod(d, 0o700)
        assert writable_dir_by(d, ("owner", st.st_uid, set())) is None
        assert "not writable by other" in writable_dir_by(d, ("other", st.st_uid + 4242, {st.st_gid + 4242}))
        os.chmod(d, 0o750)  # the group may enter and read, not create files
        assert "not writable by member" in writable_dir_by(d, ("member", st.st_uid + 4242, {st.st_gid}))
        os.chmod(d, 0o770)
        assert writable_dir_by(d, ("member", st.st_uid + 4242, {st.st_gid})) is None
        os.chmod(d, 0o500)  # the owner's own directory, read-only
        assert "not writable by owner" in writable_dir_by(d, ("owner", st.st_uid, set()))
    finally:
        os.chmod(d, 0o700)
        shutil.rmtree(d)


def ipmx_config(tmp_path, made, attach):
    """[client] holding only the CA (and an issuer attach ignores under ipmx), [attach] under ipmx."""
    a = {"listen": "127.0.0.1:8445", "registry": [REGISTRY], "profile": "ipmx"}
    a.update(attach)
    text = '[client]\nca = %s\nissuer = %s\n\n[attach]\n%s' % (
        json.dumps(made["ca_file"]), json.dumps(ISS), "".join("%s = %s\n" % (k, json.dumps(v)) for k, v in a.items()))
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def test_an_ipmx_attach_table_is_healthy_with_its_client_certificate_checked(lab):
    # TR-10-SEC SEC-04/SEC-75: no issuer or client name needed; the RAP 2 certificate pair is a file attach reads
    tmp_path, state, made = lab
    cfg = ipmx_config(tmp_path, made, {"rap": 2, "client_cert": made["cert_file"], "client_key": made["key_file"]})
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 0 and doc["healthy"], doc["problems"]
    section = doc["config"]["attach"]
    assert section["profile"] == "ipmx" and section["rap"] == 2 and section["issuer"] is None
    assert any("client.issuer not used" in m for m in problems(doc, "attach", "warning"))
    assert {f["what"] for f in doc["files"]} == {"certificate", "private key", "client.ca"}
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--state-dir", str(state), "--config", cfg],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert "attach  127.0.0.1:8445 -> %s (TLS only, RAP 2, no token)" % REGISTRY in p.stdout


@pytest.mark.parametrize("attach,message", [
    ({"rap": 0}, "rap 0 is registration over plain HTTP"),  # SEC-80
    ({}, "needs --rap 1"),
    ({"rap": 2}, "needs --client-cert FILE and --client-key FILE"),  # SEC-79
])
def test_an_unusable_ipmx_attach_table_is_the_error_attach_exits_with(lab, attach, message):
    tmp_path, state, made = lab
    cfg = ipmx_config(tmp_path, made, attach)
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    found = problems(doc, "attach")
    assert code == 1 and len(found) == 1 and message in found[0], doc["problems"]
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "attach", "--config", cfg], capture_output=True,
                       text=True, env=_env(), timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "nmosauth-lite attach: " + found[0], r.stderr
