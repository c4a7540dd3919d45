"""validator: TokenValidator decisions end to end with backend="pure" (IS-10 RS-20..RS-26):
the lane's RS256 and RS512 tokens, the IS-10 example token vectors, and the
no-token / public-path / OPTIONS / malformed / scope / audience outcomes."""

import harness
from nmosauth_lite import TokenValidator
from nmosauth_lite.errors import ConfigError

READ = "/x-nmos/connection/v1.1/single/senders"
WRITE = "/x-nmos/connection/v1.1/single/receivers/ea388089-9ffb-4a81-b109-a19da845b3b6/staged"
_d = None


def data():
    global _d
    if _d is None:
        _d = harness.load_json("tests/mpy/data/lane-vectors.json")
    return _d


def validator(**kw):
    args = {"jwks": data()["jwks"], "audience": [data()["audience"]], "backend": "pure"}
    for k in kw:
        args[k] = kw[k]
    return TokenValidator(**args)


def _expect(d, status, error, what):
    harness.eq((d.status, d.error), (status, error), what + " (" + d.reason + ")")


def _end_to_end(alg):
    v = validator()
    now = data()["now"]
    token = data()["tokens"][alg]
    start = harness.clock_ms()
    d = v.check(token, "GET", READ, now)
    first = harness.elapsed_ms(start)
    _expect(d, 200, None, alg + " first-seen GET")
    harness.eq(d.claims["sub"], "mpy-lane@example.com", "claims")
    harness.eq(d.www_authenticate, None, "no challenge")
    _expect(v.check(token, "PATCH", WRITE, now), 200, None, alg + " cached PATCH")
    reps = 200
    start = harness.clock_ms()
    for _ in range(reps):
        v.check(token, "PATCH", WRITE, now)
    cached = harness.elapsed_ms(start) / reps
    _expect(v.check(token, "POST", "/x-nmos/connection/v1.1/bulk/receivers", now), 403, "insufficient_scope", "bulk")
    _expect(v.check(token, "GET", "/x-nmos/node/v1.3/self", now), 403, "insufficient_scope", "node api")
    _expect(v.check(token, "GET", READ, now + 500), 401, "invalid_token", "expired (cached entry)")
    harness.note("TokenValidator(backend='pure') %s RSA-2048: first-seen %.1f ms, cached %.3f ms" % (alg, first, cached))


def check_rs256_token_end_to_end():
    _end_to_end("RS256")


def check_rs512_token_end_to_end():
    _end_to_end("RS512")


def check_strict_profile_refuses_rs256():
    v = validator(algorithms=("RS512",))
    _expect(v.check(data()["tokens"]["RS256"], "GET", READ, data()["now"]), 401, "invalid_token", "RS256 under RS512-only")


def check_tampered_and_untrusted_tokens():
    now = data()["now"]
    token = data()["tokens"]["RS256"]
    h, p, s = token.split(".")
    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    _expect(validator().check(h + "." + p + "." + flipped, "GET", READ, now), 401, "invalid_token", "bad signature")
    v = validator(issuers=["https://other.example.com"])
    _expect(v.check(token, "GET", READ, now), 401, "invalid_token", "untrusted issuer")


def check_wrong_audience_is_403():
    v = validator(audience=["node1.example.org"])
    _expect(v.check(data()["tokens"]["RS256"], "GET", READ, data()["now"]), 403, "insufficient_scope", "aud")


def check_no_token_public_paths_and_options():
    v = validator()
    d = v.check(None, "GET", READ, 0)
    _expect(d, 401, None, "no token")
    harness.eq(d.www_authenticate, 'Bearer realm="node1.example.com"', "challenge without error")
    for path in ("/", "/x-nmos", "/x-nmos/"):
        _expect(v.check(None, "GET", path, 0), 200, None, "public " + path)
    _expect(v.check(None, "OPTIONS", READ, 0), 200, None, "OPTIONS")
    _expect(v.check("garbage", "OPTIONS", READ, 0), 200, None, "OPTIONS ignores the token")


def check_malformed_tokens_are_401_invalid_token():
    v = validator()
    for bad in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 20000):
        d = v.check(bad, "GET", READ, 0)
        _expect(d, 401, "invalid_token", "malformed")
        harness.true(d.www_authenticate.startswith('Bearer realm="node1.example.com",error=invalid_token,'), d.www_authenticate)
    _expect(v.check("garbage", "GET", "/", 0), 200, None, "public path ignores a bad token")
    _expect(v.check(None, "GET", "/x-nmos/%2F", 0), 400, "invalid_request", "bad path")


def check_authorization_header_forms():
    v = validator()
    now = data()["now"]
    token = data()["tokens"]["RS256"]
    _expect(v.check_header("bEaReR " + token, "GET", READ, now), 200, None, "scheme is case-insensitive")
    _expect(v.check_header(None, "GET", READ, now), 401, None, "no header")
    _expect(v.check_header("Basic dXNlcjpwYXNz", "GET", READ, now), 401, "invalid_token", "other scheme")
    _expect(v.check_header("Bearer", "GET", READ, now), 400, "invalid_request", "empty bearer")


def check_configuration_errors():
    harness.raises(ConfigError, validator, backend="openssl")
    harness.raises(ConfigError, validator, audience=[])
    harness.raises(ConfigError, validator, leeway=-1)
    harness.raises(ConfigError, validator, algorithms=("HS256",))
    harness.raises(ConfigError, validator, jwks={"keys": []})


def _example_case(doc, case):
    def check():
        v = TokenValidator(jwks=doc["jwks"], audience=["node1.example.com"], backend="pure")
        d = v.check(case["token"], "GET", READ, case["now"])
        want = (200, None) if case["expect"].startswith("signature_valid") else (401, "invalid_token")
        harness.eq((d.status, d.error), want, case["id"] + " " + case["comment"][:50] + " (" + d.reason + ")")

    return check


def _example_checks():
    doc = harness.load_json("tests/vectors/nmos/is10-example-token-vectors.json")
    return [("IS-10 example " + c["id"], _example_case(doc, c)) for c in doc["tests"]]


CHECKS = _example_checks()
