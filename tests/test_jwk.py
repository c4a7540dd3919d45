"""jwk.py: public JWK parsing, IS-10 RS-11 filtering, RFC 7638 thumbprints."""

import copy

import pytest

from vectorfiles import load_vector
from minting import Minter, public_jwk
from nmosauth_lite import jwk
from nmosauth_lite.errors import KeyFormatError

IS10_EXAMPLE_JWKS = load_vector("spec-data", "is-10", "examples", "jwks-get-200.json")


def test_rfc7638_section_3_1_example_thumbprint():
    key = jwk.parse_jwk({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    })
    assert key.thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ec_thumbprint_is_independent_of_member_order_and_extras():
    m = Minter()
    d = public_jwk(m.ec256, "x")
    d2 = dict(reversed(list(d.items())))
    d2["extra"] = 1
    assert jwk.parse_jwk(d).thumbprint == jwk.parse_jwk(d2).thumbprint


def test_is10_example_jwks_filtering_rs11():
    # The IS-10 example holds an EC key marked use=enc and an RSA key marked RS256.
    keys, skipped = jwk.parse_jwks(IS10_EXAMPLE_JWKS, ("RS512",))
    assert keys == [] and skipped == 2
    keys, skipped = jwk.parse_jwks(IS10_EXAMPLE_JWKS, ("RS256", "RS512"))
    assert [k.kty for k in keys] == ["RSA"] and skipped == 1


def test_key_ops_as_string_accepted_rs11():  # AMWA mock AS publishes "key_ops":"verify"
    m = Minter()
    d = public_jwk(m.rsa, "k")
    d["key_ops"] = "verify"
    assert len(jwk.parse_jwks({"keys": [d]})[0]) == 1
    d["key_ops"] = ["verify", "sign"]
    assert len(jwk.parse_jwks({"keys": [d]})[0]) == 1
    d["key_ops"] = "encrypt"
    assert jwk.parse_jwks({"keys": [d]})[0] == []


def test_bare_array_jwks_tolerated():  # IS-10 §12 A16
    m = Minter()
    assert len(jwk.parse_jwks([public_jwk(m.rsa)])[0]) == 1
    with pytest.raises(KeyFormatError):
        jwk.parse_jwks({"keys": "nope"})
    with pytest.raises(KeyFormatError):
        jwk.parse_jwks("nope")


def test_key_count_is_capped():
    m = Minter()
    keys, skipped = jwk.parse_jwks({"keys": [public_jwk(m.rsa)] * (jwk.MAX_KEYS + 5)})
    assert len(keys) == jwk.MAX_KEYS and skipped == 5


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(n="AQAB"),  # tiny modulus (TOK-04)
        lambda d: d.update(e="AQ"),  # e = 1
        lambda d: d.update(e="Ag"),  # even e
        lambda d: d.update(n=d["n"] + "="),
        lambda d: d.pop("n"),
        lambda d: d.update(kty="oct"),
        lambda d: d.update(d="secret"),
        lambda d: d.update(alg="ES256"),
        lambda d: d.update(kid="k" * 300),
        lambda d: d.update(n=5),
    ],
)
def test_unusable_rsa_keys_refused(mutate):
    d = public_jwk(Minter().rsa2, "k")
    mutate(d)
    with pytest.raises(KeyFormatError):
        jwk.parse_jwk(d)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(y=d["x"]),  # point off the curve
        lambda d: d.update(crv="P-521"),  # 32-byte coordinates under a 66-byte curve
        lambda d: d.update(alg="ES512"),
        lambda d: d.update(crv="secp256k1"),
        lambda d: d.update(x=d["x"][:-2]),  # short coordinate (RFC 7518 §6.2.1.2)
        lambda d: d.update(alg="ES384"),
    ],
)
def test_unusable_ec_keys_refused(mutate):
    d = public_jwk(Minter().ec256, "k")
    mutate(d)
    with pytest.raises(KeyFormatError):
        jwk.parse_jwk(d)


def test_fits_refuses_key_type_confusion():
    m = Minter()
    r = jwk.parse_jwk(public_jwk(m.rsa))
    e256 = jwk.parse_jwk(public_jwk(m.ec256))
    e384 = jwk.parse_jwk(public_jwk(m.ec384))
    assert r.fits("RS512") and not r.fits("ES256")
    assert e256.fits("ES256") and not e256.fits("ES384") and not e256.fits("RS256")
    assert e384.fits("ES384") and not e384.fits("ES256") and not e384.fits("ES512")
    e521 = jwk.parse_jwk(public_jwk(m.ec521))
    assert e521.crv == "P-521" and e521.size == 66
    assert e521.fits("ES512") and not e521.fits("ES384") and not e521.fits("ES256") and not e521.fits("RS512")


def test_to_jwk_round_trips():
    m = Minter()
    for priv in (m.rsa, m.ec256, m.ec384, m.ec521):
        k = jwk.parse_jwk(public_jwk(priv, "kid-1", None))
        k2 = jwk.parse_jwk(copy.deepcopy(k.to_jwk()))
        assert k2.thumbprint == k.thumbprint and k2.kid == "kid-1"
