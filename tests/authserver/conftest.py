"""Each test meets the shared module-scoped server with fresh failure back-offs (throttle.py),
as it would a server of its own: the suite's deliberate failures from 127.0.0.1 add up."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_backoffs(request):
    if "as_server" in request.fixturenames:
        request.getfixturevalue("as_server").reset_backoffs()
    yield
