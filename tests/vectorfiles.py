"""Test vectors as data (tests/vectors/): the one loader the test modules import.

Test modules never import `conftest` by name: each directory with fixtures of its own has a
conftest.py too, and whichever was imported last answers to `conftest` (a full run then broke
`from conftest import ...`, twice). test_no_module_imports_conftest keeps it that way.
"""

import json
import os

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")


def load_vector(*parts):
    with open(os.path.join(VECTORS, *parts), "rb") as f:
        return json.loads(f.read())
