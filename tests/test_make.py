"""The set-up and test entry points a new user runs first (issue 12 §2): `make test` runs
every lane and summarises them, the set-up step installs python3-venv where it is missing."""

import os
import stat
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_make_test_runs_every_lane_and_fails_at_the_end(tmp_path):
    # the real Makefile's `test` recipe, its lanes replaced by stand-ins (py fails first)
    stamp = tmp_path / "stamp"
    stamp.write_text("")
    ran = tmp_path / "ran"
    mk = tmp_path / "lanes.mk"
    mk.write_text("include %s/Makefile\nsysdeps:\n\t@true\n" % ROOT + "".join(
        "test-%s:\n\t@echo %s >> %s; %s\n" % (lane, lane, ran, "exit 1" if lane == "py" else "true")
        for lane in ("py", "pure", "mpy")))
    r = subprocess.run(["make", "--no-print-directory", "-f", str(mk), "STAMP=%s" % stamp,
                        "PURE_STAMP=%s" % stamp, "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert ran.read_text().split() == ["py", "pure", "mpy"]  # a failing lane hides no other lane
    summary = [ln for ln in r.stdout.splitlines() if ln.startswith("make test: lane")]
    assert [ln.split()[3:5] for ln in summary] == [["py", "FAILED"], ["pure", "passed"], ["mpy", "passed"]]
    assert "make test: FAILED" in r.stderr


def test_make_test_passes_when_every_lane_passes(tmp_path):
    stamp = tmp_path / "stamp"
    stamp.write_text("")
    mk = tmp_path / "lanes.mk"
    mk.write_text("include %s/Makefile\nsysdeps:\n\t@true\n" % ROOT
                  + "".join("test-%s:\n\t@true\n" % lane for lane in ("py", "pure", "mpy")))
    r = subprocess.run(["make", "--no-print-directory", "-f", str(mk), "STAMP=%s" % stamp,
                        "PURE_STAMP=%s" % stamp, "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("passed (") == 3 and "every lane passed" in r.stdout


def _tool(d, name, body):
    p = d / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def _sysdeps_venv(tmp_path, uid, python_ok):
    """tools/sysdeps.sh venv with a Python that has (or lacks) ensurepip; `id` and `apt-get`
    stand in for the system (a test must not install Debian packages on the host)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "apt.log"
    py = _tool(bin_, "python3", "exit 0" if python_ok else "exit 1")
    _tool(bin_, "id", "echo %d" % uid)
    _tool(bin_, "apt-get", 'echo "$@" >> %s' % log)
    env = dict(os.environ, PATH="%s:%s" % (bin_, os.environ["PATH"]), PY=str(py))
    r = subprocess.run(["sh", os.path.join(ROOT, "tools", "sysdeps.sh"), "venv"], capture_output=True, text=True,
                       env=env, timeout=30)
    return r, (log.read_text() if log.exists() else "")


def test_setup_installs_python3_venv_when_root(tmp_path):
    r, apt = _sysdeps_venv(tmp_path, 0, python_ok=False)
    assert r.returncode == 0, r.stderr
    assert "install -y -qq --no-install-recommends python3-venv" in apt


def test_setup_asks_for_python3_venv_when_not_root(tmp_path):
    r, apt = _sysdeps_venv(tmp_path, 1000, python_ok=False)
    assert r.returncode == 1 and "please install: python3-venv" in r.stderr and apt == ""


def test_setup_does_nothing_when_venv_works(tmp_path):
    r, apt = _sysdeps_venv(tmp_path, 0, python_ok=True)
    assert r.returncode == 0 and apt == "" and r.stderr == ""


def test_the_pure_lane_tools_are_pinned():
    with open(os.path.join(ROOT, "tests", "pure", "requirements.txt")) as f:
        reqs = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    assert reqs and all("==" in r for r in reqs), reqs
    names = {r.split("==")[0].lower() for r in reqs}
    assert {"pytest", "hypothesis", "ecdsa", "dnspython"} <= names and "cryptography" not in names


def test_bench_only_libraries_come_from_make_bench_not_the_test_extra():
    # issue 20 §5: oxyjwt and granian are comparison baselines, installed by `make bench` only
    import tomllib

    with open(os.path.join(ROOT, "tools", "bench-requirements.txt")) as f:
        bench = [ln.split("#")[0].split("==")[0].strip().lower() for ln in f if ln.split("#")[0].strip()]
    assert set(bench) >= {"oxyjwt", "granian"}
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    named = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for deps in extras.values() for d in deps}
    assert not named & set(bench)
    with open(os.path.join(ROOT, "Makefile")) as f:
        recipe = f.read().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "tools/bench-requirements.txt" in recipe
