"""Interop fixtures: the pinned third-party servers are installed once per session (npm ci via
tools/interop/install.sh); the tests skip only when node itself is missing."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_support import install, node_missing  # noqa: E402


@pytest.fixture(scope="session")
def interop_installed():
    if node_missing():
        pytest.skip("node is not installed: the third-party authorization servers run under node "
                    "(make sysdeps installs it)")
    install()


@pytest.fixture(scope="module")
def interop_pki(tmp_path_factory, interop_installed):
    from client_support import make_pki

    return make_pki(str(tmp_path_factory.mktemp("interop-pki")))
