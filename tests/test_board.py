"""board/: the config template documents every setting and loads; install.sh stages idempotently;
the systemd units carry the sandbox and pass `systemd-analyze verify`."""

import os
import re
import shutil
import stat
import subprocess

import pytest

from nmosauth_lite.authserver import config as as_config
from nmosauth_lite.commands import protect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = os.path.join(ROOT, "board")
EXAMPLE = os.path.join(BOARD, "config.toml.example")
SETTING = re.compile(r"^#(\[[a-z.]+\]|[a-z_]+ = .*)$")  # "#name = value" / "#[table]"; prose is "# ..."


def uncommented(tmp_path):
    with open(EXAMPLE) as f:
        lines = [line[1:] if SETTING.match(line.rstrip("\n")) else line for line in f]
    path = tmp_path / "all.toml"
    path.write_text("".join(lines))
    return str(path)


def flatten(schema, prefix=""):
    out = set()
    for k, v in schema.items():
        if isinstance(v, dict) and k != "permissions":
            out |= flatten(v, prefix + k + ".")
        else:
            out.add(prefix + k)
    return out


def test_template_as_shipped_is_a_valid_protect_config():
    cfg = protect._read_config(EXAMPLE)
    assert {"listen", "upstream", "audience", "issuer", "cert", "key"} <= set(cfg)


def test_every_setting_is_documented_once_and_loads(tmp_path):
    import tomllib

    path = uncommented(tmp_path)
    with open(path, "rb") as f:
        doc = tomllib.load(f)  # duplicates would make this fail
    assert set(doc["protect"]) == set(protect.SETTINGS)
    protect._read_config(path)
    assert flatten(doc["authserver"]) == flatten(as_config._SCHEMA)
    cfg = as_config.load(path)
    assert cfg.issuer() == "https://auth.studio.example.com:8443/x-nmos/auth/v1.0"
    assert cfg.permissions["node"]["write"] == ["receivers/*/target"]


def test_defaults_shown_are_the_defaults(tmp_path):
    path = uncommented(tmp_path)
    import tomllib

    with open(path, "rb") as f:
        p = tomllib.load(f)["protect"]
    for name, (_type, default) in protect.SETTINGS.items():
        if default is not None and name != "state_dir":
            assert p[name] == default, name


def test_install_stages_idempotently(tmp_path):
    pyz = tmp_path / "nmosauth-lite.pyz"
    pyz.write_bytes(b"#!/usr/bin/env python3\nPK-stand-in\n")
    stage = tmp_path / "stage"

    def install():
        p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--root", str(stage), "--pyz", str(pyz)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    first = install()
    (stage / "etc/nmosauth-lite/config.toml").write_text("# edited by the operator\n")
    second = install()
    assert "wrote" in first and "kept" in second
    assert (stage / "etc/nmosauth-lite/config.toml").read_text() == "# edited by the operator\n"
    modes = {str(p.relative_to(stage)): stat.S_IMODE(p.stat().st_mode) for p in stage.rglob("*")}
    assert modes["usr/local/bin/nmosauth-lite"] == 0o755
    assert modes["usr/local/lib/nmosauth-lite/nmosauth-lite.pyz"] == 0o644
    assert modes["etc/nmosauth-lite/tls"] == 0o750
    assert modes["etc/systemd/system/nmosauth-lite-protect.service"] == 0o644
    assert (stage / "usr/local/lib/nmosauth-lite/nmosauth-lite.pyz").read_bytes() == pyz.read_bytes()
    assert "/usr/local/lib/nmosauth-lite/nmosauth-lite.pyz" in (stage / "usr/local/bin/nmosauth-lite").read_text()


def test_install_refuses_unknown_options_and_missing_bundle(tmp_path):
    p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--bogus"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--root", str(tmp_path / "s"), "--pyz",
                        str(tmp_path / "none.pyz")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "make bundle" in p.stderr


@pytest.mark.parametrize("unit", ["nmosauth-lite-protect.service", "nmosauth-lite-as.service"])
def test_units_are_sandboxed_and_verify(unit, tmp_path):
    with open(os.path.join(BOARD, "systemd", unit)) as f:
        text = f.read()
    lines = {line.strip() for line in text.splitlines()}
    for want in ("Type=notify", "User=nmosauth", "StateDirectory=nmosauth-lite", "StateDirectoryMode=0700",
                 "ConfigurationDirectory=nmosauth-lite", "ProtectSystem=strict", "ProtectHome=yes",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
                 "MemoryDenyWriteExecute=yes", "LockPersonality=yes", "Restart=on-failure"):
        assert want in lines, want
    assert "#   AmbientCapabilities=CAP_NET_BIND_SERVICE" in lines
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    p = subprocess.run([analyze, "verify", os.path.join(BOARD, "systemd", unit)], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    problems = [line for line in (p.stdout + p.stderr).splitlines()
                if line.strip() and "is not executable" not in line]  # the program lives on the target
    assert problems == []
