"""The firmware bundle (tools/build_bundle.py): one .pyz that runs on a bare Python.

The bundle runs in a fresh venv made with --without-pip (nothing installed: no
cryptography, no ecdsa), so the pure backend and the vendored ecdsa must carry it;
and with this suite's Python (cryptography installed), where it must use cryptography.
"""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from minting import Minter, public_jwk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "nmosauth_lite", "data")
EXAMPLE_ARGS = ["--jwks", os.path.join(DATA, "is10-example-jwks.json"), "--audience", "node1.example.com",
                "--now", "1548779500", "--path", "/x-nmos/connection/v1.1/single/senders"]


def build(out, *extra, env=None):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_bundle.py"), "--out", str(out)]
                       + list(extra), capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "nmosauth-lite.pyz"
    printed = build(out)
    return out, printed


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A venv with nothing in it, from the interpreter this suite runs on."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    p = subprocess.run([py, "-c", "import cryptography"], capture_output=True, timeout=60)
    assert p.returncode != 0, "the bare venv must not see cryptography"
    p = subprocess.run([py, "-c", "import ecdsa"], capture_output=True, timeout=60)
    assert p.returncode != 0, "the bare venv must not see ecdsa"
    return py


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "STATE_DIRECTORY"))}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run(python, pyz, args, token=None, cwd=None):
    return subprocess.run([python, str(pyz)] + args, input=token, capture_output=True, text=True, timeout=120,
                          env=clean_env(), cwd=cwd)


def test_build_prints_the_size(bundle):
    out, printed = bundle
    assert "%d bytes" % os.path.getsize(out) in printed and "bytecode pyc" in printed
    with open(out, "rb") as f:
        assert f.readline() == b"#!/usr/bin/env python3\n"
    assert os.stat(out).st_mode & 0o111


def test_contents_are_the_package_and_the_vendored_modules_only(bundle):
    out, _ = bundle
    names = set(zipfile.ZipFile(out).namelist())
    assert "__main__.py" in names and "nmosauth_lite/data/build.json" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/") or "/test_" in n]
    assert "ecdsa/__init__.py" in names and "six.py" in names
    assert any(n.startswith("LICENSES/ecdsa-") for n in names) and any(n.startswith("LICENSES/six-") for n in names)
    assert not [n for n in names if n.startswith("cryptography")]
    package = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "nmosauth_lite")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            if not f.endswith(".pyc"):
                package.add(os.path.relpath(os.path.join(dirpath, f), ROOT).replace(os.sep, "/"))
    assert package <= names
    # our modules carry an unchecked-hash pyc (PEP 552 flags == 1) next to the source
    with zipfile.ZipFile(out) as z:
        pyc = z.read("nmosauth_lite/validator.pyc")
    assert int.from_bytes(pyc[4:8], "little") == 1
    info = json.loads(zipfile.ZipFile(out).read("nmosauth_lite/data/build.json"))
    assert info["bytecode"] == "pyc" and set(info["vendored"]) == {"ecdsa", "six"}


def test_verify_is10_example_without_cryptography(bundle, bare_python, tmp_path):
    out, _ = bundle
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read()
    p = run(bare_python, out, ["verify"] + EXAMPLE_ARGS + ["--token", "-"], token, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200
    p = run(bare_python, out, ["verify", "--backend", "cryptography"] + EXAMPLE_ARGS + ["--token", "-"], token)
    assert p.returncode == 2 and "not installed" in p.stderr


def test_verify_es256_with_the_vendored_ecdsa(bundle, bare_python, tmp_path):
    out, _ = bundle
    m = Minter()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(m.ec256, "ec-256")]}))
    token = m.token("ES256", aud=["node1.example.com"])
    args = ["verify", "--jwks", str(jwks), "--audience", "node1.example.com", "--now", str(m.NOW),
            "--path", "/x-nmos/node/v1.3/self", "--token", "-"]
    p = run(bare_python, out, args, token)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200
    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    p = run(bare_python, out, args, bad)
    assert p.returncode == 1 and json.loads(p.stdout)["status"] == 401


def test_doctor_from_the_bundle_without_cryptography(bundle, bare_python, tmp_path):
    out, _ = bundle
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    p = run(bare_python, out, ["doctor", "--json", "--state-dir", str(state)])
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["python"]["bundle"] is True
    assert doc["backends"]["auto"] == "pure" and doc["backends"]["cryptography"]["available"] is False
    assert doc["backends"]["pure"]["rs512"] and doc["backends"]["pure"]["es256"]
    assert doc["clock"]["build_time_source"] == "bundle build.json"


def test_uses_cryptography_when_the_target_has_it(bundle, tmp_path):
    out, _ = bundle
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    p = run(sys.executable, out, ["doctor", "--json", "--state-dir", str(state)])
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["backends"]["auto"] == "cryptography" and doc["backends"]["cryptography"]["rs512"]
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read()
    p = run(sys.executable, out, ["verify", "--backend", "cryptography"] + EXAMPLE_ARGS + ["--token", "-"], token)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == 200


def test_sources_only_build_is_smaller_and_works(bundle, bare_python, tmp_path):
    out, _ = bundle
    small = tmp_path / "small.pyz"
    assert "bytecode none" in build(small, "--compile", "none")
    assert not [n for n in zipfile.ZipFile(small).namelist() if n.endswith(".pyc")]
    assert os.path.getsize(small) < os.path.getsize(out)
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read()
    p = run(bare_python, small, ["verify"] + EXAMPLE_ARGS + ["--token", "-"], token)
    assert p.returncode == 0, p.stderr


def test_builds_are_reproducible(tmp_path):
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    build(tmp_path / "a.pyz", env=env)
    build(tmp_path / "b.pyz", env=env)
    assert (tmp_path / "a.pyz").read_bytes() == (tmp_path / "b.pyz").read_bytes()
