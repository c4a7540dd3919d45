"""The test suite's own rules, so a new directory of tests cannot break a full run."""

import ast
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def test_no_module_imports_conftest():
    # tests/authserver/ and tests/interop/ brought conftest.py files of their own; with two of them,
    # `from conftest import load_vector` found whichever was imported last and a full run failed
    # to collect (twice). Shared helpers live in plain modules (vectorfiles.py, minting.py, ...).
    offenders = []
    for path in glob.glob(os.path.join(HERE, "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(n and n.split(".")[0] == "conftest" for n in names):
                offenders.append("%s:%d" % (os.path.relpath(path, HERE), node.lineno))
    assert not offenders, offenders
