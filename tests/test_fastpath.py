"""The first-seen token path's fast paths (issue 13 item 1) against their reference paths.

Every fast path in the core is a shortcut for a slower, already-tested function: jws.split's
one-translation decode vs b64url.decode + jsonshim.loads per segment; claims.check_access vs
check_required + validity_window; verify_parts vs the ordered candidate walk; the compiled
permission cache vs compiling afresh. Each property says: same result, same error class and
message, for generated inputs (hypothesis), so no fast path is looser than its reference.
"""

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minting import Minter
from nmosauth_lite import TokenValidator, b64url, claims, jsonshim, jws, permissions
from nmosauth_lite.errors import ClaimError, MalformedTokenError, SignatureError, TokenError

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOST = "node1.example.com"


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except TokenError as e:
        return (type(e).__name__, e.message)


# --- jws.split: the reference is the segment-by-segment decode (RFC 7515 §7.2) ------------------

def _reference_split(token, algorithms=jws.DEFAULT_ALGORITHMS):
    """jws.parse as it was before the fast path: each segment on its own."""
    if not isinstance(token, str):
        raise MalformedTokenError("token is not text")
    if len(token) > jws.MAX_TOKEN_LEN:
        raise MalformedTokenError("token too long")
    first = token.find(".")
    second = token.find(".", first + 1)
    if first <= 0 or second < 0 or token.find(".", second + 1) >= 0:
        raise MalformedTokenError("token is not three dot-separated segments")
    if first > jws.MAX_HEADER_SEGMENT or len(token) - second - 1 > jws.MAX_SIGNATURE_SEGMENT:
        raise MalformedTokenError("token segment too long")
    header = jws.check_header(jws.loads_object(b64url.decode(token[:first]), "JOSE header"), algorithms)
    body = jws.loads_object(b64url.decode(token[first + 1:second]), "claims set")
    signature = b64url.decode(token[second + 1:])
    if not signature:
        raise MalformedTokenError("signature is empty")
    return header, header["alg"], header.get("kid"), body, token[:second].encode(), signature


HEADER = b64url.encode(b'{"alg":"RS512","typ":"JWT","kid":"k"}')
segment_chars = st.text(alphabet=ALPHABET + "=+/.\n \u00e9", max_size=40)
json_texts = st.sampled_from(['{"a":1}', '{"a":[1,{"b":null}]}', "[]", "{}", ' {"a":1}', '{"a":1} ', "{", "nul",
                              '{"a":NaN}', '{"a":"\\ud800"}', '{"a":1,"a":2}', "\u00e9", '"x"', "{}}"])


def _token_from(draw_header, payload, sig):
    return draw_header + "." + payload + "." + sig


@FAST
@given(payload=segment_chars, sig=segment_chars)
@example(payload="", sig="AQID")
@example(payload="e30", sig="")
@example(payload="e30", sig="A")
@example(payload="e30", sig="AR")  # non-canonical last character (RFC 4648 §3.5)
@example(payload="e30=", sig="AQID")
@example(payload="e3\u00e90", sig="AQID")  # non-ASCII inside a segment
def test_split_agrees_with_segment_by_segment_decode_on_any_segments(payload, sig):
    token = _token_from(HEADER, payload, sig)
    assert _outcome(jws.split, token) == _outcome(_reference_split, token)


@FAST
@given(text=json_texts, sig=st.binary(min_size=0, max_size=8))
def test_split_agrees_with_reference_on_json_edge_cases(text, sig):
    token = _token_from(HEADER, b64url.encode(text.encode("utf-8", "surrogatepass")), b64url.encode(sig))
    assert _outcome(jws.split, token) == _outcome(_reference_split, token)


@FAST
@given(st.text(max_size=60))
def test_split_agrees_with_reference_on_arbitrary_text(text):
    assert _outcome(jws.split, text) == _outcome(_reference_split, text)


def test_split_returns_the_signing_input_as_ascii_bytes():
    m = Minter()
    tok = m.token("RS512")
    header, alg, kid, body, si, sig = jws.split(tok)
    assert (alg, kid) == ("RS512", "rsa-1")
    assert si == tok[: tok.rfind(".")].encode() and type(si) is bytes
    assert body == m.claims()


def test_json_object_or_none_only_answers_for_exact_objects():
    assert jsonshim.object_or_none(b'{"a":[1]}') == {"a": [1]}
    for raw in (b"", b"[]", b' {"a":1}', b'{"a":1} ', b'{"a":NaN}', b"\xff{}", b'{"a":1}x', b"{" * 5000):
        assert jsonshim.object_or_none(raw) is None  # `loads` then decides


# --- claims.check_access: the reference is check_required + validity_window (IS-10 RS-13..RS-19)

_value = st.one_of(st.none(), st.booleans(), st.integers(-5, 2 * 10**13), st.floats(allow_nan=True),
                   st.sampled_from(["", "x", "node1.example.com", "c"]),
                   st.lists(st.one_of(st.sampled_from(["", "a"]), st.integers(0, 2), st.none()), max_size=3),
                   st.lists(st.just("a"), min_size=60, max_size=70))
_names = ("iss", "sub", "aud", "exp", "iat", "nbf", "client_id", "azp", "scope")


def _reference_access(c, leeway):
    claims.check_required(c)
    return claims.validity_window(c, leeway)


@FAST
@given(st.dictionaries(st.sampled_from(_names), _value, max_size=len(_names)), st.sampled_from([0, 5, 2.5]))
@example({"iss": "i", "sub": "s", "aud": "a", "exp": 10, "client_id": "c", "azp": "c"}, 0)
@example({"iss": "i", "sub": "s", "aud": "a", "exp": 10, "azp": "c", "client_id": None}, 0)
@example({"iss": "i", "sub": "s", "aud": "a", "exp": 10, "client_id": "c", "azp": None}, 0)
@example({"iss": "i", "sub": "s", "aud": "a", "exp": 10, "client_id": "c", "iat": 5, "nbf": 5.0}, 0)
@example({"iss": "i", "sub": "s", "aud": "a", "exp": True, "client_id": "c"}, 0)
def test_check_access_agrees_with_check_required_and_validity_window(c, leeway):
    fast = _outcome(claims.check_access, c, leeway)
    ref = _outcome(_reference_access, c, leeway)
    assert fast == ref
    if fast[0] == "ok":  # the same window, down to int vs float
        assert [type(x) for x in fast[1]] == [type(x) for x in ref[1]]


def test_check_access_falls_back_for_str_subclasses():
    class S(str):
        pass

    c = {"iss": S("i"), "sub": "s", "aud": [S("a")], "exp": 10, "client_id": "c"}
    assert claims.check_access(c, 0) == _reference_access(c, 0)


# --- jws.verify_parts: the reference is the ordered candidate walk (IS-10 RS-05) ---------------

class _Key:
    def __init__(self, kid, kty="RSA", withdrawn=False):
        self.kid, self.kty, self.withdrawn = kid, kty, withdrawn

    def fits(self, alg):
        return (self.kty == "RSA") == alg.startswith("RS")


class _Backend:
    def __init__(self, good):
        self.good, self.tried = good, []

    def verify(self, alg, key, si, sig):
        self.tried.append(key)
        return key is self.good


def _reference_verify(alg, kid, keys, backend):
    cands = [k for k in keys if kid is not None and k.kid == kid and not k.withdrawn and k.fits(alg)]
    cands += [k for k in keys if (kid is None or k.kid != kid) and not k.withdrawn and k.fits(alg)]
    if not cands:
        raise SignatureError("no trusted key fits alg %s" % alg)
    for k in cands[: jws.MAX_VERIFY_ATTEMPTS]:
        if backend.verify(alg, k, b"", b""):
            return k
    raise SignatureError("signature not verified by any trusted key")


_keys = st.lists(st.builds(_Key, st.sampled_from(["a", "b", None]), st.sampled_from(["RSA", "EC"]), st.booleans()),
                 max_size=8)


@FAST
@given(_keys, st.sampled_from(["a", "b", "z", None]), st.sampled_from(["RS512", "ES256"]), st.data())
def test_verify_parts_tries_the_same_keys_in_the_same_order_as_the_reference(keys, kid, alg, data):
    good = data.draw(st.sampled_from(keys + [None]))
    fast_be, ref_be = _Backend(good), _Backend(good)
    fast = _outcome(jws.verify_parts, alg, kid, b"", b"", keys, fast_be)
    ref = _outcome(_reference_verify, alg, kid, keys, ref_be)
    assert fast == ref
    assert fast_be.tried == ref_be.tried  # order and the MAX_VERIFY_ATTEMPTS bound


# --- permissions: compiled specifier lists are shared across tokens, bounded (IS-10 TOK-27) ----

def test_tokens_with_the_same_claims_share_compiled_matchers():
    a = permissions.Permissions({"x-nmos-node": {"read": ["self", "devices/*"]}})
    b = permissions.Permissions({"x-nmos-node": {"read": ["self", "devices/*"]}})
    assert a.matchers("node", False) is b.matchers("node", False)


def test_compiled_cache_is_bounded_and_keyed_by_value():
    for i in range(permissions.MAX_COMPILED * 3):
        p = permissions.Permissions({"x-nmos-node": {"read": ["p%d/*" % i]}})
        p.check_classified("GET", permissions.RESOURCE, "node", "p%d/x" % i)
        try:
            p.check_classified("GET", permissions.RESOURCE, "node", "p%d/x" % (i + 1))
            raise AssertionError("another token's specifier leaked in")
        except permissions.PermissionDeniedError:
            pass
    assert len(permissions._compiled) <= permissions.MAX_COMPILED


@FAST
@given(st.lists(st.one_of(st.text(alphabet="ab*/", max_size=5), st.integers(0, 3), st.none(),
                          st.lists(st.just("a"), max_size=1)), max_size=4), st.text(alphabet="ab/", max_size=5))
def test_cached_compile_agrees_with_a_fresh_compile(specs, rest):
    def decide():
        try:
            permissions.Permissions({"x-nmos-a": {"read": list(specs)}}).check_classified(
                "GET", permissions.RESOURCE, "a", rest)
            return "ok"
        except ClaimError as e:
            return e.message
        except permissions.PermissionDeniedError as e:
            return "denied: " + e.message

    first = decide()
    permissions._compiled.clear()
    assert decide() == first  # compiled afresh
    assert decide() == first  # from the cache


# --- end to end: the fast path admits what the reference path admits -----------------------

def test_first_seen_tokens_of_one_client_decide_as_before():
    m = Minter()
    v = TokenValidator(jwks=m.jwks, audience=[HOST], backend="cryptography")
    for i in range(5):
        tok = m.token("RS512", jti="j-%d" % i, iat=m.NOW - i)
        d = v.check(tok, "GET", "/x-nmos/node/v1.3/self", m.NOW)
        assert d.status == 200 and d.claims["jti"] == "j-%d" % i
        assert v.check(tok, "POST", "/x-nmos/node/v1.3/self", m.NOW).status == 403


# --- guard: the steady state reuses one Verdict per allowed Decision (issue 13 item 3) --------

def test_guard_reuses_the_verdict_of_a_cached_allowed_decision_and_still_expires_it():
    from nmosauth_lite.guard import MAX_ALLOWED_VERDICTS, Guard

    m = Minter()
    g = Guard(TokenValidator(jwks=m.jwks, audience=[HOST], backend="cryptography"))
    tok = m.token("RS512")
    path = "/x-nmos/node/v1.3/self"
    first = g.check("GET", path, {"authorization": "Bearer " + tok}, m.NOW)
    again = g.check("GET", path, {"authorization": "bearer " + tok}, m.NOW)  # RFC 6750: scheme any case
    assert first.answer is None and again is first
    late = g.check("GET", path, {"authorization": "Bearer " + tok}, m.NOW + 10**6)  # IS-10 RS-19: exp
    assert late.answer is not None and late.answer.status == 401
    denied = g.check("POST", path, {"authorization": "Bearer " + tok}, m.NOW)
    assert denied.answer.status == 403
    for i in range(MAX_ALLOWED_VERDICTS + 5):
        g.check("GET", path + "/%d" % i, {"authorization": "Bearer " + tok}, m.NOW)
    assert len(g._allowed) <= MAX_ALLOWED_VERDICTS
