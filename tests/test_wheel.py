"""The package as a user gets it from `pip install .` (issue 12 §2): not the editable tree.

Builds the wheel from a copy of the source tree, checks it carries every non-Python file of
the package (what the code reads at run time: the IS-10 example token and keys, NOTICE),
installs it into fresh venvs (no extras, then [crypto]) and runs the console script there:
`doctor`, the bundled example through `verify`, and `demo` (which without cryptography must
name the extra in one line and exit 2).
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIP = ["-m", "pip", "--disable-pip-version-check", "-q"]
EXAMPLE = ["--audience", "node1.example.com", "--now", "1548779500",
           "--path", "/x-nmos/connection/v1.1/single/senders", "--token", "-"]  # as `make example`

pytestmark = pytest.mark.timeout(600)


def _run(cmd, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _source_files():
    out = _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, timeout=30)
    assert out.returncode == 0, out.stderr
    return [f for f in out.stdout.splitlines() if os.path.isfile(os.path.join(ROOT, f))]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built like a fresh clone's `pip install .` would (from a copy: no build/ here)."""
    src = tmp_path_factory.mktemp("src")
    for f in _source_files():
        os.makedirs(src / os.path.dirname(f), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), src / f)
    out = tmp_path_factory.mktemp("wheel")
    r = _run([sys.executable] + PIP + ["wheel", "--no-deps", "-w", str(out), str(src)])
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("nmosauth_lite-*.whl")
    return whl


def _venv(tmp_path_factory, wheel, extra):
    d = tmp_path_factory.mktemp("venv" + (extra or ""))
    r = _run([sys.executable, "-m", "venv", str(d)])
    assert r.returncode == 0, r.stderr
    py = str(d / "bin" / "python")
    r = _run([py] + PIP + ["install", "%s%s" % (wheel, "[%s]" % extra if extra else "")])
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def bare(tmp_path_factory, wheel):
    return _venv(tmp_path_factory, wheel, None)


@pytest.fixture(scope="module")
def crypto(tmp_path_factory, wheel):
    return _venv(tmp_path_factory, wheel, "crypto")


def _cli(venv, *args, stdin=None, home):
    """The installed console script, from a directory where the source tree is not importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STATE_DIRECTORY", "VIRTUAL_ENV")}
    env["HOME"] = str(home)
    return _run([str(venv / "bin" / "nmosauth-lite")] + list(args), input=stdin, env=env, cwd=str(home))


def _data_dir(venv):
    r = _run([str(venv / "bin" / "python"), "-c", "import nmosauth_lite, os; "
              "print(os.path.join(os.path.dirname(nmosauth_lite.__file__), 'data'))"], cwd="/")
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    assert not path.startswith(ROOT), path  # the installed copy, not this tree
    return path


def test_the_wheel_carries_every_file_the_package_has(wheel):
    # every non-Python file under nmosauth_lite/ is read at run time (doctor, verify examples):
    # a package-data pattern that misses one is how `doctor` crashed after `pip install .`
    wanted = {f for f in _source_files() if f.startswith("nmosauth_lite/") and not f.endswith(".py")}
    assert wanted, "no data files found"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read([n for n in names if n.endswith(".dist-info/METADATA")][0]).decode()
    assert wanted <= names, sorted(wanted - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: Apache-2.0" in meta and "Requires-Python: >=3.11" in meta
    for extra in ("crypto", "fallback", "as"):
        assert "Provides-Extra: %s" % extra in meta


@pytest.mark.parametrize("which", ["bare", "crypto"])
def test_doctor_and_the_bundled_example(which, request, tmp_path):
    venv = request.getfixturevalue(which)
    r = _cli(venv, "doctor", "--json", home=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    bad = [p for p in doc["problems"] if p["check"] == "backends" and "ES256" not in p["message"]]
    assert not bad, doc["problems"]  # (no extras: ES256 needs cryptography or ecdsa, a fair warning)
    backend = "cryptography" if which == "crypto" else "pure"
    assert doc["backends"][backend]["rs512"] is True and doc["backends"]["auto"] == backend
    assert doc["python"]["package_path"].startswith(str(venv))
    data = _data_dir(venv)
    with open(os.path.join(data, "is10-example-token.txt")) as f:
        token = f.read()
    r = _cli(venv, "verify", "--jwks", os.path.join(data, "is10-example-jwks.json"), *EXAMPLE, stdin=token,
             home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == 200


def test_demo_without_cryptography_names_the_extra(bare, tmp_path):
    r = _cli(bare, "demo", home=tmp_path)
    assert (r.returncode, r.stdout) == (2, ""), r.stdout + r.stderr
    assert r.stderr == "nmosauth-lite demo: needs the 'cryptography' package: pip install 'nmosauth-lite[as]'\n"
    r = _cli(bare, "as", "serve", "--state-dir", str(tmp_path / "as"), "--listen", "127.0.0.1:0", home=tmp_path)
    assert r.returncode == 2 and r.stderr.endswith("pip install 'nmosauth-lite[as]'\n") and "Traceback" not in r.stderr


def test_demo_with_crypto(crypto, tmp_path):
    r = _cli(crypto, "demo", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout and "Summary" in r.stdout
