"""Shared fixtures: vector locations, crypto backends, token minting."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from vectorfiles import VECTORS, load_vector  # noqa: E402,F401 (the fixtures below use them)


def _available_backends():
    from nmosauth_lite.crypto import available

    return available()


@pytest.fixture(params=["cryptography", "pure"])
def backend_name(request):
    """Each test using this runs once per crypto backend (both must be installed for the suite)."""
    from nmosauth_lite.crypto import get_backend

    get_backend(request.param)  # fails loudly when a backend is missing
    return request.param


@pytest.fixture(scope="session")
def minter():
    from minting import Minter

    return Minter()


@pytest.fixture(autouse=True)
def _fresh_as_backoffs(request):
    """Each test meets the shared module-scoped authorization server with fresh failure back-offs
    (authserver/throttle.py), as it would a server of its own: the suite's deliberate failures from
    127.0.0.1 add up. (Here, not in tests/authserver/conftest.py: a second module named `conftest`
    would shadow this one for `from vectorfiles import load_vector`.)"""
    if "as_server" in request.fixturenames:
        request.getfixturevalue("as_server").reset_backoffs()
    yield
