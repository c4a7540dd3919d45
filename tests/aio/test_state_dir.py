"""The state directory is ours alone (issue 22 item 8; ARCHITECTURE "Files on a device": created 0700).

Every directory the commands create on the way to a file is 0700 (the state directory itself
included, not only its last sub-directory), `doctor` finds nothing to say about what we made,
and a run given --state-dir writes nowhere else: not /etc/nmosauth-lite as root, not $HOME.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

from minting import Minter, public_jwk
from standin_as import StandinAS

from nmosauth_lite.aio.files import ensure_private_dir
from nmosauth_lite.aio.oauth import secretbox


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tree(root):
    """Every path under `root` (relative), with its mode."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = mode(p)
    return out


def clean_env(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    for k in ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        env.pop(k, None)
    os.makedirs(env["HOME"], exist_ok=True)
    (tmp_path / "empty.toml").write_text("")  # so no /etc/nmosauth-lite/config.toml is read
    return env


def test_ensure_private_dir_makes_every_missing_parent_0700(tmp_path):
    old = os.umask(0o022)
    try:
        leaf = tmp_path / "a" / "b" / "c"
        ensure_private_dir(str(leaf))
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", leaf):
        assert mode(p) == 0o700, p
    ensure_private_dir(str(leaf))  # idempotent
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        ensure_private_dir(str(tmp_path / "file" / "sub"))


def test_key_file_for_an_explicit_state_dir_stays_beside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    state = str(tmp_path / "scratch")
    key = secretbox.default_key_file(state)
    assert key == state + "-client-credentials.key"
    assert not key.startswith(state + os.sep)  # never inside: a copy of the directory reveals nothing
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x")
    assert secretbox.default_key_file(state) == "/run/credentials/x/nmosauth-lite-client.key"


@pytest.fixture
def standin(tmp_path):
    m = Minter()
    s = StandinAS(str(tmp_path / "as"), path="/x-nmos/auth/v1.0")
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    yield s
    s.stop()


def test_jwks_refresh_creates_the_state_dir_0700_and_doctor_is_content(standin, tmp_path):
    env = clean_env(tmp_path)
    state = tmp_path / "fresh" / "state"
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "jwks", "refresh", "--issuer", standin.issuer,
                        "--ca", standin.pki.ca_cert, "--state-dir", str(state)], env=env, capture_output=True,
                       text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert mode(state) == 0o700 and mode(tmp_path / "fresh") == 0o700
    assert all(m & 0o077 == 0 for m in tree(str(state)).values()), tree(str(state))
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "doctor", "--state-dir", str(state), "--json",
                        "--config", str(tmp_path / "empty.toml")], env=env, capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    doc = json.loads(r.stdout)
    assert [p for p in doc["problems"] if p["check"] == "state"] == []


def _etc_listing():
    d = "/etc/nmosauth-lite"
    if not os.path.isdir(d):
        return None
    return {name: os.stat(os.path.join(d, name)).st_mtime_ns for name in os.listdir(d)}


@pytest.mark.skipif(os.geteuid() != 0, reason="the /etc default applies to root only")
def test_register_with_a_scratch_state_dir_writes_nowhere_else_even_as_root(tmp_path):
    """A real `as serve` and a real `register` as root: the files land in --state-dir and the
    sealing key beside it; /etc/nmosauth-lite and $HOME stay untouched."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "client"))
    from client_support import ServeProc

    srv = ServeProc(tmp_path / "as", "localhost", lifetime=30)
    etc_before = _etc_listing()
    try:
        srv.start()
        env = clean_env(tmp_path)
        work = tmp_path / "work"
        work.mkdir()
        r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "register", "--issuer", srv.issuer, "--ca",
                            srv.ca_file, "--state-dir", "scratch", "--name", "ACME Box SN-1", "--scope",
                            "registration", "--initial-token", srv.iat(), "--config", str(tmp_path / "empty.toml")],
                           env=env, capture_output=True, text=True, timeout=90, cwd=str(work))
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    written = sorted(tree(str(work)))
    assert written[0] == "scratch" and "scratch-client-credentials.key" in written
    assert all(p == "scratch-client-credentials.key" or p.startswith("scratch") for p in written), written
    assert mode(work / "scratch") == 0o700 and mode(work / "scratch-client-credentials.key") == 0o600
    assert os.listdir(env["HOME"]) == []
    assert _etc_listing() == etc_before
