"""validator.py: IS-10 decisions end to end on both backends, with the shared NMOS vectors."""

import re

import pytest

from vectorfiles import load_vector
from nmosauth_lite import TokenValidator
from nmosauth_lite.errors import ConfigError, KeyFetchPendingError, with_attrs
from nmosauth_lite.jws import IS10_STRICT_ALGORITHMS
from nmosauth_lite.validator import ALLOW_PUBLIC, StaticKeys

CLAIM_V = load_vector("nmos", "is10-claim-vectors.json")
EXAMPLE_V = load_vector("nmos", "is10-example-token-vectors.json")
WWW = re.compile(r'^Bearer realm="[^"]*"(,error=(invalid_token|insufficient_scope|invalid_request),error_description="[^",]*")?$')
NODE_PATH = "/x-nmos/node/v1.3/self"

# expect value -> (status, error) for the default (wide) profile
EXPECT = {
    "accept": (200, None),
    "accept_recommended": (200, None),
    "signature_valid_and_claims_valid": (200, None),
    "reject_401_invalid_token": (401, "invalid_token"),
    "reject_recommended": (401, "invalid_token"),
    "reject_signature": (401, "invalid_token"),
    "reject_malformed": (401, "invalid_token"),
    "reject_no_matching_key": (401, "invalid_token"),
    "reject_aud": (403, "insufficient_scope"),  # IS-10 RS-25
    "profile_dependent": (200, None),
}


def _well_formed(d):
    if d.www_authenticate is not None:
        assert WWW.match(d.www_authenticate), d.www_authenticate
    assert (d.status == 200) == (d.www_authenticate is None)


@pytest.mark.parametrize("case", CLAIM_V["tests"], ids=lambda c: c["id"])
def test_is10_claim_vectors(case, backend_name):  # IS-10 RS-12..RS-19
    v = TokenValidator(jwks=CLAIM_V["jwks"], audience=[CLAIM_V["rs_hostname"]], backend=backend_name)
    d = v.check(case["token"], "GET", NODE_PATH, now=case.get("now", CLAIM_V["now"]))
    assert (d.status, d.error) == EXPECT[case["expect"]], (case["id"], d.reason)
    _well_formed(d)


@pytest.mark.parametrize("case", CLAIM_V["tests"], ids=lambda c: c["id"])
def test_is10_claim_vectors_strict_profile(case, backend_name):  # TOK-03: RS512 only
    v = TokenValidator(jwks=CLAIM_V["jwks"], audience=["node1.example.com"], backend=backend_name,
                       algorithms=IS10_STRICT_ALGORITHMS)
    d = v.check(case["token"], "GET", NODE_PATH, now=case.get("now", CLAIM_V["now"]))
    want = (401, "invalid_token") if case["expect"] == "profile_dependent" else EXPECT[case["expect"]]
    assert (d.status, d.error) == want


@pytest.mark.parametrize("case", EXAMPLE_V["tests"], ids=lambda c: c["id"])
def test_is10_example_token_vectors(case, backend_name):  # TOK-03, RS-08, §12 B9
    v = TokenValidator(jwks=EXAMPLE_V["jwks"], audience=["node1.example.com"], backend=backend_name)
    d = v.check(case["token"], "GET", "/x-nmos/connection/v1.1/single/senders", now=case["now"])
    assert (d.status, d.error) == EXPECT[case["expect"]], (case["id"], d.reason)
    _well_formed(d)


def test_example_token_permissions_follow_the_claims(backend_name):
    v = TokenValidator(jwks=EXAMPLE_V["jwks"], audience=["node1.example.com"], backend=backend_name)
    tok = EXAMPLE_V["tests"][0]["token"]
    now = 1548779500
    assert v.check(tok, "PATCH", "/x-nmos/connection/v1.1/single/receivers/x/staged", now).status == 200
    d = v.check(tok, "POST", "/x-nmos/connection/v1.1/bulk/receivers", now)
    assert (d.status, d.error) == (403, "insufficient_scope")
    assert d.claims["client_id"] == "hopy0dNRPNTiGJDqPfqYwGmw"


def test_no_token_and_public_paths(minter):  # RS-23, RS-29, RS-30, GEN-04
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"])
    d = v.check(None, "GET", "/x-nmos/node/v1.3/")
    assert (d.status, d.error, d.www_authenticate) == (401, None, 'Bearer realm="node1.example.com"')
    for path in ("/", "/x-nmos", "/x-nmos/", "//x-nmos/./"):
        assert v.check(None, "GET", path) is ALLOW_PUBLIC
        assert v.check("garbage", "GET", path).status == 200  # no token is checked there
    assert v.check(None, "OPTIONS", "/x-nmos/node/v1.3/self").status == 200
    assert v.check("garbage", "OPTIONS", "/x-nmos/node/v1.3/self").status == 200


def test_untrusted_issuer_is_rejected_before_any_key_use(minter, backend_name):  # RS-10
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], issuers=["https://other.example.com"],
                       backend=backend_name)
    d = v.check(minter.token(), "GET", NODE_PATH, now=minter.NOW)
    assert (d.status, d.error) == (401, "invalid_token")
    assert "issuer" in d.reason
    v2 = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], issuers=[minter.ISS], backend=backend_name)
    assert v2.check(minter.token(), "GET", NODE_PATH, now=minter.NOW).status == 200


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"])
def test_every_default_algorithm_accepted(minter, backend_name, alg):  # RS-12 project default
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], backend=backend_name)
    d = v.check(minter.token(alg), "GET", NODE_PATH, now=minter.NOW)
    assert d.status == 200, d.reason
    assert d.kid == minter.key_by_alg[alg][1]


def test_cached_token_rechecks_time_each_request(minter):  # RS-21
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"])
    tok = minter.token()
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW).status == 200
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW + 499.9).status == 200
    d = v.check(tok, "GET", NODE_PATH, now=minter.NOW + 500)
    assert (d.status, d.error, d.reason) == (401, "invalid_token", "token expired")
    d = v.check(tok, "GET", NODE_PATH, now=minter.NOW - 101)
    assert (d.status, d.reason) == (401, "token not yet valid")
    # public paths stay open whatever the token's time
    assert v.check(tok, "GET", "/x-nmos", now=minter.NOW + 10**6).status == 200


def test_cache_hit_uses_no_crypto(minter):
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"])
    tok = minter.token()
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW).status == 200

    class Boom:
        def verify(self, *a):
            raise AssertionError("verify called on a cache hit")

    v._backend = Boom()
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW).status == 200
    assert v.check(tok, "POST", "/x-nmos/node/v1.3/self", now=minter.NOW).status == 403


def test_withdrawn_key_kills_cached_tokens_at_once(minter):  # ARCHITECTURE "Keys"; AS-15
    store = StaticKeys(minter.jwks)
    v = TokenValidator(keys=store, audience=["node1.example.com"])
    tok = minter.token()
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW).status == 200
    key = next(k for k in store.keys if k.kid == "rsa-1")
    key.withdrawn = True
    d = v.check(tok, "GET", NODE_PATH, now=minter.NOW)
    assert (d.status, d.error) == (401, "invalid_token")


def test_key_store_may_answer_503_while_fetching(minter):  # RS-07
    class Fetching(StaticKeys):
        def missing_key(self, iss, kid, now):
            raise with_attrs(KeyFetchPendingError("fetching"), retry_after=3)

    v = TokenValidator(keys=Fetching(minter.jwks), audience=["node1.example.com"])
    d = v.check(minter.token(key=minter.attacker, kid="new-key"), "GET", NODE_PATH, now=minter.NOW)
    assert (d.status, d.error, d.retry_after) == (503, "invalid_token", 3)
    _well_formed(d)
    # a known kid whose signature fails is a forgery, not a reason to fetch
    d = v.check(minter.token(key=minter.attacker), "GET", NODE_PATH, now=minter.NOW)
    assert d.status == 401


def test_bounded_cache_evicts(minter):
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], cache_size=8)
    toks = [minter.token(jti="j%d" % i) for i in range(40)]
    for t in toks:
        assert v.check(t, "GET", NODE_PATH, now=minter.NOW).status == 200
    assert len(v._new) + len(v._old) <= 8
    assert v.check(toks[0], "GET", NODE_PATH, now=minter.NOW).status == 200


def test_check_header_rfc6750(minter):  # RS-20, RS-40
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"])
    tok = minter.token()
    for scheme in ("Bearer", "bearer", "BEARER", "BeArEr"):
        assert v.check_header(scheme + " " + tok, "GET", NODE_PATH, now=minter.NOW).status == 200
    assert v.check_header(None, "GET", NODE_PATH).status == 401
    assert v.check_header(None, "GET", NODE_PATH).error is None
    for bad in ("Basic dXNlcjpwYXNz", "Bearer  " + tok, "Token " + tok, "Bearer" + tok):
        d = v.check_header(bad, "GET", NODE_PATH, now=minter.NOW)
        assert (d.status, d.error) == (401, "invalid_token"), bad
    for empty in ("", "Bearer", "Bearer ", "   "):
        d = v.check_header(empty, "GET", NODE_PATH, now=minter.NOW)
        assert (d.status, d.error) == (400, "invalid_request"), repr(empty)
        _well_formed(d)
    assert v.check_header("Basic x", "GET", "/").status == 200


def test_realm_and_description_never_break_the_header(minter):  # RS-26
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], realm='a"b,c')
    d = v.check("x.y.z", "GET", NODE_PATH)
    _well_formed(d)
    assert d.www_authenticate.startswith("Bearer realm=\"a'b c\",error=invalid_token,")


def test_configuration_errors_are_config_error(minter):
    with pytest.raises(ConfigError):
        TokenValidator(jwks={"keys": []}, audience=["a"])
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=[])
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=["a"], algorithms=["HS256"])
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=["a"], algorithms=["none"])
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=["a"], backend="openssl")
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=["a"], leeway=-1)


def test_leeway_applies_to_exp_iat_nbf(minter):  # RS-19
    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], leeway=5)
    tok = minter.token(iat=minter.NOW + 3, nbf=minter.NOW + 4, exp=minter.NOW + 60)
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW).status == 200
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW + 64).status == 200
    assert v.check(tok, "GET", NODE_PATH, now=minter.NOW + 65).status == 401


def test_uses_clock_when_now_not_given(minter):
    import time

    v = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"])
    now = int(time.time())
    assert v.check(minter.token(iat=now, exp=now + 60), "GET", NODE_PATH).status == 200
    assert v.check(minter.token(iat=now - 120, exp=now - 60), "GET", NODE_PATH).status == 401
    fixed = TokenValidator(jwks=minter.jwks, audience=["node1.example.com"], clock=lambda: minter.NOW)
    assert fixed.check(minter.token(), "GET", NODE_PATH).status == 200
