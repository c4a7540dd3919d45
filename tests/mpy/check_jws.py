"""jws: compact JWS parsing rejections (RFC 7515, RFC 8725, IS-10 RS-12) and the key
try-order of verify, driven by a scripted backend so no crypto is involved."""

import harness
from nmosauth_lite import b64url, jws
from nmosauth_lite.errors import MalformedTokenError, SignatureError, TokenError, UnsupportedAlgorithmError
from nmosauth_lite.jsonshim import dumps

CLAIMS = {"iss": "https://auth.example.com", "sub": "s", "aud": "node1.example.com", "exp": 1700000600, "client_id": "c"}
SIG = b64url.encode(b"\x01" * 256)


def token(header, claims=CLAIMS, sig=SIG):
    return b64url.encode(dumps(header)) + "." + b64url.encode(dumps(claims)) + "." + sig


def _lane_token(alg):
    return harness.load_json("tests/mpy/data/lane-vectors.json")["tokens"][alg]


def check_parses_a_well_formed_token():
    t = _lane_token("RS256")
    p = jws.parse(t)
    harness.eq(p.alg, "RS256", "alg")
    harness.eq(p.kid, "mpy-lane-rsa", "kid")
    harness.eq(p.claims["sub"], "mpy-lane@example.com", "sub")
    harness.eq(p.signing_input, t[: t.rfind(".")].encode(), "signing input")
    harness.eq(len(p.signature), 256, "signature bytes")


def check_rejects_alg_none_and_hmac():
    for alg in ("none", "None", "NONE", "HS256", "HS384", "HS512"):
        harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": alg, "typ": "JWT"}))
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "none"}, sig=""))  # unsecured JWT


def check_rejects_alg_outside_the_allow_list():
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "RS256"}), jws.IS10_STRICT_ALGORITHMS)
    jws.parse(token({"alg": "RS512"}), jws.IS10_STRICT_ALGORITHMS)
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "PS256"}))
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "EdDSA"}))


def check_rejects_missing_or_non_string_alg():
    for header in ({}, {"alg": None}, {"alg": 256}, {"alg": ["RS256"]}):
        harness.raises(MalformedTokenError, jws.parse, token(header))


def check_rejects_unknown_crit():
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "RS256", "crit": ["exp"], "exp": 1}))
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "RS256", "crit": ["b64"], "b64": False}))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256", "crit": []}))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256", "crit": "exp"}))


def check_rejects_b64_typ_and_kid_types():
    harness.raises(UnsupportedAlgorithmError, jws.parse, token({"alg": "RS256", "b64": True}))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256", "typ": "JWE"}))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256", "typ": 1}))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256", "kid": 7}))
    for typ in ("JWT", "jwt", "at+jwt", "application/at+JWT"):
        jws.parse(token({"alg": "RS256", "typ": typ}))


def check_rejects_bad_base64url_in_every_segment():
    good = _lane_token("RS256")
    h, p, s = good.split(".")
    for bad in (
        h[:5] + "!" + h[6:] + "." + p + "." + s,
        h + "." + p[:5] + "*" + p[6:] + "." + s,
        h + "." + p + "." + s[:5] + "$" + s[6:],
        h + "=." + p + "." + s,
        h + "." + p + "." + s[:-2] + "+/",
        h + "." + p + " ." + s,
        h + "." + p + "." + s + "\n",
        h + "." + p + "." + s[:-1],  # length % 4 == 1 or non-canonical
    ):
        harness.raises(MalformedTokenError, jws.parse, bad)


def check_rejects_wrong_segment_counts_and_empties():
    good = _lane_token("RS256")
    h, p, s = good.split(".")
    for bad in (h + "." + p, h + "." + p + "." + s + ".", "." + p + "." + s, h + ".." + s, h + "." + p + ".",
                "", "...", "a.b"):
        harness.raises(MalformedTokenError, jws.parse, bad)


def check_rejects_non_object_json():
    for header_text in ('["RS256"]', '"RS256"', "{", "1"):
        t = b64url.encode(header_text) + "." + b64url.encode(dumps(CLAIMS)) + "." + SIG
        harness.raises(MalformedTokenError, jws.parse, t)
    t = b64url.encode(dumps({"alg": "RS256"})) + "." + b64url.encode("[1,2]") + "." + SIG
    harness.raises(MalformedTokenError, jws.parse, t)


def check_size_caps_come_first():
    harness.raises(MalformedTokenError, jws.parse, "a" * (jws.MAX_TOKEN_LEN + 1))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256", "pad": "x" * 3000}))
    harness.raises(MalformedTokenError, jws.parse, token({"alg": "RS256"}, sig="A" * (jws.MAX_SIGNATURE_SEGMENT + 4)))
    harness.raises(MalformedTokenError, jws.parse, b"a.b.c")


def check_algorithm_allow_list_validation():
    harness.eq(jws.check_algorithms(["RS512"]), ("RS512",), "tuple")
    harness.raises(ValueError, jws.check_algorithms, [])
    harness.raises(ValueError, jws.check_algorithms, ["HS256"])
    harness.raises(ValueError, jws.check_algorithms, ["none"])


class _Key:
    def __init__(self, kid, kty="RSA", withdrawn=False):
        self.kid = kid
        self.kty = kty
        self.withdrawn = withdrawn

    def fits(self, alg):
        return (self.kty == "RSA") == alg.startswith("RS")


class _Backend:
    """Scripted backend: accepts only `good`; records the kids it was asked about."""

    def __init__(self, good=None):
        self.good = good
        self.tried = []

    def verify(self, alg, key, signing_input, signature):
        self.tried.append(key.kid)
        return key is self.good


def check_verify_tries_the_named_kid_first():
    a, b, c = _Key("a"), _Key("b"), _Key("c")
    be = _Backend(good=c)
    p = jws.parse(token({"alg": "RS256", "kid": "c"}))
    harness.true(jws.verify(p, [a, b, c], be) is c, "c verifies")
    harness.eq(be.tried, ["c"], "order")


def check_verify_falls_back_to_other_keys_and_caps_attempts():
    keys = [_Key("k%d" % i) for i in range(10)]
    be = _Backend(good=None)
    p = jws.parse(token({"alg": "RS256", "kid": "nope"}))
    harness.raises(SignatureError, jws.verify, p, keys, be)
    harness.eq(len(be.tried), jws.MAX_VERIFY_ATTEMPTS, "attempts")


def check_verify_skips_withdrawn_keys_and_wrong_key_types():
    ec = _Key("e", kty="EC")
    old = _Key("o", withdrawn=True)
    be = _Backend(good=old)
    p = jws.parse(token({"alg": "RS256", "kid": "o"}))
    e = harness.raises(SignatureError, jws.verify, p, [ec, old], be)
    harness.eq(be.tried, [], "nothing tried")
    harness.true("no trusted key" in e.message, e.message)
    harness.true(issubclass(SignatureError, TokenError), "SignatureError is a TokenError")
