"""A tiny check harness that runs unchanged on MicroPython 1.27 and CPython.

No pytest on the device, so checks are plain functions named `check_*` in the
modules listed in tests/mpy/lane.txt; a module may add generated checks as a
`CHECKS` list of (name, function). Helpers raise CheckFailure with a message.
tools/mpy/runner.mjs calls `run_json(module)` inside MicroPython; under CPython
tests/test_mpy_checks_cpython.py calls the functions directly through pytest.
Paths are "/"-joined (MicroPython has no os.path); ROOT is the repository root.
"""

import json
import sys

ROOT = None  # set by the runner (MicroPython) or the pytest wrapper (CPython)
MICROPYTHON = sys.implementation.name == "micropython"
_notes = []


class CheckFailure(Exception):
    pass


# --- assertions ---------------------------------------------------------------

def fail(message):
    raise CheckFailure(message)


def true(cond, what="condition"):
    if not cond:
        raise CheckFailure(what + ": not true")


def eq(got, want, what="value"):
    if got != want:
        raise CheckFailure("%s: got %s, want %s" % (what, _short(got), _short(want)))


def raises(exc_cls, fn, *args, **kwargs):
    """Call fn; return the exception if it is an exc_cls, else fail."""
    try:
        fn(*args, **kwargs)
    except exc_cls as e:
        return e
    except CheckFailure:
        raise
    except Exception as e:
        raise CheckFailure("expected %s, got %s: %s" % (exc_cls.__name__, type(e).__name__, _short(str(e))))
    raise CheckFailure("expected %s, nothing raised" % exc_cls.__name__)


def _short(v):
    r = repr(v)
    return r if len(r) <= 160 else r[:157] + "..."


# --- data -----------------------------------------------------------------------

def path(rel):
    return ROOT.rstrip("/") + "/" + rel


def read_bytes(rel):
    with open(path(rel), "rb") as f:
        return f.read()


def load_json(rel):
    return json.loads(read_bytes(rel).decode("utf-8"))


def manifest():
    """Entries of tests/mpy/lane.txt as (kind, repo path, check module or None)."""
    out = []
    for line in read_bytes("tests/mpy/lane.txt").decode("utf-8").split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else None))
    return out


def module_name(rel):
    """nmosauth_lite/crypto/pure.py -> nmosauth_lite.crypto.pure (package __init__ -> the package)."""
    name = rel[:-3].replace("/", ".")
    if name.endswith(".__init__"):
        name = name[:-9]
    return name


# --- timing and notes -------------------------------------------------------------

def clock_ms():
    """An opaque start mark for elapsed_ms (microsecond ticks on MicroPython)."""
    import time

    if MICROPYTHON:
        return time.ticks_us()
    return time.perf_counter() * 1000.0


def elapsed_ms(start):
    """Milliseconds (float) since clock_ms() returned `start`."""
    import time

    if MICROPYTHON:
        return time.ticks_diff(time.ticks_us(), start) / 1000.0
    return time.perf_counter() * 1000.0 - start


def note(text):
    """An informational line (e.g. a timing) the runner prints; never affects pass/fail."""
    _notes.append(text)


# --- running -------------------------------------------------------------------------

def checks_of(module):
    """(name, function) pairs of a check module: CHECKS first, then check_* sorted by name."""
    out = list(getattr(module, "CHECKS", ()))
    names = [n for n in dir(module) if n.startswith("check_")]
    names.sort()
    for n in names:
        fn = getattr(module, n)
        if callable(fn):
            out.append((n[6:], fn))
    return out


def _describe(e):
    if isinstance(e, CheckFailure):
        return str(e)
    if MICROPYTHON:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        return buf.getvalue().strip()
    import traceback

    return "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip()


def import_module(name):
    mod = __import__(name)
    for part in name.split(".")[1:]:
        mod = getattr(mod, part)
    return mod


def run_module(name):
    """Run every check of module `name`; returns (results, notes), results = [(check, ok, detail, ms)]."""
    while _notes:
        _notes.pop()
    try:
        mod = import_module(name)
    except Exception as e:
        return [("<import>", False, _describe(e), 0)], []
    results = []
    for check, fn in checks_of(mod):
        start = clock_ms()
        try:
            fn()
            ok, detail = True, ""
        except Exception as e:
            ok, detail = False, _describe(e)
        results.append((check, ok, detail, elapsed_ms(start)))
    return results, list(_notes)


def run_json(name):
    """run_module as JSON text, for the JavaScript side of the runner."""
    results, notes = run_module(name)
    return json.dumps({"module": name, "results": [list(r) for r in results], "notes": notes})
