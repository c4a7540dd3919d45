"""`doctor` checks every file the configuration names (issue 22 §2): protect's cert/key/ca and the
authorization server's tls.* files exist, are readable by the service's user, the key matches the
certificate, the certificate is valid now and names the configured audience (BCP-003-01: clients
verify the host name). Real certificates from `certs make`'s code, real doctor processes."""

import json
import os
import subprocess
import sys

import pytest

from nmosauth_lite.aio.certmake import make_server_cert
from nmosauth_lite.commands.doctor_files import readable_by

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISS = "https://auth.example.com/x-nmos/auth/v1.0"


def doctor(*args):
    e = dict(os.environ)
    e.pop("STATE_DIRECTORY", None)
    e.pop("CONFIGURATION_DIRECTORY", None)
    e["PYTHONPATH"] = ROOT
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--json"] + list(args),
                       capture_output=True, text=True, env=e, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout)


def file_problems(doc, level="serious"):
    return [p["message"] for p in doc["problems"] if p["check"] == "files" and p["level"] == level]


@pytest.fixture
def lab(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    made = make_server_cert(str(tmp_path / "certs"), ["node-1.studio.example.com"], ["127.0.0.1"])
    return tmp_path, state, made


def protect_config(tmp_path, cert, key, audience="node-1.studio.example.com", extra=""):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\nissuer = ["%s"]\nlisten = "127.0.0.1:8444"\ncert = "%s"\nkey = "%s"\n'
                   'audience = ["%s"]\n%s' % (ISS, cert, key, audience, extra))
    return str(cfg)


def test_missing_configured_cert_and_key_make_doctor_unhealthy_naming_each_file(lab):
    tmp_path, state, _ = lab
    cfg = protect_config(tmp_path, tmp_path / "nope.pem", tmp_path / "nope.key")
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    msgs = file_problems(doc)
    assert code == 1 and not doc["healthy"]
    assert any(str(tmp_path / "nope.pem") in m and "does not exist" in m for m in msgs)
    assert any(str(tmp_path / "nope.key") in m and "does not exist" in m for m in msgs)


def test_a_good_pair_naming_the_audience_is_healthy(lab):
    tmp_path, state, made = lab
    cfg = protect_config(tmp_path, made["cert_file"], made["key_file"], extra='ca = "%s"\n' % made["ca_file"])
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 0 and file_problems(doc) == [] and file_problems(doc, "warning") == []
    assert {f["what"] for f in doc["files"]} == {"certificate", "private key", "ca"}
    assert all(f["ok"] for f in doc["files"])


def test_a_key_of_another_certificate_is_serious(lab):
    tmp_path, state, made = lab
    other = make_server_cert(str(tmp_path / "certs"), ["other.studio.example.com"], [])
    cfg = protect_config(tmp_path, made["cert_file"], other["key_file"])
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 1 and any("does not match" in m and other["key_file"] in m for m in file_problems(doc))


def test_an_expired_certificate_is_serious(lab):
    tmp_path, state, made = lab
    cfg = protect_config(tmp_path, made["cert_file"], made["key_file"])
    code, doc = doctor("--state-dir", str(state), "--config", cfg, "--now", str(2 ** 31 + 400 * 86400))
    assert code == 1 and any("expired" in m and made["cert_file"] in m for m in file_problems(doc))


def test_a_certificate_that_does_not_name_the_audience_is_serious(lab):
    tmp_path, state, made = lab
    cfg = protect_config(tmp_path, made["cert_file"], made["key_file"], audience="node-2.studio.example.com")
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 1 and any("does not name node-2.studio.example.com" in m for m in file_problems(doc))


def test_authorization_server_tls_files_are_checked_too(lab):
    tmp_path, state, made = lab
    cfg = tmp_path / "config.toml"
    cfg.write_text('[authserver]\nlisten = "127.0.0.1:9443"\nhost = "node-1.studio.example.com"\n'
                   '[authserver.tls]\ncert_file = "%s"\nkey_file = "%s"\nca_file = "%s"\n'
                   % (made["cert_file"], tmp_path / "gone.key", tmp_path / "gone-ca.pem"))
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    msgs = file_problems(doc)
    assert code == 1
    assert any("authserver private key" in m and "gone.key" in m for m in msgs)
    assert any("gone-ca.pem" in m for m in msgs)


def test_readable_by_judges_owner_group_and_mode_for_another_user():
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="nmosauth-doctor-", dir="/tmp")  # pytest's tmp_path parents are 0700
    try:
        os.chmod(d, 0o755)
        f = os.path.join(d, "k.key")
        with open(f, "w") as fh:
            fh.write("x")
        st = os.stat(f)
        os.chmod(f, 0o600)
        assert "not readable by someone" in readable_by(f, ("someone", st.st_uid + 4242, {st.st_gid + 4242}))
        os.chmod(f, 0o640)
        assert readable_by(f, ("member", st.st_uid + 4242, {st.st_gid})) is None
        assert readable_by(f, ("owner", st.st_uid, set())) is None
        os.chmod(d, 0o700)
        assert "cannot enter" in readable_by(f, ("member", st.st_uid + 4242, {st.st_gid}))
    finally:
        shutil.rmtree(d)


def test_a_world_readable_key_is_a_warning_and_the_boards_0640_is_not(lab):
    tmp_path, state, made = lab
    cfg = protect_config(tmp_path, made["cert_file"], made["key_file"])
    os.chmod(made["key_file"], 0o640)
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 0 and file_problems(doc, "warning") == []
    os.chmod(made["key_file"], 0o644)
    code, doc = doctor("--state-dir", str(state), "--config", cfg)
    assert code == 0 and any("other users can read" in m for m in file_problems(doc, "warning"))


def test_a_configured_lab_mode_is_a_warning(lab):
    tmp_path, state, _ = lab
    cfg = tmp_path / "config.toml"
    cfg.write_text('[authserver]\nlisten = "127.0.0.1:9443"\nlab = true\n')
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert code == 0 and any("lab = true" in p["message"] for p in doc["problems"] if p["check"] == "config")


def test_every_pair_of_two_certificates_is_checked(lab):  # issue 19: RSA + ECDSA, cert/key as lists
    tmp_path, state, made = lab
    other = make_server_cert(str(tmp_path / "certs2"), ["node-1.studio.example.com"], [])
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\nissuer = ["%s"]\nlisten = "127.0.0.1:8444"\ncert = ["%s", "%s"]\n'
                   'key = ["%s", "%s"]\naudience = ["node-1.studio.example.com"]\n'
                   % (ISS, made["cert_file"], other["cert_file"], made["key_file"], tmp_path / "nope.key"))
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    checked = {f["file"] for f in doc["files"]}
    assert {made["cert_file"], made["key_file"], other["cert_file"], str(tmp_path / "nope.key")} <= checked
    assert code == 1 and any(str(tmp_path / "nope.key") in m for m in file_problems(doc))


def test_client_crls_are_checked(lab):
    # SEC-93 NESTCRL: loadable, signed by a client CA (SEC-95), not past nextUpdate (SEC-98)
    from tls_helpers import make_crl

    from nmosauth_lite.aio.tlsutil import make_test_pki

    tmp_path, state, made = lab
    a = make_test_pki(str(tmp_path / "ca-a"), ca_name="client CA A")
    b = make_test_pki(str(tmp_path / "ca-b"), ca_name="client CA B")
    good = make_crl(a, str(tmp_path / "a.crl"), [a.client_cert], next_update=86400)

    def run(crls, cas=(a.ca_cert,), *more):
        extra = "client_ca = %s\nclient_crl = %s\nclient_cert = \"optional\"\n" % (
            json.dumps(list(cas)), json.dumps(list(crls)))
        return doctor("--state-dir", str(state), "--config",
                      protect_config(tmp_path, made["cert_file"], made["key_file"], extra=extra), *more)

    code, doc = run([good])
    assert code == 0 and file_problems(doc) == [] and file_problems(doc, "warning") == []
    assert {f["what"] for f in doc["files"]} >= {"client_ca", "client_crl"} and all(f["ok"] for f in doc["files"])
    forged = make_crl(a, str(tmp_path / "forged.crl"), signer_key=b.ca_key)
    code, doc = run([forged])
    assert code == 1 and any(forged in m and "bad signature" in m for m in file_problems(doc))
    code, doc = run([good], (a.ca_cert,), "--now", str(__import__("time").time() + 2 * 86400))
    assert code == 1 and any(good in m and "expired" in m for m in file_problems(doc))
    code, doc = run([good], (a.ca_cert, b.ca_cert))  # B has no CRL: its clients are refused
    assert code == 0 and any("CN=client CA B" in m for m in file_problems(doc, "warning"))
    garbage = tmp_path / "garbage.crl"
    garbage.write_text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    code, doc = run([str(garbage)])
    assert code == 1 and any(str(garbage) in m for m in file_problems(doc))
