"""`nmosauth-lite doctor`: backends, state directory, clock, issuers, discovery; exit codes."""

import calendar
import json
import os
import subprocess
import sys
import time

import pytest

from nmosauth_lite.cli import main
from nmosauth_lite.jwks_cache import FORMAT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISS = "https://auth.example.com/x-nmos/auth/v1.0"


def doctor(*args, env=None, pythonpath=None):
    """Run doctor in a child process (its own clean import state); return (code, JSON)."""
    e = dict(os.environ if env is None else env)
    e.pop("STATE_DIRECTORY", None)
    e.pop("CONFIGURATION_DIRECTORY", None)
    e["PYTHONPATH"] = os.pathsep.join(([pythonpath] if pythonpath else []) + [ROOT])
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--json"] + list(args),
                       capture_output=True, text=True, env=e, timeout=60)
    assert p.stderr == "", p.stderr
    return p.returncode, json.loads(p.stdout)


def problems(doc, check=None, level=None):
    return [p["message"] for p in doc["problems"]
            if (check is None or p["check"] == check) and (level is None or p["level"] == level)]


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


def persist(state, issuer, fetched_at, kids=("k1",)):
    jdir = state / "jwks"
    jdir.mkdir(mode=0o700, exist_ok=True)
    doc = {"format": FORMAT, "issuer": issuer, "jwks_uri": issuer + "/jwks", "fetched_at": fetched_at,
           "etag": None, "next_refresh": fetched_at + 3600,
           "jwks": {"keys": [{"kty": "RSA", "kid": k, "n": "AQAB", "e": "AQAB"} for k in kids]}}
    path = jdir / ("%08x.json" % abs(hash(issuer)))
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)


def test_healthy_device_reports_every_section(state):
    code, doc = doctor("--state-dir", str(state))
    assert code == 0 and doc["healthy"] is True
    assert doc["python"]["version"].startswith("3.") and doc["python"]["package_version"]
    b = doc["backends"]
    assert b["auto"] == "cryptography"
    assert b["cryptography"]["available"] and b["cryptography"]["rs512"] and b["cryptography"]["es256"]
    assert b["cryptography"]["version"]
    assert b["pure"]["rs512"] and b["pure"]["es256"] and b["pure"]["ecdsa"]
    assert doc["state"] == {"path": str(state), "exists": True, "mode": "0700", "owner_uid": os.geteuid(),
                            "writable": True, "files": 0}
    assert not problems(doc, "state") and not problems(doc, level="serious")
    assert doc["clock"]["build_time"] and doc["clock"]["ntp_synchronized"] in (True, False, None)


def test_text_output_and_exit_code(state):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--state-dir", str(state)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0
    for part in ("python    CPython", "backends  auto = cryptography", "pure: RS512 yes",
                 "state     %s (mode 0700" % state, "clock     ", "cached keys", "healthy"):
        assert part in p.stdout


def test_open_state_directory_is_a_warning(state):
    os.chmod(state, 0o755)
    (state / "client.json").write_text("{}")
    os.chmod(state / "client.json", 0o644)
    code, doc = doctor("--state-dir", str(state))
    assert code == 0
    msgs = problems(doc, "state", "warning")
    assert any("mode 0755" in m and "0700" in m for m in msgs)
    assert any("readable by group/others" in m and "client.json" in m for m in msgs)


def test_missing_state_directory_is_a_warning(tmp_path):
    code, doc = doctor("--state-dir", str(tmp_path / "not-yet"))
    assert code == 0 and doc["state"]["exists"] is False and doc["state"]["creatable"] is True
    assert any("does not exist yet" in m for m in problems(doc, "state"))


def test_state_path_that_is_a_file_is_serious(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, doc = doctor("--state-dir", str(f))
    assert code == 1 and any("not a directory" in m for m in problems(doc, "state", "serious"))


@pytest.mark.parametrize("now", [0, 86400 * 365 * 30, 1704067199])  # 1970, 2000, a second before 2024
def test_unset_clock_is_serious(state, now):
    code, doc = doctor("--state-dir", str(state), "--now", str(now))
    assert code == 1 and doc["healthy"] is False
    assert any("has not been set" in m for m in problems(doc, "clock", "serious"))


def test_clock_behind_the_build_date_is_serious(state):
    _, doc = doctor("--state-dir", str(state))
    built = calendar.timegm(time.strptime(doc["clock"]["build_time"], "%Y-%m-%dT%H:%M:%SZ"))
    if built - 3 * 86400 < 1704067200:
        pytest.skip("package files older than 2024: covered by the unset-clock test")
    code, doc = doctor("--state-dir", str(state), "--now", str(built - 3 * 86400))
    assert code == 1 and any("before this package was built" in m for m in problems(doc, "clock", "serious"))


def test_persisted_and_configured_issuers_with_key_ages(state, tmp_path):
    now = 1800000000.0
    persist(state, ISS, now - 7200, kids=("a", "b"))
    persist(state, "https://old.example.com", now - 3 * 86400)
    persist(state, "https://later.example.com", now + 86400)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\nissuer = ["%s", "https://never.example.com"]\nlisten = "127.0.0.1:8443"\n'
                   '[authserver]\nlisten = "127.0.0.1:9443"\n' % ISS)
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg), "--now", str(now))
    assert code == 0
    persisted = {p["issuer"]: p for p in doc["issuers"]["persisted"]}
    assert persisted[ISS]["kids"] == ["a", "b"] and persisted[ISS]["age_s"] == 7200.0
    assert persisted[ISS]["next_refresh_in_s"] == -3600.0
    configured = {c["issuer"]: c for c in doc["issuers"]["configured"]}
    assert configured[ISS] == {"issuer": ISS, "from": "protect", "persisted": True}
    assert configured["https://never.example.com"]["persisted"] is False
    assert configured["https://localhost:9443/x-nmos/auth/v1.0"]["from"] == "authserver"
    msgs = problems(doc, "issuers", "warning")
    assert any("never.example.com" in m and "no persisted keys" in m for m in msgs)
    assert any("old.example.com" in m and "72.0 h ago" in m for m in msgs)
    assert any("later.example.com" in m and "clock went backwards" in m for m in msgs)


def test_state_dir_comes_from_the_config(state, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\nstate_dir = "%s"\n' % state)
    code, doc = doctor("--config", str(cfg))
    assert code == 0 and doc["state"]["path"] == str(state)


def test_config_typo_is_serious(state, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\nissuers = ["%s"]\n' % ISS)  # `issuer` is the setting
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert code == 1 and any("unknown setting" in m for m in problems(doc, "config", "serious"))


def test_jwks_file_keys_are_listed(state, tmp_path):
    jwks = os.path.join(ROOT, "nmosauth_lite", "data", "is10-example-jwks.json")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\njwks = "%s"\n' % jwks)
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert code == 0 and len(doc["config"]["protect"]["jwks_keys"]) == 1


def test_pure_only_python_is_healthy(state, tmp_path):
    # A directory that shadows `cryptography` with a package that fails to import.
    shadow = tmp_path / "shadow" / "cryptography"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('cryptography hidden for this test')\n")
    code, doc = doctor("--state-dir", str(state), pythonpath=str(tmp_path / "shadow"))
    assert code == 0
    b = doc["backends"]
    assert b["auto"] == "pure" and b["cryptography"]["available"] is False
    assert "not installed" in b["cryptography"]["error"]
    assert b["pure"]["rs512"] is True and b["pure"]["es256"] is True


def test_authserver_without_cryptography_is_serious(state, tmp_path):
    shadow = tmp_path / "shadow" / "cryptography"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden')\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text("[authserver]\n")
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg), pythonpath=str(tmp_path / "shadow"))
    assert code == 1 and any("needs the cryptography" in m for m in problems(doc, "backends", "serious"))


def test_no_backend_verifying_rs512_is_serious(state, monkeypatch, capsys):
    import nmosauth_lite.crypto as crypto

    class Broken:
        name = "broken"

        def verify(self, alg, key, signing_input, signature):
            return False

    monkeypatch.setattr(crypto, "get_backend", lambda name="auto": Broken())
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    code = main(["doctor", "--json", "--state-dir", str(state)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["backends"]["cryptography"]["rs512"] is False and doc["backends"]["pure"]["rs512"] is False
    assert any("RS512" in m for m in problems(doc, "backends", "serious"))


def test_discover_against_dnsmasq(state, tmp_path):
    from dns_helpers import Dnsmasq

    svc = "_nmos-auth._tcp.doctor.test"
    name = "as-1." + svc
    server = Dnsmasq(tmp_path, ['ptr-record=%s,"%s"' % (svc, name),
                                'srv-host="%s",auth1.doctor.test,8443,0,0' % name,
                                'txt-record="%s","api_proto=https","api_ver=v1.0","pri=10"' % name,
                                "host-record=auth1.doctor.test,192.0.2.1"], local_domains=["doctor.test"])
    server.start()
    try:
        code, doc = doctor("--state-dir", str(state), "--discover", "--domain", "doctor.test",
                           "--nameserver", "127.0.0.1:%d" % server.port)
        empty_code, empty = doctor("--state-dir", str(state), "--discover", "--domain", "nothing.doctor.test",
                                   "--nameserver", "127.0.0.1:%d" % server.port)
    finally:
        server.stop()
    assert code == 0
    (found,) = doc["issuers"]["discovered"]
    assert found["metadata_url"] == "https://auth1.doctor.test:8443/.well-known/oauth-authorization-server"
    assert found["pri"] == 10 and found["addresses"] == ["192.0.2.1"]
    assert empty_code == 0 and empty["issuers"]["discovered"] == []
    assert problems(empty, "discovery", "warning")


def test_observe_mode_is_said_loudly(state, tmp_path):  # issue 19 §4
    cfg = tmp_path / "config.toml"
    cfg.write_text('[protect]\nenforce = "off"\n')
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert code == 0 and doc["config"]["protect"]["enforce"] == "off"
    assert any("THE NODE IS NOT PROTECTED" in m for m in problems(doc, "protect"))
    cfg.write_text('[protect]\nenforce = "node,connection"\n')
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert doc["config"]["protect"]["enforce"] == "node,connection"
    assert any("NOT PROTECTED" in m and "node, connection" in m for m in problems(doc, "protect"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--state-dir", str(state), "--config",
                        str(cfg)], capture_output=True, text=True, env=env, timeout=60)
    assert "enforce node,connection: OBSERVE MODE, THE NODE IS NOT PROTECTED" in p.stdout
    cfg.write_text('[protect]\nenforce = "of"\n')  # a typo never weakens the setting silently
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert code == 1 and problems(doc, "config", "serious")
    cfg.write_text('[protect]\nenforce = "on"\n')
    code, doc = doctor("--state-dir", str(state), "--config", str(cfg))
    assert not problems(doc, "protect")
