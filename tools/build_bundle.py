#!/usr/bin/env python3
"""Build the firmware bundle: dist/nmosauth-lite.pyz, one zipapp run with `python3` (issue 8 item 3).

Holds the nmosauth_lite package (no tests, no __pycache__) and its data files, and
vendors the pure-Python dependency of the pure backend's ES256/ES384: `ecdsa` (MIT)
and the `six` module it imports (MIT), with their licence texts under LICENSES/.
`cryptography` is never vendored (it is a compiled extension): the bundle uses it
when the target's Python can import it and falls back to the pure backend
otherwise. Byte-code: by default every module also gets an unchecked-hash .pyc
(PEP 552) next to its .py, which zipimport loads directly on the interpreter
version that built it (a cold start without compiling) and skips elsewhere,
falling back to the .py; `--compile none` leaves them out. Builds are
reproducible: sorted entries, fixed timestamps (SOURCE_DATE_EPOCH when set).

    python3 tools/build_bundle.py [--out dist/nmosauth-lite.pyz] [--compile pyc|none] [--measure]
"""

import argparse
import ast
import importlib.metadata
import importlib.util
import io
import json
import marshal
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACKAGE = "nmosauth_lite"
DEFAULT_OUT = os.path.join(ROOT, "dist", "nmosauth-lite.pyz")
SHEBANG = b"#!/usr/bin/env python3\n"
# distribution -> licence expected in its metadata; a change of licence stops the build for review
VENDORED = {"ecdsa": "MIT", "six": "MIT"}
MAIN = b'''"""nmosauth-lite firmware bundle: `python3 nmosauth-lite.pyz COMMAND ...` (see --help)."""
import sys

if sys.version_info < (3, 11):
    sys.stderr.write("nmosauth-lite needs Python 3.11 or newer (this is %d.%d)\\n" % sys.version_info[:2])
    sys.exit(2)

from nmosauth_lite.cli import main

sys.exit(main())
'''
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry

sys.path.insert(0, ROOT)


def _source_files(top, skip_tests=False):
    """(archive name, path on disk) of every file under `top`, sorted; never caches or tests."""
    out = []
    base = os.path.dirname(top)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            if skip_tests and name.startswith("test_") and name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            out.append((os.path.relpath(path, base).replace(os.sep, "/"), path))
    return out


def _vendored():
    """Files, licences and versions of the vendored distributions (from this interpreter)."""
    files, licences, versions = [], {}, {}
    for dist_name, licence in VENDORED.items():
        dist = importlib.metadata.distribution(dist_name)
        found = dist.metadata.get("License") or ""
        if found.strip() != licence:
            raise SystemExit("build_bundle: %s now says its licence is %r, not %r: review before vendoring"
                             % (dist_name, found, licence))
        versions[dist_name] = dist.version
        for top in (dist.read_text("top_level.txt") or dist_name).split():
            spec = importlib.util.find_spec(top)
            if spec is None or spec.origin is None:
                raise SystemExit("build_bundle: cannot find %s (pip install '.[test]' into this venv)" % top)
            if spec.submodule_search_locations:  # a package
                files += _source_files(list(spec.submodule_search_locations)[0], skip_tests=True)
            else:
                files.append((top + ".py", spec.origin))
        text = None
        for f in dist.files or ():
            if os.path.basename(str(f)).upper().startswith(("LICENSE", "COPYING")):
                text = f.read_text()
                break
        if not text:
            raise SystemExit("build_bundle: no licence text found for %s" % dist_name)
        licences[dist_name] = text
    return files, licences, versions


def _pyc(source, archive_name):
    """An unchecked-hash pyc (PEP 552): valid without timestamps, ignored by other Python versions.

    Docstrings are left out (optimize=2) unless the module has an `assert`, which
    optimize would drop as well (our package has none: STYLE.md)."""
    tree = ast.parse(source, archive_name)
    optimize = 0 if any(isinstance(n, ast.Assert) for n in ast.walk(tree)) else 2
    code = compile(tree, archive_name, "exec", dont_inherit=True, optimize=optimize)
    header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + importlib.util.source_hash(source)
    return header + marshal.dumps(code)


def build(out=DEFAULT_OUT, compile_mode="pyc", built=None):
    """Write the bundle to `out`; return a dict describing it."""
    if compile_mode not in ("pyc", "none"):
        raise ValueError("compile_mode must be pyc or none")
    built = int(built if built is not None else os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    stamp = time.gmtime(max(built, ZIP_EPOCH))[:6]
    from nmosauth_lite import __version__

    files = _source_files(os.path.join(ROOT, PACKAGE))
    vend_files, licences, versions = _vendored()
    info = {"name": "nmosauth-lite", "version": __version__, "built": built,
            "python": "%d.%d" % sys.version_info[:2], "bytecode": compile_mode, "vendored": versions}
    entries = [("__main__.py", MAIN)]
    for name, path in files + vend_files:
        with open(path, "rb") as f:
            entries.append((name, f.read()))
    entries.append((PACKAGE + "/data/build.json", json.dumps(info, sort_keys=True).encode() + b"\n"))
    for dist_name, text in sorted(licences.items()):
        entries.append(("LICENSES/%s-%s.txt" % (dist_name, versions[dist_name]), text.encode()))
    if compile_mode == "pyc":  # our modules only: the vendored ones load for pure-backend ES verifies alone
        entries += [(name + "c", _pyc(data, name)) for name, data in entries
                    if name.endswith(".py") and (name.startswith(PACKAGE + "/") or name == "__main__.py")]
    entries.sort()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, stamp)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data, compresslevel=9)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(out)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(SHEBANG + buf.getvalue())
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    info.update(path=out, size=os.path.getsize(out), entries=len(entries))
    return info


def _cold(pyz, python, rounds):
    """Median wall ms of `verify` on the IS-10 example token, run from the bundle."""
    data = os.path.join(ROOT, PACKAGE, "data")
    with open(os.path.join(data, "is10-example-token.txt"), "rb") as f:
        token = f.read()
    cmd = [python, pyz, "verify", "--jwks", os.path.join(data, "is10-example-jwks.json"), "--audience",
           "node1.example.com", "--now", "1548779500", "--backend", "pure", "--token", "-"]
    times = []
    for i in range(rounds + 2):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, input=token, capture_output=True, timeout=60)
        if p.returncode != 0:
            raise SystemExit("bundle verify failed: %s" % p.stderr.decode(errors="replace")[-400:])
        if i >= 2:  # two warm-up runs fill the page cache
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(python, rounds=9):
    """Build both variants in a temporary directory and compare size and cold start."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("none", "pyc"):
            info = build(os.path.join(tmp, "b-%s.pyz" % mode), mode)
            rows.append((mode, info["size"], _cold(info["path"], python, rounds)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="where to write the bundle (default dist/nmosauth-lite.pyz)")
    ap.add_argument("--compile", default="pyc", choices=["pyc", "none"],
                    help="pyc: add unchecked-hash .pyc files for this Python version (default); none: sources only")
    ap.add_argument("--measure", action="store_true",
                    help="also build both variants and print their sizes and cold starts")
    ap.add_argument("--python", default=sys.executable, help="interpreter for --measure (default: this one)")
    args = ap.parse_args()
    info = build(args.out, args.compile)
    print("%s: %d bytes (%.1f KiB), %d entries, bytecode %s for Python %s, vendored %s"
          % (os.path.relpath(info["path"]), info["size"], info["size"] / 1024, info["entries"], info["bytecode"],
             info["python"], ", ".join("%s %s" % kv for kv in sorted(info["vendored"].items()))))
    if args.measure:
        print("\n| bytecode | size KiB | cold `verify` ms (pure, median) |\n|---|---:|---:|")
        for mode, size, ms in measure(args.python):
            print("| %s | %.1f | %.1f |" % (mode, size / 1024, ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
