"""Property tests (hypothesis) for the parsers a client's bytes reach first.

Each property says which exceptions may escape (only the documented error class) and what
holds of the output. Budgets: each test stays well under ~5 s (max_examples below, no deadline).
"""

import base64
import re
import string

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from minting import Minter, b64, encode_token
from nmosauth_lite import TokenValidator, b64url, claims, jws, permissions
from nmosauth_lite.errors import ClaimError, InvalidRequestError, MalformedTokenError, PermissionDeniedError, TokenError

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
UNRESERVED = ALPHABET[:-2] + "-._~"
HOST = "node1.example.com"
NOW = Minter.NOW
WWW_RE = re.compile(
    r'^Bearer realm="[^"]*"(,error=(invalid_token|insufficient_scope|invalid_request),error_description="[^",]*")?$'
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_STATE = {}


def _minter():
    if "m" not in _STATE:
        _STATE["m"] = Minter()
    return _STATE["m"]


def _validator(backend):
    key = "v-" + backend
    if key not in _STATE:
        _STATE[key] = TokenValidator(jwks=_minter().jwks, audience=[HOST], backend=backend)
    return _STATE[key]


def _valid_tokens():
    if "tokens" not in _STATE:
        m = _minter()
        _STATE["tokens"] = [m.token(alg) for alg in jws.SUPPORTED_ALGORITHMS]
    return _STATE["tokens"]


# JSON values, as a parser would produce them
json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


# --- b64url ---------------------------------------------------------------------------------

def _oracle_canonical(text):
    """Independent strict-base64url oracle (stdlib): decodes to bytes that re-encode to `text`."""
    if any(c not in ALPHABET for c in text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text:
        return None
    return raw


def _decode_or_error(text):
    try:
        return b64url.decode(text)
    except MalformedTokenError:
        return None
    # any other exception escapes and fails the test


@FAST
@given(st.text(max_size=64))
@example("QQ==")
@example("QR")
@example("Q")
@example("+/+/")
@example("AA\n")
@example("\u00e9AAA")
def test_b64url_decode_arbitrary_text_only_raises_malformed(text):
    out = _decode_or_error(text)
    if out is not None:
        assert b64url.encode(out) == text  # one text form per value


@FAST
@given(st.text(alphabet=ALPHABET + "=+/ \n.", max_size=48))
def test_b64url_decode_agrees_with_strict_oracle(text):
    assert _decode_or_error(text) == _oracle_canonical(text)


@FAST
@given(st.binary(max_size=64))
def test_b64url_decode_arbitrary_bytes_only_raises_malformed(data):
    out = _decode_or_error(data)
    if out is not None:
        assert b64url.encode(out) == data.decode("ascii")


@FAST
@given(st.binary(max_size=600))
def test_b64url_round_trip(data):
    text = b64url.encode(data)
    assert set(text) <= set(ALPHABET)
    assert b64url.decode(text) == data
    assert b64url.decode(text.encode()) == data


@FAST
@given(st.binary(min_size=1, max_size=64), st.data())
def test_b64url_one_character_changed_is_another_value_or_an_error(data, draw):
    text = b64url.encode(data)
    i = draw.draw(st.integers(0, len(text) - 1))
    c = draw.draw(st.characters())
    assume(c != text[i])
    mutated = text[:i] + c + text[i + 1:]
    out = _decode_or_error(mutated)
    assert out != data  # never a second spelling of the same bytes
    assert out == _oracle_canonical(mutated)


# --- jws.parse --------------------------------------------------------------------------------

def _parse_or_error(token, algorithms=jws.DEFAULT_ALGORITHMS):
    try:
        return jws.parse(token, algorithms)
    except TokenError:
        return None


def _check_parsed(p, algorithms=jws.DEFAULT_ALGORITHMS):
    if p is None:
        return
    assert isinstance(p.header, dict) and isinstance(p.claims, dict)
    assert p.alg in algorithms
    assert "crit" not in p.header or p.header["crit"] is None
    assert "b64" not in p.header
    assert p.kid is None or isinstance(p.kid, str)
    assert isinstance(p.signature, bytes) and p.signature


@FAST
@given(st.text(max_size=200))
@example("")
@example("..")
@example("a.b.c")
@example("\u00e9.\u00e9.\u00e9")
def test_jws_parse_arbitrary_text_only_raises_token_errors(text):
    _check_parsed(_parse_or_error(text))


@FAST
@given(st.text(alphabet=ALPHABET + ".=+/ \t", max_size=200))
def test_jws_parse_alphabet_soup_only_raises_token_errors(text):
    _check_parsed(_parse_or_error(text))


@FAST
@given(st.one_of(st.binary(max_size=64), st.none(), st.integers(), st.lists(st.text(max_size=4), max_size=3)))
def test_jws_parse_non_text_is_a_token_error(obj):
    with pytest.raises(TokenError):
        jws.parse(obj)


header_strategy = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "RS512", "ES256", "ES384", "none", "HS256", "", "rs512"]) | json_values,
        "typ": st.sampled_from(["JWT", "at+jwt", "JOSE"]) | json_values,
        "kid": st.sampled_from(["rsa-1", "ec-256"]) | json_values,
        "crit": st.sampled_from([["exp"], [], ["b64"]]) | json_values,
        "b64": json_values,
        "jku": json_values,
        "jwk": json_values,
    },
)


@MEDIUM
@given(header_strategy, json_values, st.binary(max_size=300))
def test_jws_parse_structured_segments_only_raise_token_errors(header, payload, sig):
    import json

    token = b64(json.dumps(header)) + "." + b64(json.dumps(payload)) + "." + b64(sig)
    _check_parsed(_parse_or_error(token))
    _check_parsed(_parse_or_error(token, jws.IS10_STRICT_ALGORITHMS), jws.IS10_STRICT_ALGORITHMS)


mutation = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 10**6), st.characters())


@MEDIUM
@given(st.integers(0, 4), st.lists(mutation, min_size=1, max_size=4))
def test_jws_parse_mutated_valid_token_only_raises_token_errors(which, muts):
    t = _valid_tokens()[which]
    for op, pos, ch in muts:
        i = pos % (len(t) + 1)
        if op == "insert":
            t = t[:i] + ch + t[i:]
        elif op == "delete":
            t = t[:i] + t[i + 1:]
        else:
            t = t[:i] + ch + t[i + 1:]
    _check_parsed(_parse_or_error(t))


@FAST
@given(st.sampled_from(["RS256", "RS384", "ES256", "ES384"]))
def test_jws_header_cache_never_leaks_across_allow_lists(alg):
    # A header admitted under the default list must still be refused under the strict profile.
    t = _valid_tokens()[list(jws.SUPPORTED_ALGORITHMS).index(alg)]
    assert jws.parse(t).alg == alg
    with pytest.raises(TokenError):
        jws.parse(t, jws.IS10_STRICT_ALGORITHMS)
    with pytest.raises(TokenError):
        jws.parse(t, ("RS512",))
    assert jws.parse(t, [alg]).alg == alg


# --- permissions.normalize_path ----------------------------------------------------------------

path_chars = st.sampled_from(list("/./.%2eEfF5cC0?#\\ab-~x") + ["%2e", "%2E", "..", "//", "%2f", "%41", "%25", "x-nmos", "%"])
paths = st.lists(path_chars, max_size=24).map("".join)


def _normalize_or_error(p):
    try:
        return permissions.normalize_path(p)
    except InvalidRequestError:
        return None


def _check_segments(segs):
    assert isinstance(segs, list)
    for s in segs:
        assert isinstance(s, str)
        assert s not in ("", ".", "..")
        assert "/" not in s and "?" not in s and "#" not in s and "\\" not in s
        for m in re.finditer(r"%(..)", s):
            hx = m.group(1)
            assert hx == hx.upper() and chr(int(hx, 16)) not in UNRESERVED + "/\\\x00", s
    again = permissions.normalize_path("/" + "/".join(segs))
    assert again == segs  # idempotent


@FAST
@given(st.text(max_size=80))
@example("/x-nmos/connection/v1.1/single/%2e%2e/bulk")
@example("http://host")
@example("https://a/b/../../../../c")
def test_normalize_path_arbitrary_text(p):
    segs = _normalize_or_error(p)
    if segs is not None:
        _check_segments(segs)


@FAST
@given(paths.map(lambda p: "/" + p))
def test_normalize_path_dot_and_percent_soup(p):
    segs = _normalize_or_error(p)
    if segs is not None:
        _check_segments(segs)


@FAST
@given(st.lists(st.text(alphabet=UNRESERVED, min_size=1, max_size=6).filter(lambda s: s not in (".", "..")), max_size=8),
       st.text(max_size=10))
def test_normalize_path_plain_paths_are_their_segments(segs, query):
    assert permissions.normalize_path("/" + "/".join(segs) + "?" + query) == segs
    assert permissions.normalize_path("/" + "/".join(segs) + "/") == segs


# --- specifier and audience globs against a regex oracle -------------------------------------

def _glob_regex(pattern):
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.S)


@FAST
@given(st.text(alphabet="ab/*.?[]", max_size=10), st.lists(st.text(alphabet="ab.?[]*", min_size=1, max_size=4), min_size=1, max_size=4))
def test_path_specifier_matches_like_an_anchored_regex(spec, rest_segs):
    # IS-10 RS-34: escape everything except '*', '*' -> '.*', full match, case-sensitive.
    assume(not any(s in (".", "..") for s in rest_segs))
    rest = "/".join(rest_segs)
    perms = permissions.Permissions({"x-nmos-a": {"read": [spec]}})
    expected = _glob_regex(spec).fullmatch(rest) is not None
    try:
        perms.check("GET", ["x-nmos", "a", "v1"] + rest_segs)
        got = True
    except PermissionDeniedError:
        got = False
    assert got == expected, (spec, rest)


label = st.text(alphabet="abc-*", min_size=1, max_size=4)
host_names = st.lists(st.text(alphabet="abc-", min_size=1, max_size=4), min_size=1, max_size=4).map(".".join)


@FAST
@given(st.lists(label, min_size=1, max_size=4).map(".".join), host_names)
def test_audience_glob_matches_like_an_anchored_regex(pattern, host):
    hosts = claims.normalize_audience([host])
    expected = _glob_regex(pattern).fullmatch(host) is not None
    assert claims.audience_matches([pattern], hosts) is expected
    assert claims.audience_matches("https://" + pattern.upper() + ".", hosts) is expected


@FAST
@given(json_values)
def test_audience_matches_never_raises_for_aud_that_passes_check_required(aud):
    m = _minter()
    c = m.claims(aud=aud) if aud is not None else m.claims(aud=None)
    try:
        claims.check_required(c)
    except ClaimError:
        return
    hosts = claims.normalize_audience([HOST, "192.0.2.10"])
    assert claims.audience_matches(c["aud"], hosts) in (True, False)


@FAST
@given(st.lists(st.text(max_size=20), max_size=3), st.lists(st.text(max_size=20), max_size=3) | st.text(max_size=20))
def test_audience_with_arbitrary_configuration(configured, aud):
    try:
        hosts = claims.normalize_audience(configured)
    except ValueError:
        return
    assert claims.audience_matches(aud, hosts) in (True, False)


@FAST
@given(host_names, st.sampled_from(["*", "*.b", "1.2.*", "*.*.*.*", "https://*"]))
def test_wildcards_never_match_ip_literals(_, pattern):
    hosts = claims.normalize_audience(["192.0.2.10"])
    assert claims.audience_matches([pattern], hosts) is False
    assert claims.audience_matches(["192.0.2.10"], hosts) is True


# --- TokenValidator.check -------------------------------------------------------------------

def _check_decision(d):
    assert d.status in (200, 400, 401, 403), d
    if d.status == 200:
        assert d.error is None and d.www_authenticate is None
    else:
        m = WWW_RE.match(d.www_authenticate)
        assert m, d.www_authenticate
        assert m.group(2) == d.error
        assert d.error == {400: "invalid_request", 401: m.group(2), 403: "insufficient_scope"}[d.status]
        if d.status == 401:
            assert d.error in (None, "invalid_token")


methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "get", ""]) | st.text(max_size=8)
request_paths = st.sampled_from(["/", "/x-nmos", "/x-nmos/query/v1.3/nodes", "/x-nmos/connection/v1.1/single/x"]) | paths.map(
    lambda p: "/x-nmos/" + p
) | st.text(max_size=40)


@MEDIUM
@given(st.sampled_from(["cryptography", "pure"]), st.text(max_size=120) | st.none(), methods, request_paths)
def test_validator_check_never_raises_on_arbitrary_text(backend, token, method, path):
    _check_decision(_validator(backend).check(token, method, path, NOW))


@MEDIUM
@given(st.sampled_from(["cryptography", "pure"]), st.text(max_size=120), methods, request_paths)
def test_validator_check_header_never_raises_on_arbitrary_text(backend, value, method, path):
    _check_decision(_validator(backend).check_header(value, method, path, NOW))
    _check_decision(_validator(backend).check_header("Bearer " + value, method, path, NOW))


@SLOW
@given(st.sampled_from(["cryptography", "pure"]), st.integers(0, 4), st.lists(mutation, max_size=3), methods, request_paths)
def test_validator_check_never_raises_on_mutated_valid_tokens(backend, which, muts, method, path):
    t = _valid_tokens()[which]
    for op, pos, ch in muts:
        i = pos % (len(t) + 1)
        t = t[:i] + ch + t[i:] if op == "insert" else t[:i] + t[i + 1:] if op == "delete" else t[:i] + ch + t[i + 1:]
    d = _validator(backend).check(t, method, path, NOW)
    _check_decision(d)
    if muts and t not in _valid_tokens():
        assert d.status != 200 or d.reason == "no token needed"  # only public paths/OPTIONS pass a broken token


@SLOW
@given(st.sampled_from(["cryptography", "pure"]), st.sampled_from(["ES256", "ES384", "RS512"]), st.data())
def test_validator_check_never_raises_on_arbitrary_signatures(backend, alg, data):
    # Right-length garbage reaches the backends' verify (r/s = 0, >= n; RSA s >= n, ...).
    size = {"ES256": 64, "ES384": 96, "RS512": 256}[alg]
    sig = data.draw(
        st.binary(min_size=size, max_size=size)
        | st.sampled_from([bytes(size), b"\xff" * size, bytes(size // 2) + b"\xff" * (size // 2)])
        | st.binary(min_size=1, max_size=300)
    )
    h, p, _ = _valid_tokens()[list(jws.SUPPORTED_ALGORITHMS).index(alg)].split(".")
    d = _validator(backend).check(h + "." + p + "." + b64(sig), "GET", "/x-nmos/query/v1.3/nodes", NOW)
    _check_decision(d)
    assert d.status == 401


@SLOW
@given(st.sampled_from(["cryptography", "pure"]), json_values, header_strategy)
def test_validator_check_never_raises_on_signed_arbitrary_claims(backend, payload, header):
    # Validly signed tokens with arbitrary claims sets and headers: every claim check is reached.
    m = _minter()
    h = {"alg": "RS512", "kid": "rsa-1"}
    h.update({k: v for k, v in header.items() if k not in ("alg", "b64", "crit")})
    if isinstance(payload, dict):
        base = m.claims()
        base.update(payload)
        payload = base
    t = encode_token(h, payload, m.rsa, "RS512")
    for path in ("/x-nmos/query/v1.3/nodes", "/x-nmos/query/v1.3", "/x-nmos/" + "a/b/c"):
        _check_decision(_validator(backend).check(t, "GET", path, NOW))


@MEDIUM
@given(st.text(max_size=40), st.text(max_size=30))
def test_www_authenticate_shape_survives_hostile_alg_and_realm(alg, realm):
    # Reasons can echo header text (the alg name) and the realm is configuration: neither may
    # break the RFC 6750 / IS-10 RS-26 header shape (no quotes, no commas in the values).
    import json

    m = _minter()
    v = _validator("cryptography") if not realm else TokenValidator(jwks=m.jwks, audience=[HOST], realm=realm)
    h = b64(json.dumps({"alg": alg}))
    p = b64(json.dumps(m.claims()))
    for token in (None, h + "." + p + ".AAAA", "x" + alg):
        _check_decision(v.check(token, "GET", "/x-nmos/query/v1.3/nodes", NOW))
