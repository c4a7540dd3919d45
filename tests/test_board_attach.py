"""board/ for `attach` (issue 19 §1): its unit is sandboxed and verifies, runs as its own user that
can read nothing of protect's or the authorization server's, and its [attach] table in the config
template documents every setting with its real default and loads."""

import os
import shutil
import subprocess

import pytest

import test_board as tb
from nmosauth_lite.commands import attach

UNIT = os.path.join(tb.BOARD, "systemd", "nmosauth-lite-attach.service")


@pytest.fixture
def units(monkeypatch):
    monkeypatch.setitem(tb.UNITS, "attach", "nmosauth-lite-attach.service")
    return {name: tb.unit_settings(name) for name in tb.UNITS}


def test_attach_unit_is_sandboxed_and_verifies(units, tmp_path):
    s = units["attach"]
    assert s["User"] == s["Group"] == ["nmosauth-attach"] and s["Type"] == ["notify"]
    for key, want in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("UMask", "0077"),
                      ("StateDirectoryMode", "0700"), ("PrivateTmp", "yes"), ("MemoryDenyWriteExecute", "yes"),
                      ("RestrictNamespaces", "yes"), ("CapabilityBoundingSet", "")):
        assert s[key] == [want], key
    assert s["ExecStart"][:3] == ["/usr/local/bin/nmosauth-lite", "attach", "--config"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    p = subprocess.run([analyze, "verify", UNIT], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert [line for line in (p.stdout + p.stderr).splitlines()
            if line.strip() and "is not executable" not in line] == []


def test_attach_has_its_own_user_and_sees_nothing_of_protect_or_the_as(units):
    users = tb.sysusers()
    assert users["nmosauth-attach"] == "/var/lib/nmosauth-lite-attach"
    users_of = {name: s["User"][0] for name, s in units.items()}
    assert len(set(users_of.values())) == len(users_of)  # three services, three users
    w = {name: tb.writable(s) for name, s in units.items()}
    assert w["attach"] == {"/var/lib/nmosauth-lite-attach", "/var/lib/nmosauth-lite-attach-key",
                           "/run/nmosauth-lite-attach"}
    for other in ("protect", "as"):
        assert not [(a, b) for a in w["attach"] for b in w[other] if tb.overlaps(a, b)]
    hidden = {p.lstrip("-") for p in units["attach"]["InaccessiblePaths"]}
    assert {"/var/lib/nmosauth-lite-as", "/etc/nmosauth-lite/tls/as", "/var/lib/nmosauth-lite-protect",
            "/etc/nmosauth-lite/tls/protect", "/var/log/nmosauth-lite-protect"} <= hidden
    # the sealing key lives outside the credentials' directory (CredentialStore refuses it inside)
    key = units["attach"]["ExecStart"][units["attach"]["ExecStart"].index("--key-file") + 1]
    assert key.startswith("/var/lib/nmosauth-lite-attach-key/")
    rows = {path: (mode, user, group) for _t, path, mode, user, group in tb.tmpfiles()}
    assert rows["/var/lib/nmosauth-lite-attach"] == (0o700, "nmosauth-attach", "nmosauth-attach")
    assert rows["/var/lib/nmosauth-lite-attach-key"] == (0o700, "nmosauth-attach", "nmosauth-attach")
    assert rows["/etc/nmosauth-lite/attach"] == (0o750, "root", "nmosauth-attach")
    assert not [p for p, (_m, u, g) in rows.items() if "nmosauth-attach" in (u, g) and
                ("protect" in p or p.endswith("-as") or "/tls/as" in p)]


def test_attach_table_documents_every_setting_with_its_default(tmp_path):
    import tomllib

    path = tb.uncommented(tmp_path)
    with open(path, "rb") as f:
        shown = tomllib.load(f)["attach"]
    assert set(shown) == set(attach.SETTINGS)
    for name, (_type, default) in attach.SETTINGS.items():
        if default is not None:
            assert shown[name] == default, name
    assert attach._read_config(path, "attach", attach.SETTINGS)["listen"] == "127.0.0.1:8445"
    # the shipped template (table commented out) gives attach its defaults and protect its table
    assert attach._read_config(tb.EXAMPLE, "attach", attach.SETTINGS) == {}
    assert "attach" not in tb.protect._read_config(path)


def test_install_stages_the_attach_unit(tmp_path):
    root = tmp_path / "stage"
    tb.stage(root, tmp_path)
    assert (root / "etc/systemd/system/nmosauth-lite-attach.service").read_bytes() == open(UNIT, "rb").read()
    assert oct((root / "var/lib/nmosauth-lite-attach-key").stat().st_mode & 0o777) == "0o700"


def test_the_config_example_in_docs_retrofit_loads(tmp_path):
    # the TOML shown to operators is a real config: every key known, the [attach] table valid
    import re
    import tomllib

    from nmosauth_lite.commands import register

    with open(os.path.join(tb.ROOT, "docs", "retrofit.md"), encoding="utf-8") as f:
        block = re.search(r"```toml\n(.*?)```", f.read(), re.S).group(1)
    doc = tomllib.loads(block)
    assert set(doc["client"]) <= set(register.CONFIG_KEYS)
    path = tmp_path / "config.toml"
    path.write_text(block)
    assert attach._read_config(str(path), "attach", attach.SETTINGS)["listen"].startswith("unix:/run/nmosauth-lite-attach/")
    with open(UNIT) as f:  # the runtime directory the unit makes is the one shown
        assert f.read().split("\nRuntimeDirectory=")[1].split()[0] == "nmosauth-lite-attach"
