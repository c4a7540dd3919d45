#!/usr/bin/env python3
"""Build the firmware bundle: dist/nmosauth-lite.pyz, one zipapp run with `python3` (issues 8, 13).

Holds the nmosauth_lite package and its data files, and vendors what the pure backend's ES256/384/512
verify needs: `ecdsa` (MIT) pruned to P-256/P-384/P-521 (no tests, no other curves, no ECDH/EdDSA/SSH/
RFC 6979 code: see ECDSA_*), and `six` (MIT), with their licence texts under LICENSES/. `cryptography`
is never vendored (compiled code): the bundle uses it when the target's Python has it. The default
is portable (sources only, runs on any Python >= 3.11); `--compile pyc` adds unchecked-hash .pyc
files (PEP 552) for this interpreter's version (others fall back to the sources).
Docstrings and comments are stripped with every line number kept (tools/strip_source.py: a
traceback from the field names the line of the released source); `--keep-docstrings` bundles the
sources as they are. Prints a size table by module (every byte of the file). Reproducible: sorted
entries, fixed timestamps (SOURCE_DATE_EPOCH when set).

    python3 tools/build_bundle.py [--out F] [--compile none|pyc] [--keep-docstrings]
        [--by-file | --by-package] [--measure]
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
COMPILE_MODES = ("none", "pyc")
DEFAULT_COMPILE = "none"  # .pyc is interpreter-version-specific: a portable bundle by default
# What the device never runs from ecdsa. JWS ES256/384/512 need P-256/P-384/P-521 only (RFC 7518 §3.4;
# ES512 for the IPMX device profile);
# every other curve constant becomes None (its name stays importable, so the modules still load).
ECDSA_KEEP_CURVES = ("NIST256p", "NIST384p", "NIST521p")
# imported by nothing we keep (ecdh only by ecdsa/__init__, whose import of it is removed)
ECDSA_DROP = ("ecdsa/_rwlock.py", "ecdsa/_sha3.py", "ecdsa/ecdh.py")
# imported at the top of keys.py, used only by methods for Edwards curves, SSH encoding and
# deterministic signing: a stand-in whose every attribute raises ImportError
ECDSA_STANDIN = ("ecdsa/eddsa.py", "ecdsa/ssh.py", "ecdsa/rfc6979.py")
STANDIN = b'''"""Left out of the nmosauth-lite bundle (tools/build_bundle.py): P-256/P-384/P-521 verify only."""


def __getattr__(name):
    raise ImportError("%s.%s is not in the nmosauth-lite bundle (P-256/P-384/P-521 verify only)" % (__name__, name))
'''

# Commands a device never runs, left out of the firmware: the demo and the probe are laptop and
# production-line tools, and both sign tokens (they need cryptography, which the bundle never
# carries). From the bundle they are simply not commands (cli lists only the modules it finds).
# `certs make` is a lab tool that makes a CA with cryptography (issue 22; aio/certmake.py);
# `doctor`'s certificate checks (aio/certfiles.py) stay. The in-process middleware (aiohttp, ASGI,
# WSGI; issue 20) is for Python Nodes that install the package into their own environment: the bundle is the command, and
# never carries aiohttp. `audit report` runs where protect's audit log is collected (issue 19 §4).
OFF_DEVICE = ("nmosauth_lite/demo/", "nmosauth_lite/commands/demo.py", "nmosauth_lite/commands/probe.py",
              "nmosauth_lite/commands/certs.py", "nmosauth_lite/aio/certmake.py",
              "nmosauth_lite/aiohttp_middleware.py", "nmosauth_lite/asgi.py",
              "nmosauth_lite/wsgi.py", "nmosauth_lite/commands/audit.py", "nmosauth_lite/auditreport.py",
              "nmosauth_lite/probe/")

sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
import strip_source  # noqa: E402 (tools/, after the path)


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


class _Docstrings(ast.NodeTransformer):
    """Drops the docstring of every module, class and function (a `pass` where it was all)."""

    def _strip(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _strip


def _unparse(tree, name):
    """Source for `tree`, checked to parse back to the same tree (ast.unparse must not change code)."""
    ast.fix_missing_locations(tree)
    text = ast.unparse(tree)
    if ast.dump(ast.parse(text, name)) != ast.dump(tree):
        raise SystemExit("build_bundle: %s does not round-trip through ast.unparse: build without the option" % name)
    return text.encode() + b"\n"


def _prune_ecdsa(name, tree):
    """The rules of ECDSA_*: other curves become None in curves.py, ecdsa/__init__ stops importing ecdh.
    Fails the build when a rule no longer finds what it expects (a new ecdsa release: review)."""
    if name == "ecdsa/curves.py":
        kept = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
                value = node.value
                if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Curve":
                    if target in ECDSA_KEEP_CURVES:
                        kept.add(target)
                    else:
                        node.value = ast.Constant(None)
                elif target == "curves" and isinstance(value, ast.List):
                    value.elts = [e for e in value.elts if getattr(e, "id", None) in ECDSA_KEEP_CURVES]
                    kept.add("curves")
        if kept != set(ECDSA_KEEP_CURVES) | {"curves"}:
            raise SystemExit("build_bundle: ecdsa/curves.py changed shape (found %s): review ECDSA_KEEP_CURVES"
                             % sorted(kept))
    elif name == "ecdsa/__init__.py":
        gone = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module == "ecdh"]
        if len(gone) != 1:
            raise SystemExit("build_bundle: ecdsa/__init__.py no longer imports ecdh once: review ECDSA_DROP")
        names = {a.asname or a.name for a in gone[0].names}
        tree.body.remove(gone[0])
        for node in tree.body:  # the names it imported, from lists such as _hush_pyflakes
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
                node.value.elts = [e for e in node.value.elts if getattr(e, "id", None) not in names]
    return tree


def _imported(name, tree):
    """Archive names of the modules `tree` (archive `name`) imports relatively or as ecdsa.*/six."""
    pkg = name.rsplit("/", 1)[0].split("/")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = "/".join(pkg[:len(pkg) - node.level + 1])
            mods = [node.module] if node.module else [a.name for a in node.names]
            out |= {"%s/%s.py" % (base, m.replace(".", "/")) for m in mods}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecdsa."):
            out.add(node.module.replace(".", "/") + ".py")
    return out


def _transform(entries, keep_docstrings=False):
    """Prune ecdsa (ECDSA_*) and strip docstrings and comments, line numbers kept (unless
    `keep_docstrings`); refuse a dropped module still imported. The two pruned ecdsa modules go
    through ast.unparse (renumbered: vendored code, rewritten by rules)."""
    out = []
    for name, data in entries:
        if name in ECDSA_DROP:
            continue
        if name in ECDSA_STANDIN:
            out.append((name, STANDIN))
            continue
        pruned = name in ("ecdsa/curves.py", "ecdsa/__init__.py")
        if name.endswith(".py") and pruned:
            tree = _prune_ecdsa(name, ast.parse(data, name))
            if not keep_docstrings:
                tree = _Docstrings().visit(tree)
            data = _unparse(tree, name)
        elif name.endswith(".py") and not keep_docstrings:
            try:
                data = strip_source.strip_source(data, name)
            except strip_source.NotStrippable as e:
                raise SystemExit("build_bundle: %s: build with --keep-docstrings and report it" % e)
        out.append((name, data))
    for name, data in out:
        if name.startswith("ecdsa/") and name.endswith(".py"):
            missing = _imported(name, ast.parse(data, name)) & set(ECDSA_DROP)
            if missing:
                raise SystemExit("build_bundle: %s imports %s, left out by ECDSA_DROP" % (name, sorted(missing)))
    return out


def _group(name):
    """The size-table row of an archive entry: a module of ours or of a vendored package."""
    if name.endswith(".pyc"):
        name = name[:-1]
    parts = name.split("/")
    if parts[0] == PACKAGE and len(parts) > 2:
        return "/".join(parts[:2]) + "/"  # a subpackage (aio/, authserver/, ...) or data/
    if parts[0] in ("ecdsa", PACKAGE) and len(parts) == 2:
        return name
    return parts[0] + ("/" if len(parts) > 1 else "")


def _package(name):
    """The coarse row (board/README.md's table): a subpackage, our core modules, or a vendored package."""
    g = _group(name)
    if g.startswith(PACKAGE + "/") and not g.endswith("/"):
        return PACKAGE + "/*.py (core, cli)" if g.endswith(".py") else g
    return g.split("/")[0] + "/" if g.startswith("ecdsa/") else g


def size_table(path, by_file=False, by_package=False):
    """[(row, entries, stored bytes, raw bytes)] of the bundle at `path`, largest first; the stored
    bytes of a row are its compressed data plus its local and central zip headers, and the last row
    holds the shebang and the end record, so the rows add up to the file's size."""
    rows = {}
    with zipfile.ZipFile(path) as z:
        for i in z.infolist():
            key = i.filename if by_file else _package(i.filename) if by_package else _group(i.filename)
            head = 30 + 46 + 2 * len(i.filename.encode()) + len(i.extra) + len(i.comment)
            n, stored, raw = rows.get(key, (0, 0, 0))
            rows[key] = (n + 1, stored + i.compress_size + head, raw + i.file_size)
    out = sorted(((k,) + v for k, v in rows.items()), key=lambda r: (-r[2], r[0]))
    rest = os.path.getsize(path) - sum(r[2] for r in out)
    out.append(("(shebang, zip end record)", 0, rest, 0))
    return out


def format_table(rows, total):
    lines = ["| module | files | KiB in bundle | % | KiB raw |", "|---|---:|---:|---:|---:|"]
    for name, n, stored, raw in rows:
        lines.append("| %s | %d | %.1f | %.1f | %.1f |" % (name, n, stored / 1024, 100.0 * stored / total, raw / 1024))
    lines.append("| **total** | %d | %.1f | 100.0 | %.1f |" % (sum(r[1] for r in rows), total / 1024,
                                                             sum(r[3] for r in rows) / 1024))
    return "\n".join(lines)


def build(out=DEFAULT_OUT, compile_mode=DEFAULT_COMPILE, built=None, keep_docstrings=False):
    """Write the bundle to `out`; return a dict describing it."""
    if compile_mode not in COMPILE_MODES:
        raise ValueError("compile_mode must be one of %s" % ", ".join(COMPILE_MODES))
    built = int(built if built is not None else os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    stamp = time.gmtime(max(built, ZIP_EPOCH))[:6]
    from nmosauth_lite import __version__

    files = [(name, path) for name, path in _source_files(os.path.join(ROOT, PACKAGE))
             if not name.startswith(OFF_DEVICE)]
    vend_files, licences, versions = _vendored()
    info = {"name": "nmosauth-lite", "version": __version__, "built": built,
            "python": "%d.%d" % sys.version_info[:2], "bytecode": compile_mode, "vendored": versions,
            "docstrings": bool(keep_docstrings), "ecdsa_curves": list(ECDSA_KEEP_CURVES)}
    entries = [("__main__.py", MAIN)]
    for name, path in files + vend_files:
        with open(path, "rb") as f:
            entries.append((name, f.read()))
    entries = _transform(entries, keep_docstrings)
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


def measure(python, rounds=9, keep=(False,)):
    """Build each bytecode mode (times each `keep` docstrings choice) in a temporary directory; return
    [(mode, size, cold ms)], or [(mode, keep, size, cold ms)] when several choices are given.
    tools/bench_all.py reads the first form (the default build: stripped)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in COMPILE_MODES:
            for k in keep:
                info = build(os.path.join(tmp, "b-%s-%d.pyz" % (mode, k)), mode, keep_docstrings=k)
                cold = _cold(info["path"], python, rounds)
                rows.append((mode, k, info["size"], cold) if len(keep) > 1 else (mode, info["size"], cold))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="where to write the bundle (default dist/nmosauth-lite.pyz)")
    ap.add_argument("--compile", default=DEFAULT_COMPILE, choices=COMPILE_MODES,
                    help="none: sources only, any Python >= 3.11 (default); pyc: also unchecked-hash .pyc "
                    "for this Python version (faster cold start there, sources elsewhere)")
    ap.add_argument("--keep-docstrings", action="store_true",
                    help="bundle the sources as they are (default: docstrings and comments stripped, "
                    "every line number kept)")
    ap.add_argument("--by-file", action="store_true", help="size table by file instead of by module")
    ap.add_argument("--by-package", action="store_true", help="size table by package (board/README.md's)")
    ap.add_argument("--measure", action="store_true",
                    help="also build every variant and print their sizes and cold starts")
    ap.add_argument("--python", default=sys.executable, help="interpreter for --measure (default: this one)")
    args = ap.parse_args()
    info = build(args.out, args.compile, keep_docstrings=args.keep_docstrings)
    print("%s: %d bytes (%.1f KiB), %d entries, bytecode %s%s, docstrings %s, vendored %s"
          % (os.path.relpath(info["path"]), info["size"], info["size"] / 1024, info["entries"], info["bytecode"],
             " for Python %s" % info["python"] if info["bytecode"] != "none" else " (any Python >= 3.11)",
             "kept" if info["docstrings"] else "and comments stripped (line numbers kept)",
             ", ".join("%s %s" % kv for kv in sorted(info["vendored"].items()))))
    print("\n" + format_table(size_table(info["path"], args.by_file, args.by_package), info["size"]))
    if args.measure:
        print("\n| bytecode | docstrings | size KiB | cold `verify` ms (pure, median) |\n|---|---|---:|---:|")
        for mode, keep, size, ms in measure(args.python, keep=(False, True)):
            print("| %s | %s | %.1f | %.1f |" % (mode, "kept" if keep else "stripped (lines kept)", size / 1024, ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
