"""The attack corpus of tests/test_attacks.py under the IPMX profile (issue 21): every attack test
that takes the `v` validator runs again here with `TokenValidator(profile="ipmx")` and IPMX-shaped
tokens, on both crypto backends. What is refused under IS-10 is refused here too; the tests left
out below are the places where the differences table (digest §8) says the profiles differ, each
with its SEC id, and each difference has its own test in tests/test_ipmx.py.
"""

import pytest

import test_attacks as A
from minting import Minter
from nmosauth_lite import TokenValidator

# Attack tests whose IS-10 expectation the IPMX profile changes on purpose (digest §8):
DIFFERENCES = {
    # SEC-14: RS384 and ES384 are refused; tests/test_ipmx.py test_alg_lists_differ
    "test_baseline_every_algorithm_is_accepted": "SEC-14",
    # SEC-13: typ is required; these tests build headers without one (their refusals hold anyway)
    "test_duplicate_claims_last_one_wins": "SEC-13",
    "test_rejects_standard_alphabet": "SEC-13",
    # SEC-33, SEC-38: permissions are path-independent (no path specifiers); test_ipmx.py
    # test_scope_reaches_every_path_under_ipmx_only, test_path_specifiers_are_an_invalid_token_under_ipmx
    "test_path_traversal_and_normalisation": "SEC-33, SEC-38",
    # SEC-37: nothing is public; test_root_needs_a_token_under_ipmx_only
    "test_traversal_to_a_public_path_needs_no_token": "SEC-37",
    # SEC-30: a string aud is an invalid token (401), not a 403; test_aud_string_differs
    "test_aud_of_the_right_type_that_names_nobody_is_403": "SEC-30",
    # SEC-19, SEC-20: 30 minutes of tolerance on exp; test_clock_tolerance_differs
    "test_cached_token_dies_at_exp": "SEC-20",
    "test_time_claim_boundaries": "SEC-18, SEC-20",
    # SEC-18: iat is ignored whatever its value; test_iat_in_the_future_differs
    "test_rejects_non_numericdate_time_claims": "SEC-18",
    # SEC-16: client_id required, azp no substitute; test_required_claims_differ
    "test_client_id_and_azp": "SEC-16",
    # SEC-38, §9 step 10: a malformed `write` of the API consulted makes even a read 401 (the claims
    # of other APIs are still not consulted: ipmx_corpus write-malformed-makes-a-get-401)
    "test_malformed_x_nmos_claim_of_another_api_is_not_consulted": "SEC-38",
}


class IpmxMinter(Minter):
    """The same keys and defaults as tests/minting.py, with IPMX-shaped claims: `aud` an array of
    names of this Node's certificate, x-nmos-* permissions as ["*"] / [""] (SEC-38)."""

    def claims(self, **over):
        c = super().claims(**over)
        if "aud" not in over:
            c["aud"] = ["*.example.com"]
        for name in ("x-nmos-registration", "x-nmos-query", "x-nmos-node", "x-nmos-connection"):
            if name not in over and name in c:
                c[name] = {"read": ["*"], "write": ["*"]}
        return c


@pytest.fixture(scope="module")
def minter():
    return IpmxMinter()


@pytest.fixture
def v(minter, backend_name):
    return TokenValidator(jwks=minter.jwks, profile="ipmx", oaim=1, cert_names=[A.HOST], backend=backend_name)


def _takes_v(fn):
    import inspect

    return "v" in inspect.signature(fn).parameters


def test_every_left_out_attack_test_exists_and_cites_a_sec_id():
    for name, sec in DIFFERENCES.items():
        assert callable(getattr(A, name)) and sec.startswith("SEC-")


for _name in dir(A):
    _fn = getattr(A, _name)
    if _name.startswith("test_") and callable(_fn) and _takes_v(_fn) and _name not in DIFFERENCES:
        globals()[_name] = _fn
