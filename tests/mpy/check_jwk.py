"""jwk: RSA/EC public JWK loading, RS-11 key filtering, and RFC 7638 thumbprints
(expected values computed on CPython by tests/mpy/make_data.py)."""

import harness
from nmosauth_lite import jwk
from nmosauth_lite.errors import KeyFormatError

_data = None


def data():
    global _data
    if _data is None:
        _data = harness.load_json("tests/mpy/data/lane-vectors.json")
    return _data


def _jwk(kid):
    for k in data()["jwks"]["keys"]:
        if k["kid"] == kid:
            return dict(k)
    raise KeyError(kid)


def check_parses_rsa_key():
    key = jwk.parse_jwk(_jwk("mpy-lane-rsa"))
    harness.eq(key.kty, "RSA", "kty")
    harness.eq(key.kid, "mpy-lane-rsa", "kid")
    harness.eq(key.e, 65537, "e")
    harness.eq(key.size, 256, "modulus bytes")
    harness.true(key.fits("RS256") and key.fits("RS512"), "fits RS256/RS512")
    harness.true(not key.fits("ES256"), "not ES256")


def check_parses_ec_key_and_checks_the_curve():
    key = jwk.parse_jwk(_jwk("mpy-lane-p256"))
    harness.eq(key.kty, "EC", "kty")
    harness.eq(key.crv, "P-256", "crv")
    harness.true(key.fits("ES256") and not key.fits("ES384") and not key.fits("RS256"), "fits ES256 only")
    off = _jwk("mpy-lane-p256")
    off["y"] = jwk.b64url.encode_uint(key.y ^ 1, 32)
    harness.raises(KeyFormatError, jwk.parse_jwk, off)


def check_rsa_thumbprint_matches_cpython():
    harness.eq(jwk.parse_jwk(_jwk("mpy-lane-rsa")).thumbprint, data()["thumbprints"]["mpy-lane-rsa"], "thumbprint")


def check_ec_thumbprint_matches_cpython():
    harness.eq(jwk.parse_jwk(_jwk("mpy-lane-p256")).thumbprint, data()["thumbprints"]["mpy-lane-p256"], "thumbprint")


def check_rfc7638_example_thumbprint():
    key = jwk.parse_jwk(dict(data()["rfc7638_jwk"]))
    harness.eq(key.thumbprint, data()["rfc7638_thumbprint"], "RFC 7638 §3.1")


def check_canonical_json_does_not_depend_on_dict_order():
    key = jwk.parse_jwk(_jwk("mpy-lane-p256"))
    text = key.canonical_json()
    harness.true(text.startswith('{"crv":"P-256","kty":"EC","x":"'), "member order: " + text[:40])


def check_refuses_unusable_keys():
    rsa = _jwk("mpy-lane-rsa")
    for what, member, value in (
        ("private d", "d", "AQAB"),
        ("missing n", "n", None),
        ("n not a string", "n", 5),
        ("bad base64url n", "n", rsa["n"][:-2] + "!!"),
        ("alg ES256 on RSA", "alg", "ES256"),
        ("even e", "e", "AQAA"),
        ("1008-bit modulus", "n", rsa["n"][:168]),
        ("unknown kty", "kty", "oct"),
    ):
        k = dict(rsa)
        if value is None:
            del k[member]
        else:
            k[member] = value
        e = harness.raises(KeyFormatError, jwk.parse_jwk, k)
        harness.true(e.message.startswith("JWK"), what + ": " + e.message)


def check_jwks_filtering_skips_instead_of_failing():
    rsa = _jwk("mpy-lane-rsa")
    enc = dict(rsa)
    enc["use"] = "enc"
    ops_str = dict(rsa)
    ops_str["key_ops"] = "verify"  # RS-11: the IS-10 schema writes a plain string
    ops_sign = dict(rsa)
    ops_sign["key_ops"] = ["sign"]
    keys, skipped = jwk.parse_jwks({"keys": [enc, ops_str, ops_sign, {"kty": "oct", "k": "AA"}, "junk"]})
    harness.eq(len(keys), 1, "usable keys")
    harness.eq(skipped, 4, "skipped")
    keys, skipped = jwk.parse_jwks([rsa])  # a bare array (IS-10 §12 A16)
    harness.eq((len(keys), skipped), (1, 0), "bare array")
    harness.raises(KeyFormatError, jwk.parse_jwks, {"keys": {}})
    harness.raises(KeyFormatError, jwk.parse_jwks, "keys")


def check_to_jwk_round_trips():
    for kid in ("mpy-lane-rsa", "mpy-lane-p256"):
        key = jwk.parse_jwk(_jwk(kid))
        again = jwk.parse_jwk(key.to_jwk())
        harness.eq(again.canonical_json(), key.canonical_json(), kid)


# FIPS 186-4 §D.1.2.5: the P-521 base point, a public point every ES512 check can use.
_P521_GX = int("00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127"
               "A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66", 16)
_P521_GY = int("011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B901"
               "3FAD0761353C7086A272C24088BE94769FD16650", 16)


def check_p521_key_for_es512_only():
    # RFC 7518 §3.4, §6.2.1.2: ES512 is P-521 with 66-byte coordinates; big-int arithmetic on 521 bits.
    d = {"kty": "EC", "crv": "P-521", "x": jwk.b64url.encode_uint(_P521_GX, 66),
         "y": jwk.b64url.encode_uint(_P521_GY, 66)}
    key = jwk.parse_jwk(d)
    harness.eq((key.crv, key.size), ("P-521", 66), "P-521 size")
    harness.true(key.fits("ES512") and not key.fits("ES384") and not key.fits("RS512"), "fits ES512 only")
    off = dict(d)
    off["y"] = jwk.b64url.encode_uint(_P521_GY ^ 1, 66)
    harness.raises(KeyFormatError, jwk.parse_jwk, off)
    short = dict(d)
    short["x"] = jwk.b64url.encode_uint(_P521_GX, 65)  # the leading zero octet dropped
    harness.raises(KeyFormatError, jwk.parse_jwk, short)
