"""The MicroPython lane's checks (tests/mpy/, listed in tests/mpy/lane.txt), run under CPython.

The same check functions run on MicroPython 1.27 through tools/mpy/run.sh; running them
here too keeps both interpreters answering the same cases. One pytest test per check.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MPY = os.path.join(HERE, "mpy")
if MPY not in sys.path:
    sys.path.insert(0, MPY)

import harness  # noqa: E402 (needs the path above)

harness.ROOT = os.path.dirname(HERE)


def _checks():
    params = []
    seen = set()
    for _kind, _path, module in harness.manifest():
        if module is None or module in seen:
            continue
        seen.add(module)
        for name, fn in harness.checks_of(harness.import_module(module)):
            params.append(pytest.param(fn, id=module + "::" + name))
    return params


@pytest.mark.parametrize("check", _checks())
def test_mpy_check_on_cpython(check):
    check()
