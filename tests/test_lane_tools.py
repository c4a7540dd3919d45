"""The tools behind `make test`'s interpreter and arm64 lanes (issue 18): finding an interpreter,
reading the Debian mirror from apt's own sources, the lane runner's summary."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")


def _sh(*argv, **kw):
    return subprocess.run(["sh", *argv], capture_output=True, text=True, timeout=60, **kw)


def test_pythons_finds_an_interpreter_of_the_version_asked_for():
    v = "%d.%d" % sys.version_info[:2]
    r = _sh(os.path.join(TOOLS, "pythons.sh"), v)
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=60).stdout.strip()
    assert out == v


def test_pythons_says_where_it_looked_when_there_is_none():
    r = _sh(os.path.join(TOOLS, "pythons.sh"), "3.99")
    assert r.returncode == 1 and r.stdout == ""
    assert "no CPython 3.99 here" in r.stderr and "versions/3.99.*" in r.stderr


def test_mirror_is_read_from_one_line_and_deb822_sources(tmp_path):
    one = tmp_path / "one.list"
    one.write_text("# deb http://commented.example.invalid/debian bookworm main\n"
                   "deb [arch=amd64 signed-by=/k.gpg] http://one.example.invalid/debian bookworm-updates main\n"
                   "deb http://one.example.invalid/debian bookworm main\n")
    d822 = tmp_path / "d.sources"
    d822.write_text("Types: deb-src\nURIs: http://src.example.invalid/debian\nSuites: trixie\n\n"
                    "Types: deb\nURIs: http://new.example.invalid/debian\nSuites: trixie trixie-updates\n"
                    "Components: main\n")
    mirror = os.path.join(TOOLS, "arm", "mirror.sh")
    assert _sh(mirror, "bookworm", str(one), str(d822)).stdout.strip() == "http://one.example.invalid/debian"
    assert _sh(mirror, "trixie", str(one), str(d822)).stdout.strip() == "http://new.example.invalid/debian"
    assert _sh(mirror, "sid", str(one), str(d822)).stdout.strip() == ""


def test_lane_runner_prints_each_lane_whole_and_one_summary_line_per_lane(tmp_path):
    mk = tmp_path / "m.mk"
    mk.write_text("test-a:\n\t@echo out-a; sleep 1\ntest-b:\n\t@echo out-b; exit 3\ntest-c:\n\t@echo out-c\n")
    r = _sh(os.path.join(TOOLS, "lanes.sh"), str(tmp_path / "logs"), "make -s --no-print-directory -f %s" % mk,
            "a b", "c")
    assert r.returncode == 1 and "make test: FAILED" in r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[3:5] for ln in lines if ln.startswith("make test: lane") and "starting" not in ln] == [
        ["a", "passed"], ["b", "FAILED"], ["c", "passed"]]
    for lane, n in (("a", 1), ("b", 2), ("c", 3)):
        assert "make test: lane %s starting (%d of 3)" % (lane, n) in lines
        head = lines.index(next(ln for ln in lines if ln.startswith("----- lane %s:" % lane)))
        assert lines[head + 1] == "out-" + lane  # the lane's own output follows its header, whole
