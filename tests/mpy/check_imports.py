"""Every core module listed in lane.txt imports, and its top-level imports obey STYLE.md.

The import check is generated per module so a failure names it. The source scan
looks only at unindented `import`/`from` lines: lazy imports inside functions
(validator's clock) and TYPE_CHECKING blocks are allowed by the style guide.
"""

import harness

# STYLE.md "The MicroPython-compatible core" and ARCHITECTURE.md layer rules.
FORBIDDEN = (
    "typing", "dataclasses", "enum", "abc", "functools", "re", "logging", "time", "base64",
    "secrets", "__future__", "hmac", "asyncio", "socket", "ssl", "sqlite3", "cryptography",
)


def _core_files():
    return [p for kind, p, _ in harness.manifest() if kind == "core"]


def _import_check(rel):
    def check():
        harness.import_module(harness.module_name(rel))

    return check


def _top_level_imports(text):
    names = []
    for line in text.split("\n"):
        if line.startswith("import "):
            for part in line[7:].split(","):
                names.append(part.strip().split(" ")[0])
        elif line.startswith("from "):
            names.append(line[5:].strip().split(" ")[0])
    return names


def check_core_top_level_imports_follow_style():
    bad = []
    for rel in _core_files():
        for name in _top_level_imports(harness.read_bytes(rel).decode("utf-8")):
            if name.split(".")[0] in FORBIDDEN:
                bad.append(rel + ": " + name)
    harness.eq(bad, [], "forbidden top-level imports")


def check_core_never_imports_outside_the_core():
    core = [harness.module_name(p) for p in _core_files()]
    bad = []
    for rel in _core_files():
        for name in _top_level_imports(harness.read_bytes(rel).decode("utf-8")):
            if name.startswith(".") or not name.startswith("nmosauth_lite"):
                continue
            if name not in core and name != "nmosauth_lite":
                bad.append(rel + ": " + name)
    harness.eq(bad, [], "imports of non-core nmosauth_lite modules")


CHECKS = [("imports " + harness.module_name(p), _import_check(p)) for p in _core_files()]
