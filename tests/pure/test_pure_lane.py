"""The pure lane's own claims: no cryptography anywhere, the package on its pure backend.

Runs only under tests/pure/purelane.py (`make test-pure`); skipped in the main lane.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def only_in_the_pure_lane(pytestconfig):
    if not getattr(pytestconfig, "pure_lane", False):
        pytest.skip("pure lane only (make test-pure)")


def test_cryptography_is_not_importable():
    with pytest.raises(ImportError):
        import cryptography  # noqa: F401
    assert not [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]


def test_the_package_picks_the_pure_backend():
    from nmosauth_lite.crypto import available, get_backend
    from nmosauth_lite.errors import BackendUnavailableError

    assert get_backend("auto").name == "pure" and available() == ["pure"]
    with pytest.raises(BackendUnavailableError):
        get_backend("cryptography")


def test_fixtures_come_from_the_pure_lane():
    import minting
    import standin_as
    import tls_helpers

    assert minting.__name__ == "pure_minting"
    assert tls_helpers.make_test_pki.__module__ == "pure_pki" == standin_as.make_test_pki.__module__


def test_pure_backend_verifies_every_algorithm(minter):
    from nmosauth_lite import TokenValidator

    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], issuers=[minter.ISS])
    for alg in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"):
        d = v.check(minter.token(alg), "GET", "/x-nmos/node/v1.3/self", now=minter.NOW)
        assert d.status == 200, (alg, d.reason)
        d = v.check(minter.token(alg, key=minter.attacker if alg.startswith("RS") else None,
                                 claims=minter.claims(sub="someone-else"))[:-8] + "AAAAAAAA",
                    "GET", "/x-nmos/node/v1.3/self", now=minter.NOW)
        assert d.status == 401


def test_cli_verify_runs_without_cryptography():
    data = os.path.join(ROOT, "nmosauth_lite", "data")
    with open(os.path.join(data, "is10-example-token.txt")) as f:
        token = f.read()
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "verify", "--jwks",
                        os.path.join(data, "is10-example-jwks.json"), "--audience", "node1.example.com",
                        "--now", "1548779500", "--token", "-"], input=token, capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200
