"""Differential tests against PyJWT (issue 2 item 8), on both crypto backends.

(a) Tokens PyJWT mints are accepted by our validator.
(b) A deterministic corpus of valid and broken tokens is decided by our validator and by
    `jwt.decode` doing the equivalent checks (signature with every trusted key that fits the alg,
    allow-list, iss, sub, aud, exp/iat/nbf with the same leeway and the same `now`). Both must
    agree wherever both apply. The classes where we deliberately differ are listed in
    DELIBERATE_DIFFERENCES with their reasons; a case may only disagree when its content (decoded
    here, independently of the code under test) puts it in one of those classes, and only in the
    direction listed.
"""

import base64
import datetime
import hashlib
import hmac
import json
import math
import random
import re

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt import api_jwt

from minting import Minter, b64, encode_token, public_jwk, sign_raw
from nmosauth_lite import TokenValidator, jws

NOW = Minter.NOW
ISS = Minter.ISS
HOST = "node1.example.com"
PATH = "/x-nmos/query/v1.3/nodes"
LEEWAY = 5
ALGS = list(jws.DEFAULT_ALGORITHMS)
# The exact aud strings PyJWT must see to match what our rules match for plain (non-wildcard,
# lower-case, no trailing dot, https-or-bare) values: IS-10 RS-15 "understand both forms".
PYJWT_AUDIENCE = [HOST, "https://" + HOST]
SEED = 1010
WWW_RE = re.compile(
    r'^Bearer realm="[^"]*"(,error=(invalid_token|insufficient_scope|invalid_request),error_description="[^",]*")?$'
)

OURS_STRICTER = "ours rejects, PyJWT accepts"
OURS_LAXER = "ours accepts, PyJWT rejects"
EITHER = "either direction"

DELIBERATE_DIFFERENCES = {
    "aud_normalisation": (
        OURS_LAXER,
        "IS-10 RS-15: we compare host names case-insensitively, strip http:// or https:// and one "
        "trailing dot, and expand '*' as a glob (wildcard audiences); PyJWT compares aud strings exactly",
    ),
    "client_id": (
        OURS_STRICTER,
        "IS-10 §3.2 / RS-17 / §12 C7: client_id or azp is required, must be a non-empty string, and "
        "both must agree when both are present; PyJWT has no such rule",
    ),
    "scope_type": (OURS_STRICTER, "IS-10 TOK-10 / RFC 9068 §2.2.3: scope is a string; PyJWT ignores scope"),
    "path_permission": (
        OURS_STRICTER,
        "IS-10 RS-31..RS-35: the x-nmos-<api> path table is ours only; PyJWT knows no request paths",
    ),
    "typ": (OURS_STRICTER, "IS-10 RS-18: typ must be JWT or at+jwt when present; PyJWT ignores typ"),
    "b64_header": (
        OURS_STRICTER,
        "RFC 7797 is not supported, so any b64 header member is refused (RS-12); PyJWT implements "
        "b64 listed in crit",
    ),
    "padded_segment": (
        OURS_STRICTER,
        "RFC 7515 §2: strict unpadded base64url; PyJWT tolerates trailing '=' padding (a padded "
        "signature segment leaves the signing input intact, so PyJWT accepts the token)",
    ),
    "numericdate_type": (
        OURS_STRICTER,
        "RFC 7519 §2: a NumericDate is a JSON number; PyJWT int()s booleans and numeric strings, and "
        "sets no range (ours: |value| < 1e13)",
    ),
    "fractional_truncation": (
        EITHER,
        "RFC 7519 allows fractional NumericDates and we compare them exactly; PyJWT truncates with int()",
    ),
    "empty_string": (OURS_STRICTER, "sub must be a non-empty string (TOK-10 schema); PyJWT accepts sub ''"),
    "jti_type": (
        OURS_LAXER,
        "PyJWT requires a string jti; IS-10 sets no rule for jti and TOK-10 says other claims are ignored",
    ),
}


# --- PyJWT with a frozen clock -------------------------------------------------------------

class _FrozenDateTime(datetime.datetime):
    """PyJWT reads `datetime.now(tz=timezone.utc)`; give it our `now`."""

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.fromtimestamp(NOW, tz)


@pytest.fixture
def frozen_pyjwt(monkeypatch):
    monkeypatch.setattr(api_jwt, "datetime", _FrozenDateTime)


def _candidates(minter):
    rsa = [minter.rsa.public_key(), minter.rsa2.public_key()]
    return {"RS256": rsa, "RS384": rsa, "RS512": rsa, "ES256": [minter.ec256.public_key()], "ES384": [minter.ec384.public_key()],
            "ES512": [minter.ec521.public_key()]}


def pyjwt_decide(token, candidates):
    """(accepted, claims-or-reason). Every trusted key that fits the alg is tried (IS-10 RS-05)."""
    try:
        header = jwt.get_unverified_header(token)
    except Exception as e:  # noqa: BLE001 - PyJWT's own verdict: rejected
        return False, type(e).__name__
    alg = header.get("alg")
    keys = candidates.get(alg) if isinstance(alg, str) else None
    if not keys:
        keys = candidates["RS512"][:1]  # PyJWT refuses the alg before the key matters
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGS,
                audience=PYJWT_AUDIENCE,
                issuer=ISS,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except Exception as e:  # noqa: BLE001
            return False, type(e).__name__
        return True, claims
    return False, "InvalidSignatureError"


def ours_decide(v, token):
    try:
        d = v.check(token, "GET", PATH, NOW)
    except BaseException as e:  # noqa: B036 - check never raises
        pytest.fail("check raised %s: %s" % (type(e).__name__, e))
    assert d.status in (200, 401, 403), d
    if d.status != 200:
        assert WWW_RE.match(d.www_authenticate), d.www_authenticate
        assert d.error == ("invalid_token" if d.status == 401 else "insufficient_scope")
    return d


def _validator(minter, backend_name):
    return TokenValidator(jwks=minter.jwks, audience=[HOST], issuers=[ISS], leeway=LEEWAY, backend=backend_name)


def test_pyjwt_clock_is_frozen(minter, frozen_pyjwt):
    c = _candidates(minter)
    assert pyjwt_decide(minter.token("RS512", aud=[HOST]), c)[0]
    assert pyjwt_decide(minter.token("RS512", aud=[HOST], exp=NOW - LEEWAY), c) == (False, "ExpiredSignatureError")
    assert pyjwt_decide(minter.token("RS512", aud=[HOST], exp=NOW - LEEWAY + 1), c)[0]


# --- (a) PyJWT-minted tokens are accepted ---------------------------------------------------

@pytest.mark.parametrize("alg", ALGS)
def test_tokens_pyjwt_mints_are_accepted(minter, backend_name, alg):
    v = _validator(minter, backend_name)
    priv, kid = minter.key_by_alg[alg]
    for aud in ([HOST], "https://" + HOST, ["https://*.example.com"], ["other.example.org", HOST.upper()]):
        for headers in ({"kid": kid}, None, {"typ": "at+jwt", "kid": kid}, {"kid": "unknown"}):
            claims = minter.claims(aud=aud)
            token = jwt.encode(claims, priv, algorithm=alg, headers=headers)
            d = ours_decide(v, token)
            assert d.status == 200, (alg, aud, headers, d)
            assert d.claims == claims


def test_tokens_pyjwt_mints_from_our_jwks_keys_round_trip(minter, backend_name, frozen_pyjwt):
    # The same token decoded by PyJWT through the JWK Set we trust, to tie both to one key set.
    v = _validator(minter, backend_name)
    jwk_set = jwt.PyJWKSet.from_dict(minter.jwks)
    for alg in ALGS:
        priv, kid = minter.key_by_alg[alg]
        token = jwt.encode(minter.claims(aud=[HOST]), priv, algorithm=alg, headers={"kid": kid})
        assert ours_decide(v, token).status == 200
        key = jwk_set[kid]
        jwt.decode(token, key.key, algorithms=[alg], audience=HOST, issuer=ISS)


# --- (b) the corpus ------------------------------------------------------------------------

_MISSING = object()


def _lenient_json(seg):
    try:
        raw = base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))
        return json.loads(raw)
    except Exception:  # noqa: BLE001
        return _MISSING


def _host(value):
    v = value.lower()
    for prefix in ("https://", "http://"):
        if v.startswith(prefix):
            v = v[len(prefix):]
            break
    return v[:-1] if v.endswith(".") else v


def _reference_aud_match(aud):
    """Independent reading of ARCHITECTURE.md's audience rules for host HOST."""
    for value in [aud] if isinstance(aud, str) else aud:
        h = _host(value)
        if not h or any(c in h for c in "/:?#@ "):
            continue
        if re.fullmatch(".*".join(re.escape(p) for p in h.split("*")), HOST):
            return True
    return False


def _is_numericdate_for_pyjwt(v):
    try:
        int(v)
        return True
    except (TypeError, ValueError, OverflowError):
        return False


def deliberate_tags(token):
    """Which DELIBERATE_DIFFERENCES classes this token's content falls in (decoded here)."""
    tags = set()
    parts = token.split(".")
    if len(parts) != 3:
        return tags
    if any(p != p.rstrip("=") for p in parts):
        tags.add("padded_segment")
    header = _lenient_json(parts[0].rstrip("="))
    claims = _lenient_json(parts[1].rstrip("="))
    if isinstance(header, dict):
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in jws.ACCEPTED_TYP):
            tags.add("typ")
        if "b64" in header:
            tags.add("b64_header")
    if not isinstance(claims, dict):
        return tags
    aud = claims.get("aud")
    if isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud)):
        pyjwt_match = any(a in PYJWT_AUDIENCE for a in ([aud] if isinstance(aud, str) else aud))
        if bool(aud) and _reference_aud_match(aud) != pyjwt_match:
            tags.add("aud_normalisation")
    present = [claims[k] for k in ("client_id", "azp") if k in claims]
    if not present or any(not isinstance(x, str) or not x for x in present) or len(set(map(repr, present))) > 1:
        tags.add("client_id")
    if "scope" in claims and not isinstance(claims["scope"], str):
        tags.add("scope_type")
    q = claims.get("x-nmos-query")
    read = q.get("read") if isinstance(q, dict) else None
    if not (isinstance(read, list) and all(isinstance(s, str) for s in read) and ("*" in read or "nodes" in read)):
        tags.add("path_permission")
    if claims.get("sub") == "":
        tags.add("empty_string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        tags.add("jti_type")
    exact_ok, trunc_ok = True, True
    for name in ("exp", "iat", "nbf"):
        if name not in claims:
            continue
        val = claims[name]
        exact_number = type(val) in (int, float) and math.isfinite(val)
        if not exact_number or abs(val) >= 1e13:
            if _is_numericdate_for_pyjwt(val):
                tags.add("numericdate_type")
            continue
        t = int(val)
        if name == "exp":
            exact_ok &= NOW < val + LEEWAY
            trunc_ok &= not (t <= NOW - LEEWAY)
        else:
            exact_ok &= val - LEEWAY <= NOW
            trunc_ok &= not (t > NOW + LEEWAY)
    if exact_ok != trunc_ok:
        tags.add("fractional_truncation")
    return tags


def _flip_bit(seg, rng):
    raw = bytearray(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    if not raw:
        return seg + "A"
    i = rng.randrange(len(raw))
    raw[i] ^= 1 << rng.randrange(8)
    return b64(bytes(raw))


def _replace_char(seg, rng):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    i = rng.randrange(len(seg))
    c = rng.choice([a for a in alphabet if a != seg[i]])
    return seg[:i] + c + seg[i + 1:]


def _token_mutations(t, minter, rng, other):
    """String-level mutations of a valid token (signature no longer matches, or shape broken)."""
    h, p, s = t.split(".")
    out = []
    for i in range(3):
        parts = [h, p, s]
        parts[i] = _flip_bit(parts[i], rng)
        out.append(("flip bit in segment %d" % i, ".".join(parts)))
        parts = [h, p, s]
        parts[i] = _replace_char(parts[i], rng)
        out.append(("replace char in segment %d" % i, ".".join(parts)))
    out += [
        ("swap header/payload", p + "." + h + "." + s),
        ("swap payload/signature", h + "." + s + "." + p),
        ("signature of another token", h + "." + p + "." + other.split(".")[2]),
        ("payload of another token", h + "." + other.split(".")[1] + "." + s),
        ("truncate", t[: rng.randrange(1, len(t))]),
        ("truncate signature by 4", h + "." + p + "." + s[:-4]),
        ("drop signature", h + "." + p + "."),
        ("two segments", h + "." + p),
        ("four segments", t + "." + s),
        ("pad signature", h + "." + p + "." + s + "=" * (-len(s) % 4)),
        ("pad payload", h + "." + p + "=" * (-len(p) % 4) + "." + s),
        ("whitespace", h + "." + p[:10] + " " + p[10:] + "." + s),
        ("standard alphabet", t.replace("-", "+").replace("_", "/")),
        ("signature extended", h + "." + p + "." + s + "AA"),
    ]
    return out


def _header_mutations(minter, alg, claims, rng):
    priv, kid = minter.key_by_alg[alg]
    c = json.dumps(claims)
    pem = minter.rsa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_h = b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}))
    hs_p = b64(c)
    hs = hs_h + "." + hs_p + "." + b64(hmac.new(pem, (hs_h + "." + hs_p).encode(), hashlib.sha256).digest())
    other = "ES256" if alg.startswith("RS") else "RS512"
    return [
        ("alg none", b64(json.dumps({"alg": "none"})) + "." + b64(c) + "."),
        ("HS256 with the RSA public key", hs),
        ("alg changed", encode_token({"alg": other, "kid": kid}, claims, priv, alg)),
        ("attacker key", encode_token({"alg": "RS512", "kid": "rsa-1"}, claims, minter.attacker)),
        ("kid of another trusted key", encode_token({"alg": "RS512", "kid": "rsa-1"}, claims, minter.rsa2)),
        ("no kid", encode_token({"alg": alg}, claims, priv)),
        ("unknown kid", encode_token({"alg": alg, "kid": "nope"}, claims, priv)),
        ("kid not a string", encode_token({"alg": alg, "kid": 7}, claims, priv)),
        ("typ at+jwt", encode_token({"alg": alg, "typ": "at+jwt"}, claims, priv)),
        ("typ foreign", encode_token({"alg": alg, "typ": "JOSE+JSON"}, claims, priv)),
        ("crit unknown", encode_token({"alg": alg, "crit": ["exp"]}, claims, priv)),
        ("crit empty", encode_token({"alg": alg, "crit": []}, claims, priv)),
        ("crit b64", encode_token({"alg": alg, "crit": ["b64"], "b64": True}, claims, priv)),
        ("b64 false", encode_token({"alg": alg, "b64": False}, claims, priv)),
        ("jku", encode_token({"alg": alg, "jku": "https://attacker.example/jwks"}, claims, priv)),
        ("jwk of attacker", encode_token({"alg": "RS512", "jwk": public_jwk(minter.attacker)}, claims, minter.attacker)),
        ("header is an array", b64("[]") + "." + b64(c) + "." + b64(sign_raw(priv, alg, (b64("[]") + "." + b64(c)).encode()))),
    ]


def _claim_mutations(minter):
    base = _base_claims(minter)
    muts = []
    for name in ("iss", "sub", "aud", "exp", "iat", "client_id", "jti", "scope", "x-nmos-query"):
        muts.append(("drop " + name, {name: None}))
    values = {
        "exp": [NOW - 100, NOW - LEEWAY, NOW - LEEWAY + 1, NOW + 10**6, NOW + 100.25, NOW - LEEWAY + 0.5, "1700000600",
                True, 1e14, float("nan"), float("inf"), 1e308, [NOW + 100]],
        "iat": [NOW + 100, NOW + LEEWAY, NOW + LEEWAY + 1, NOW + LEEWAY + 0.5, NOW - 50.5, "1700000000", True, float("nan"), -1e14],
        "nbf": [NOW + 100, NOW + LEEWAY, NOW + LEEWAY + 1, NOW - 1, "x", False],
        "aud": [["https://other.example.org"], "other.example.org", [], "", [HOST, "x"], ["https://*.example.com"], ["NODE1.example.com"],
                [HOST + "."], ["http://" + HOST], [HOST + ":8443"], ["https://node1.example.com.evil.net"], [1], {"a": HOST}, 7, ["*"]],
        "iss": ["https://evil.example.com", 1, "", [ISS], ISS + "/"],
        "sub": [1, "", ["a"], "service-account"],
        "client_id": ["other", 1, "", ["x"]],
        "azp": [base["client_id"], "different"],
        "scope": [1, ["query"], "", "query"],
        "x-nmos-query": ["*", {"read": ["nodes"]}, {"read": ["senders"]}, {"read": "*"}, {"write": ["*"]}, {}],
        "jti": [1, None, ""],
    }
    for name, vals in values.items():
        for val in vals:
            if val is None:
                continue
            muts.append(("%s=%r" % (name, val), {name: val}))
    muts.append(("azp only", {"client_id": None, "azp": "only-azp"}))
    muts.append(("neither client_id nor azp", {"client_id": None}))
    muts.append(("no iat, nbf past", {"iat": None, "nbf": NOW - 10}))
    return muts


def _base_claims(minter, **over):
    c = minter.claims(aud=["https://" + HOST])
    c.update(over)
    return c


def _raw_payload_tokens(minter):
    hdr = json.dumps({"alg": "RS512", "kid": "rsa-1"})
    body = json.dumps(_base_claims(minter))[1:-1]
    texts = [
        ("duplicate aud, ours last", "{" + body + ',"aud":["https://' + HOST + '"]}'),
        ("duplicate aud, foreign last", "{" + body + ',"aud":["https://other.example.org"]}'),
        ("duplicate exp, expired last", "{" + body + ',"exp":%d}' % (NOW - 100)),
        ("payload array", "[]"),
        ("payload string", '"x"'),
        ("payload NaN", "NaN"),
        ("payload not JSON", "{"),
    ]
    out = []
    for name, text in texts:
        h, p = b64(hdr), b64(text)
        out.append((name, h + "." + p + "." + b64(sign_raw(minter.rsa, "RS512", (h + "." + p).encode()))))
    return out


def build_corpus(minter):
    """A few hundred (name, token) cases, deterministic for a given key set."""
    rng = random.Random(SEED)
    corpus = []
    bases = []
    for alg in ALGS:
        priv, kid = minter.key_by_alg[alg]
        bases.append(("valid %s" % alg, alg, _base_claims(minter)))
    bases.append(("valid RS512, aud string", "RS512", _base_claims(minter, aud=HOST)))
    bases.append(("valid RS512, wildcard aud", "RS512", minter.claims()))
    for name, alg, claims in bases:
        t = minter.token(alg, claims=claims)
        corpus.append((name, t))
        other = minter.token(alg, claims=_base_claims(minter, sub="someone-else"))
        corpus += [(name + ": " + n, x) for n, x in _token_mutations(t, minter, rng, other)]
    for alg in ("RS512", "ES256"):
        corpus += [("%s: %s" % (alg, n), x) for n, x in _header_mutations(minter, alg, _base_claims(minter), rng)]
    for alg in ("RS512", "ES384"):
        for n, over in _claim_mutations(minter):
            claims = _base_claims(minter)
            for k, val in over.items():
                if val is None:
                    claims.pop(k, None)
                else:
                    claims[k] = val
            corpus.append(("%s: %s" % (alg, n), minter.token(alg, claims=claims)))
    corpus += _raw_payload_tokens(minter)
    return corpus


@pytest.fixture(scope="module")
def corpus(minter):
    return build_corpus(minter)


def test_corpus_is_a_few_hundred_distinct_cases(corpus):
    assert 300 <= len(corpus) <= 1000
    assert len({t for _, t in corpus}) > 0.95 * len(corpus)


def test_corpus_decisions_agree_with_pyjwt(minter, backend_name, corpus, frozen_pyjwt):
    v = _validator(minter, backend_name)
    cands = _candidates(minter)
    agreed = {True: 0, False: 0}
    seen_tags = {}
    mismatches = []
    for name, token in corpus:
        d = ours_decide(v, token)
        ours = d.status == 200
        theirs, detail = pyjwt_decide(token, cands)
        tags = deliberate_tags(token)
        for tag in tags:
            seen_tags[tag] = seen_tags.get(tag, 0) + 1
        if ours == theirs:
            agreed[ours] += 1
            if ours:
                assert d.claims == detail, name  # the same claims set, read by both
            continue
        direction = OURS_STRICTER if theirs else OURS_LAXER
        allowed = [t for t in tags if DELIBERATE_DIFFERENCES[t][0] in (direction, EITHER)]
        if not allowed:
            mismatches.append((name, "ours=%d %s" % (d.status, d.reason), "pyjwt=%s" % (detail if not theirs else "accept"), sorted(tags)))
    assert mismatches == []
    # the corpus really exercises both verdicts and every listed class
    assert agreed[True] >= 10 and agreed[False] >= 150, agreed
    assert set(seen_tags) == set(DELIBERATE_DIFFERENCES), sorted(set(DELIBERATE_DIFFERENCES) - set(seen_tags))


def test_each_deliberate_difference_is_real(minter, backend_name, frozen_pyjwt):
    """One hand-made token per class, showing the documented direction actually happens."""
    v = _validator(minter, backend_name)
    cands = _candidates(minter)
    t = lambda **over: minter.token("RS512", claims=_base_claims(minter, **over))  # noqa: E731
    good = t()
    h, p, s = good.split(".")
    cases = {
        "aud_normalisation": t(aud=["https://*.example.com"]),
        "client_id": t(azp="different"),
        "scope_type": t(scope=["query"]),
        "path_permission": t(**{"x-nmos-query": {"read": ["senders"]}}),
        "typ": minter.token("RS512", claims=_base_claims(minter), header={"typ": "JOSE"}),
        "b64_header": minter.token("RS512", claims=_base_claims(minter), header={"crit": ["b64"], "b64": True}),
        "padded_segment": h + "." + p + "." + s + "=" * (-len(s) % 4),
        "numericdate_type": t(exp="1800000000"),
        "fractional_truncation": t(exp=NOW - LEEWAY + 0.5),
        "empty_string": t(sub=""),
        "jti_type": t(jti=5),
    }
    assert set(cases) == set(DELIBERATE_DIFFERENCES)
    assert ours_decide(v, good).status == 200 and pyjwt_decide(good, cands)[0]
    for tag, token in cases.items():
        assert tag in deliberate_tags(token), tag
        ours = ours_decide(v, token).status == 200
        theirs = pyjwt_decide(token, cands)[0]
        direction = DELIBERATE_DIFFERENCES[tag][0]
        if direction == OURS_STRICTER:
            assert (ours, theirs) == (False, True), tag
        elif direction == OURS_LAXER:
            assert (ours, theirs) == (True, False), tag
        else:
            assert ours != theirs, tag


@pytest.mark.parametrize("member", ["crit", "kid"])
def test_null_header_members_agree_with_pyjwt(minter, backend_name, frozen_pyjwt, member):
    v = _validator(minter, backend_name)
    token = minter.token("RS512", claims=_base_claims(minter), kid=False, header={member: None})
    assert pyjwt_decide(token, _candidates(minter))[0] is False
    assert ours_decide(v, token).status != 200
