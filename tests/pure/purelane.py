"""pytest plugin of the pure lane (`make test-pure`): the suite without `cryptography`.

Loaded with `-p purelane` (PYTHONPATH=tests/pure) in .venv-pure, which has the test
tools and `ecdsa` but not cryptography. It refuses to run when cryptography is
importable, then swaps the two test-fixture sources that need it, never the package:
  - `minting` (token minting) becomes tests/pure/pure_minting.py (pure PKCS#1 v1.5 + ecdsa);
  - make_test_pki in tests/tls_helpers.py and tests/standin_as.py becomes the
    openssl-CLI version in tests/pure/pure_pki.py.
Test cases parametrized with backend_name="cryptography" are deselected (their
"pure" twins run); the few in SKIPS are skipped with their reason; everything else
runs as in the main lane, on backend "auto", which here resolves to the pure backend.
"""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)

# Tests skipped here, each with the reason; they run in the main lane.
SKIPS = {
    "tests/aio/test_keystore.py::test_forged_random_kids_are_rate_limited":
        "mints 12,000 RSA-2048 tokens (~12 ms each with pure-Python signing); the unknown-kid rate limit "
        "it checks never reaches a crypto backend",
}
_DRAWS_CRYPTOGRAPHY = ("hypothesis draws backend 'cryptography' from a fixed list; drawing from "
                       "nmosauth_lite.crypto.available() would let it run here")
for _name in ("mutated_valid_tokens", "arbitrary_signatures", "signed_arbitrary_claims"):
    SKIPS["tests/test_fuzz_parsers.py::test_validator_check_never_raises_on_" + _name] = _DRAWS_CRYPTOGRAPHY


def pytest_configure(config):
    if importlib.util.find_spec("cryptography") is not None:
        raise pytest.UsageError("the pure lane must run where cryptography is not installed (use .venv-pure)")
    for d in (HERE, TESTS):
        if d not in sys.path:
            sys.path.insert(0, d)
    import pure_minting
    import pure_pki

    sys.modules["minting"] = pure_minting  # before any test module does `from minting import ...`
    import standin_as
    import tls_helpers

    tls_helpers.make_test_pki = pure_pki.make_test_pki
    standin_as.make_test_pki = pure_pki.make_test_pki
    config.pure_lane = True


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        reason = SKIPS.get(item.nodeid)
        if reason:
            item.add_marker(pytest.mark.skip(reason="pure lane: " + reason))
        params = getattr(getattr(item, "callspec", None), "params", {})
        (drop if params.get("backend_name") == "cryptography" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return "pure lane: no cryptography; fixtures from tests/pure (pure_minting, pure_pki)"
