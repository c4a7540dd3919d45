"""board/: the config template documents every setting and loads; install.sh stages idempotently;
the systemd units carry the sandbox and pass `systemd-analyze verify`; `protect` and `as serve`
run as separate users with separate state, so a compromised proxy cannot read the authorization
server's keys (issue 11 §4), checked on the units and on a staged `install.sh --root` tree.
"""

import fnmatch
import glob
import os
import re
import shutil
import stat
import subprocess

import pytest

from nmosauth_lite.aio.address import parse_listen
from nmosauth_lite.authserver import config as as_config
from nmosauth_lite.commands import protect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = os.path.join(ROOT, "board")
EXAMPLE = os.path.join(BOARD, "config.toml.example")
SETTING = re.compile(r"^#(\[[a-z._]+\]|[a-z_]+ = .*)$")  # "#name = value" / "#[table]"; prose is "# ..."


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
    # one closed directory per service now (issue 11 §4), no longer one shared tls/ at 0750
    assert modes["etc/nmosauth-lite/tls/protect"] == 0o750 and modes["etc/nmosauth-lite/tls/as"] == 0o750
    assert modes["etc/systemd/system/nmosauth-lite-protect.service"] == 0o644
    assert (stage / "usr/local/lib/nmosauth-lite/nmosauth-lite.pyz").read_bytes() == pyz.read_bytes()
    assert "/usr/local/lib/nmosauth-lite/nmosauth-lite.pyz" in (stage / "usr/local/bin/nmosauth-lite").read_text()


def test_install_refuses_unknown_options_and_missing_bundle(tmp_path):
    p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--bogus"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--root", str(tmp_path / "s"), "--pyz",
                        str(tmp_path / "none.pyz")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "make bundle" in p.stderr


UNITS = {"protect": "nmosauth-lite-protect.service", "as": "nmosauth-lite-as.service"}
SYSUSERS = os.path.join(BOARD, "sysusers.d", "nmosauth-lite.conf")
TMPFILES = os.path.join(BOARD, "tmpfiles.d", "nmosauth-lite.conf")
# unit settings that make a path writable under ProtectSystem=strict, and where they point
WRITABLE = {"StateDirectory": "/var/lib/", "LogsDirectory": "/var/log/", "CacheDirectory": "/var/cache/",
            "RuntimeDirectory": "/run/", "ReadWritePaths": ""}


def unit_settings(name):
    """{key: [values]} of the [Service] section (values split on whitespace)."""
    out, section = {}, None
    with open(os.path.join(BOARD, "systemd", UNITS[name])) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                key, _, value = line.partition("=")
                out.setdefault(key, []).extend(value.split() or [""])
    return out


def sysusers():
    """{user: home} of the u lines (each also makes a group of the same name)."""
    users = {}
    with open(SYSUSERS) as f:
        for line in f:
            if line.startswith("u "):
                fields = line.split()
                users[fields[1]] = fields[-2]
    return users


def tmpfiles():
    """[(type, path, mode, user, group)] of the d/z lines."""
    rows = []
    with open(TMPFILES) as f:
        for line in f:
            if line[:2] in ("d ", "z "):
                t, path, mode, user, group = line.split()[:5]
                rows.append((t, path, int(mode, 8), user, group))
    return rows


def writable(settings):
    paths = set()
    for key, prefix in WRITABLE.items():
        for v in settings.get(key, []):
            if v:
                paths.add(os.path.normpath(prefix + v.lstrip("-")))
    return paths


def overlaps(a, b):
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@pytest.mark.parametrize("name", sorted(UNITS))
def test_units_are_sandboxed_and_verify(name, tmp_path):
    unit = UNITS[name]
    with open(os.path.join(BOARD, "systemd", unit)) as f:
        text = f.read()
    lines = {line.strip() for line in text.splitlines()}
    user = "nmosauth-" + name
    for want in ("Type=notify", "User=" + user, "Group=" + user, "StateDirectory=nmosauth-lite-" + name,
                 "StateDirectoryMode=0700", "UMask=0077",
                 "ConfigurationDirectory=nmosauth-lite", "ProtectSystem=strict", "ProtectHome=yes",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
                 "MemoryDenyWriteExecute=yes", "LockPersonality=yes", "Restart=on-failure"):
        assert want in lines, want
    assert "#   AmbientCapabilities=CAP_NET_BIND_SERVICE" in lines
    assert "DynamicUser=yes" not in lines  # static users: the admin commands need a stable owner
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    p = subprocess.run([analyze, "verify", os.path.join(BOARD, "systemd", unit)], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    problems = [line for line in (p.stdout + p.stderr).splitlines()
                if line.strip() and "is not executable" not in line]  # the program lives on the target
    assert problems == []


def test_units_run_as_separate_users_with_nothing_writable_in_common():
    # issue 11 §4: protect (network-facing) and the AS never share a user, a group or a writable path
    users = sysusers()
    s = {name: unit_settings(name) for name in UNITS}
    assert s["protect"]["User"] != s["as"]["User"] and s["protect"]["Group"] != s["as"]["Group"]
    for name in UNITS:
        assert s[name]["User"][0] in users and s[name]["Group"] == s[name]["User"]
        assert "SupplementaryGroups" not in s[name]
    w = {name: writable(s[name]) for name in UNITS}
    assert "/var/lib/nmosauth-lite-as" in w["as"] and "/var/lib/nmosauth-lite-protect" in w["protect"]
    assert not [(a, b) for a in w["protect"] for b in w["as"] if overlaps(a, b)]
    # each service's home is its own state directory
    for name in UNITS:
        assert users[s[name]["User"][0]] == "/var/lib/nmosauth-lite-" + name
    # the other service's secrets are not even visible (InaccessiblePaths, on top of the modes)
    hidden = {name: {p.lstrip("-") for p in s[name].get("InaccessiblePaths", [])} for name in UNITS}
    assert {"/var/lib/nmosauth-lite-as", "/etc/nmosauth-lite/tls/as"} <= hidden["protect"]
    assert {"/var/lib/nmosauth-lite-protect", "/etc/nmosauth-lite/tls/protect"} <= hidden["as"]
    for name in UNITS:
        assert not [p for p in hidden[name] for q in w[name] if overlaps(p, q)]


def test_owners_and_modes_give_each_secret_to_one_service(tmp_path):
    users = sysusers()
    rows = tmpfiles()
    by_path = {path: (t, mode, user, group) for t, path, mode, user, group in rows}
    for _t, path, mode, user, group in rows:
        assert user in users or user == "root", path
        assert group in users or group == "root", path  # each sysusers user brings its group
        assert not mode & 0o002, path
    for name in UNITS:
        svc = "nmosauth-" + name
        assert by_path["/var/lib/nmosauth-lite-" + name] == ("d", 0o700, svc, svc)
        assert by_path["/etc/nmosauth-lite/tls/" + name] == ("d", 0o750, "root", svc)
        t, mode, user, group = by_path["/etc/nmosauth-lite/tls/%s/*.key" % name]
        assert (t, user, group) == ("z", "root", svc) and mode & 0o077 in (0o040, 0o000)
    # the template puts each service's key in its own directory
    import tomllib

    with open(EXAMPLE, "rb") as f:
        p = tomllib.load(f)["protect"]
    assert p["key"].startswith("/etc/nmosauth-lite/tls/protect/") and p["key"].endswith(".key")
    with open(uncommented(tmp_path), "rb") as f:
        a = tomllib.load(f)["authserver"]
    assert a["tls"]["key_file"].startswith("/etc/nmosauth-lite/tls/as/") and a["tls"]["key_file"].endswith(".key")
    assert a["state_dir"] == "/var/lib/nmosauth-lite-as" and p.get("state_dir") is None


def test_the_two_services_listen_on_different_ports(tmp_path):
    # issue 11 §4: both on one machine must not collide; the AS's port is its code default
    import tomllib

    with open(EXAMPLE, "rb") as f:
        p = tomllib.load(f)["protect"]
    protect_port = parse_listen(p["listen"])[1]
    as_port = as_config.Config({}).listen_port
    assert as_port == parse_listen(as_config.DEFAULT_LISTEN)[1]
    with open(uncommented(tmp_path), "rb") as f:
        shown = tomllib.load(f)["authserver"]["listen"]
    assert parse_listen(shown)[1] == as_port  # the template shows the real default
    assert protect_port != as_port
    for name in UNITS:  # the units pass no --listen of their own
        assert "--listen" not in " ".join(unit_settings(name)["ExecStart"])


def stage(root, tmp_path, *extra):
    pyz = tmp_path / "nmosauth-lite.pyz"
    pyz.write_bytes(b"#!/usr/bin/env python3\nPK-stand-in\n")
    tls = {}
    for svc in UNITS:
        for kind in ("cert", "key"):
            f = tmp_path / ("%s.%s" % (svc, kind))
            f.write_text("-----BEGIN %s %s-----\n" % (svc, kind))
            f.chmod(0o644)  # a careless source mode must not survive
            tls["--%s-%s" % (svc, kind)] = str(f)
    args = ["sh", os.path.join(BOARD, "install.sh"), "--root", str(root), "--pyz", str(pyz)]
    for k, v in tls.items():
        args += [k, v]
    p = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def matching_rule(rel, rows):
    for t, path, mode, user, group in rows:
        if t == "d" and rel == path or t == "z" and fnmatch.fnmatch(rel, path):
            return mode, user, group
    return None


def test_staged_tree_modes_follow_the_tmpfiles_record(tmp_path):
    # staging cannot chown to users the build host lacks: modes are set now, owners come from
    # tmpfiles.d at first boot (the next test applies it to the staged tree as systemd would)
    root = tmp_path / "stage"
    stage(root, tmp_path)
    rows = tmpfiles()
    assert (root / "usr/local/lib/sysusers.d/nmosauth-lite.conf").read_bytes() == open(SYSUSERS, "rb").read()
    assert (root / "usr/local/lib/tmpfiles.d/nmosauth-lite.conf").read_bytes() == open(TMPFILES, "rb").read()
    seen = set()
    for path in root.rglob("*"):
        rel = "/" + str(path.relative_to(root))
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert not mode & 0o002, rel  # nothing world-writable
        rule = matching_rule(rel, rows)
        if rule is not None:
            assert mode == rule[0], (rel, oct(mode))
            seen.add(rel)
        if rel.startswith("/etc/nmosauth-lite/tls/") and rel.endswith(".key"):
            assert rule is not None and not mode & 0o007, rel  # every key: a rule, and no access for others
    assert {"/etc/nmosauth-lite/tls/protect/node.key", "/etc/nmosauth-lite/tls/as/auth.key",
            "/var/lib/nmosauth-lite-protect", "/var/lib/nmosauth-lite-as"} <= seen
    assert stat.S_IMODE((root / "etc/nmosauth-lite/tls/protect/node.pem").stat().st_mode) == 0o644
    assert not (root / "etc/nmosauth-lite/tls/node.key").exists()


def can(uid, gid, op, path):
    """Run `op` (read / list) on `path` as uid:gid with no other groups; True when allowed."""
    code = {"read": "open(%r, 'rb').read()", "list": "import os; os.listdir(%r)"}[op] % str(path)
    p = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", code], user=uid, group=gid, extra_groups=[],
                       cwd="/", capture_output=True, text=True, timeout=30)
    if p.returncode and "PermissionError" not in p.stderr:
        raise AssertionError(p.stderr)
    return p.returncode == 0


def test_after_first_boot_protect_cannot_read_the_as_keys():
    # issue 11 §4, end to end on the staged tree: make the users (systemd-sysusers) and owners
    # (systemd-tmpfiles) exactly as the first boot does, then try each file as each service's uid.
    tools = [shutil.which(t) for t in ("systemd-sysusers", "systemd-tmpfiles")]
    if None in tools or os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root, systemd-sysusers and systemd-tmpfiles")
    import tempfile

    top = tempfile.mkdtemp(prefix="board-boot-")  # not under pytest's 0700 tmp: the uids must reach it
    try:
        os.chmod(top, 0o755)
        root = os.path.join(top, "stage")
        import pathlib

        stage(root, pathlib.Path(top))
        for tool in tools:
            arg = ["--create"] if tool.endswith("tmpfiles") else []
            p = subprocess.run([tool, "--root=" + root] + arg, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
        ids = {}
        with open(os.path.join(root, "etc/passwd")) as f:
            for line in f:
                name, _x, uid, gid = line.split(":")[:4]
                ids[name] = (int(uid), int(gid))
        groups = {}
        with open(os.path.join(root, "etc/group")) as f:
            for line in f:
                name, _x, gid = line.split(":")[:3]
                groups[int(gid)] = name
        names = {0: "root"}
        names.update({uid: n for n, (uid, _g) in ids.items()})
        for _t, path, mode, user, group in tmpfiles():
            for f in glob.glob(root + path):
                st = os.lstat(f)
                assert (names.get(st.st_uid), groups.get(st.st_gid, "root" if st.st_gid == 0 else None),
                        stat.S_IMODE(st.st_mode)) == (user, group, mode), path
        tls = os.path.join(root, "etc/nmosauth-lite/tls")
        lib = os.path.join(root, "var/lib")
        pro, asv = ids["nmosauth-protect"], ids["nmosauth-as"]
        assert can(*pro, "read", tls + "/protect/node.key")
        assert can(*asv, "read", tls + "/as/auth.key")
        assert not can(*pro, "read", tls + "/as/auth.key")
        assert not can(*asv, "read", tls + "/protect/node.key")
        assert can(*asv, "list", lib + "/nmosauth-lite-as")
        assert not can(*pro, "list", lib + "/nmosauth-lite-as")
        assert not can(*asv, "list", lib + "/nmosauth-lite-protect")
        assert can(*pro, "read", os.path.join(root, "etc/nmosauth-lite/config.toml"))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_readme_admin_commands_run_as_the_owning_user():
    # the documented commands must not make root-owned files in a service's state directory
    with open(os.path.join(BOARD, "README.md")) as f:
        text = f.read()
    admin = [line.strip() for line in text.splitlines() if re.search(r"nmosauth-lite (as |doctor|jwks)", line)
             and not line.lstrip().startswith(("|", "-", "`install.sh"))]
    commands = [a for a in admin if a.startswith("sudo")]
    assert commands
    for line in commands:
        if " as " in line and "as serve" not in line:
            assert "sudo -u nmosauth-as " in line and "--state-dir /var/lib/nmosauth-lite-as" in line, line
        elif "doctor" in line or "jwks" in line:
            assert "sudo -u nmosauth-protect " in line and "/var/lib/nmosauth-lite-protect" in line, line
    assert "sudo -u nmosauth " not in text and "-g nmosauth " not in text
