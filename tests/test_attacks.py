"""Attacks on the resource-server decision (issue 2 item 8), each on both crypto backends.

Every case goes through the public API (`TokenValidator.check` / `check_header`) and asserts
the exact status, the exact error code and the exact `WWW-Authenticate` shape of
ARCHITECTURE.md "Errors on the wire" (IS-10 RS-23, RS-24, RS-26), and that `check` never raises
(issue 2 item 4). Tokens are minted by tests/minting.py (pyca/cryptography), never by the code
under test.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import string
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from minting import Minter, b64, encode_token, public_jwk, sign_raw
from nmosauth_lite import TokenValidator, jws
from nmosauth_lite.errors import ConfigError, MalformedTokenError

NOW = Minter.NOW
HOST = "node1.example.com"
PATH = "/x-nmos/query/v1.3/nodes"
CONN = "/x-nmos/connection/v1.1"
ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

# ARCHITECTURE.md "Errors on the wire"; IS-10 RS-26: unquoted error token, no space after the
# comma, no commas in error_description.
WWW_RE = (
    r'^Bearer realm="[^"]*"'
    r'(,error=(invalid_token|insufficient_scope|invalid_request),error_description="[^",]*")?$'
)


# --- helpers ------------------------------------------------------------------------------

def decide(v, token, method="GET", path=PATH, now=NOW):
    """v.check, failing the test (instead of erroring) if it ever raises."""
    try:
        return v.check(token, method, path, now)
    except BaseException as e:  # noqa: B036 - the contract is "never raises", whatever it is
        pytest.fail("check raised %s: %s" % (type(e).__name__, e))


def decide_header(v, value, method="GET", path=PATH, now=NOW):
    try:
        return v.check_header(value, method, path, now)
    except BaseException as e:  # noqa: B036
        pytest.fail("check_header raised %s: %s" % (type(e).__name__, e))


def expect(d, status, error):
    """Exact status, error code and WWW-Authenticate shape."""
    import re

    assert (d.status, d.error) == (status, error), (d.status, d.error, d.reason)
    if status == 200:
        assert d.www_authenticate is None
        return
    m = re.match(WWW_RE, d.www_authenticate or "")
    assert m, d.www_authenticate
    assert m.group(2) == error  # None: the no-credentials form carries no error (RS-23)
    if status in (400, 401):
        assert d.claims is None  # a defective token's claims never reach the caller


def rejected(d):
    expect(d, 401, "invalid_token")


def raw_token(header_json, payload_json, priv, alg):
    """A token whose header and payload are exactly the given JSON texts."""
    h = b64(header_json)
    p = b64(payload_json)
    si = (h + "." + p).encode()
    return h + "." + p + "." + b64(sign_raw(priv, alg, si))


def with_segment(token, index, new):
    parts = token.split(".")
    parts[index] = new
    return ".".join(parts)


def std_b64(data):
    return base64.b64encode(data).decode()


@pytest.fixture
def v(minter, backend_name):
    return TokenValidator(jwks=minter.jwks, audience=[HOST], backend=backend_name)


def test_baseline_every_algorithm_is_accepted(v, minter):
    for alg in jws.SUPPORTED_ALGORITHMS:
        expect(decide(v, minter.token(alg)), 200, None)


# --- alg none / HS* / allow-list (IS-10 RS-12, RFC 8725 §3.1) ---------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "", "rs512", "RS512 ", " RS512", "RS512\u0000", "PS512", "EdDSA"])
def test_rejects_alg_outside_allow_list(v, minter, alg):
    # IS-10 RS-12, RFC 8725 §3.1: `none` and anything not exactly an allowed name is refused.
    h = b64(json.dumps({"alg": alg, "typ": "JWT"}))
    p = b64(json.dumps(minter.claims()))
    rejected(decide(v, h + "." + p + "."))  # unsigned
    rejected(decide(v, h + "." + p + ".AAAA"))
    # ... and even with a genuine RS512 signature over that header.
    rejected(decide(v, raw_token(json.dumps({"alg": alg}), json.dumps(minter.claims()), minter.rsa, "RS512")))


@pytest.mark.parametrize("alg_value", [None, 512, ["RS512"], {"RS512": 1}, True])
def test_rejects_missing_or_non_string_alg(v, minter, alg_value):
    # RFC 7515 §4.1.1: alg is a required string.
    header = {"typ": "JWT"} if alg_value is None else {"alg": alg_value}
    rejected(decide(v, encode_token(header, minter.claims(), minter.rsa, "RS512")))


def _rsa_public_secrets(minter):
    pub = minter.rsa.public_key()
    jwk = minter.jwks["keys"][0]
    return {
        "spki-pem": pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "pkcs1-pem": pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "spki-der": pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        "jwk-n": jwk["n"].encode(),
    }


@pytest.mark.parametrize("alg,digest", [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)])
def test_rejects_hmac_signed_with_the_rsa_public_key(v, minter, alg, digest):
    # The key-confusion attack: IS-10 RS-12, RFC 8725 §2.1/§3.1. The public key is known to all.
    for kid in (True, False):
        for name, secret in _rsa_public_secrets(minter).items():
            header = {"alg": alg, "typ": "JWT"}
            if kid:
                header["kid"] = "rsa-1"
            h = b64(json.dumps(header))
            p = b64(json.dumps(minter.claims()))
            mac = hmac.new(secret, (h + "." + p).encode(), digest).digest()
            rejected(decide(v, h + "." + p + "." + b64(mac)))


@pytest.mark.parametrize("algs", [["HS256"], ["none"], ["RS512", "HS512"], ["RS512", "none"], []])
def test_hmac_and_none_cannot_be_configured(minter, algs):
    # IS-10 RS-12: none and HS* are refused whatever the configuration.
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=[HOST], algorithms=algs)


def test_strict_profile_rejects_verifiable_non_rs512(minter, backend_name):
    # IS-10 TOK-03 / RS-12: outside the allow-list is refused even when the signature verifies.
    v = TokenValidator(jwks=minter.jwks, audience=[HOST], backend=backend_name, algorithms=jws.IS10_STRICT_ALGORITHMS)
    expect(decide(v, minter.token("RS512")), 200, None)
    for alg in ("RS256", "RS384", "ES256", "ES384", "ES512"):
        rejected(decide(v, minter.token(alg)))


# --- alg / key-type mismatch (RFC 7518 §3.1, RFC 8725 §3.1) -----------------------------

def test_rejects_rs512_header_with_ecdsa_signature(v, minter):
    for priv, sign_alg in ((minter.ec256, "ES256"), (minter.ec384, "ES384"), (minter.ec521, "ES512")):
        for kid in ("rsa-1", "ec-256", None):
            header = {"alg": "RS512", "typ": "JWT"}
            if kid:
                header["kid"] = kid
            rejected(decide(v, encode_token(header, minter.claims(), priv, sign_alg)))


def test_rejects_rs512_header_when_only_ec_keys_are_trusted(minter, backend_name):
    v = TokenValidator(jwks={"keys": [public_jwk(minter.ec256, "ec-256")]}, audience=[HOST], backend=backend_name)
    rejected(decide(v, encode_token({"alg": "RS512"}, minter.claims(), minter.ec256, "ES256")))


def test_rejects_es256_header_with_rsa_signature(v, minter):
    for sign_alg in ("RS256", "RS512"):
        for kid in ("ec-256", "rsa-1", None):
            header = {"alg": "ES256", "typ": "JWT"}
            if kid:
                header["kid"] = kid
            rejected(decide(v, encode_token(header, minter.claims(), minter.rsa, sign_alg)))


def test_rejects_es256_header_checked_against_p384_key(minter, backend_name):
    # RFC 7518 §3.4: ES256 is P-256 + SHA-256 only; a P-384 key never verifies it.
    only384 = TokenValidator(jwks={"keys": [public_jwk(minter.ec384, "ec-384")]}, audience=[HOST], backend=backend_name)
    full = TokenValidator(jwks=minter.jwks, audience=[HOST], backend=backend_name)
    t = encode_token({"alg": "ES256", "kid": "ec-384"}, minter.claims(), minter.ec384, "ES256")  # 96-byte R||S
    rejected(decide(only384, t))
    rejected(decide(full, t))
    # ... and the converse: ES384 header signed by the P-256 key.
    t = encode_token({"alg": "ES384", "kid": "ec-256"}, minter.claims(), minter.ec256, "ES384")
    rejected(decide(full, t))


def test_rejects_es512_header_checked_against_another_curve(minter, backend_name):
    # RFC 7518 §3.4: ES512 is P-521 + SHA-512 only; the curve is checked against the alg.
    full = TokenValidator(jwks=minter.jwks, audience=[HOST], backend=backend_name)
    expect(decide(full, minter.token("ES512")), 200, None)
    for kid, priv in (("ec-384", minter.ec384), ("ec-256", minter.ec256)):
        rejected(decide(full, encode_token({"alg": "ES512", "kid": kid}, minter.claims(), priv, "ES512")))
    # ... and a P-521 key never verifies an ES256/ES384 header, whatever the signature's length.
    for alg in ("ES256", "ES384"):
        rejected(decide(full, encode_token({"alg": alg, "kid": "ec-521"}, minter.claims(), minter.ec521, alg)))
        rejected(decide(full, encode_token({"alg": alg, "kid": "ec-521"}, minter.claims(), minter.ec521, "ES512")))


def test_jwk_alg_member_never_crosses_key_types(minter, backend_name):
    """A JWK's `alg` filters the key set at load time (IS-10 RS-11) but, by project decision
    (jwk.PublicKey.fits; shared vector TV-11), does not pin the token's alg within the RSA
    family. Key-type and curve confusion stay refused whatever the member says (RFC 7518 §3.1)."""
    jwks = {"keys": [public_jwk(minter.rsa, "k", alg="RS256"), public_jwk(minter.ec256, "e", alg="ES256")]}
    v = TokenValidator(jwks=jwks, audience=[HOST], backend=backend_name)
    expect(decide(v, minter.token("RS256", kid="k")), 200, None)
    expect(decide(v, minter.token("RS512", kid="k")), 200, None)  # TV-11: same family
    rejected(decide(v, encode_token({"alg": "ES256", "kid": "k"}, minter.claims(), minter.rsa, "RS256")))
    rejected(decide(v, encode_token({"alg": "RS256", "kid": "e"}, minter.claims(), minter.ec256, "ES256")))
    rejected(decide(v, encode_token({"alg": "ES384", "kid": "e"}, minter.claims(), minter.ec256, "ES384")))


# --- kid ----------------------------------------------------------------------------------

def test_rejects_kid_of_trusted_key_when_attacker_signed(v, minter):
    # IS-10 RS-08: no trusted key verifies -> 401.
    for kid in ("rsa-1", "rsa-2", "ec-256", None, "attacker"):
        rejected(decide(v, minter.token("RS512", key=minter.attacker, kid=kid or False)))


def test_accepts_kid_naming_key_a_when_trusted_key_b_signed(v, minter):
    """IS-10 RS-05: try every valid key of the set; a kid may order the attempts but must not
    cut them short. A token whose kid names trusted key A but which trusted key B (same JWK Set,
    same issuer) signed is therefore accepted: B is trusted for this issuer anyway, so nothing
    is gained by an attacker. An unknown kid likewise does not stop the other keys being tried."""
    expect(decide(v, minter.token("RS512", key=minter.rsa2, kid="rsa-1")), 200, None)
    expect(decide(v, minter.token("RS512", key=minter.rsa, kid="rsa-2")), 200, None)
    expect(decide(v, minter.token("RS512", key=minter.rsa2, kid="no-such-kid")), 200, None)
    expect(decide(v, minter.token("RS512", key=minter.rsa2, kid=False)), 200, None)
    expect(decide(v, minter.token("RS512", key=minter.rsa, kid="ec-256")), 200, None)


def test_duplicate_kid_does_not_cut_the_key_search_short(minter, backend_name):
    """IS-10 RS-05: a kid may order the attempts but must not cut them short. RFC 7517 §4.5
    makes distinct kids only a SHOULD, so two RSA keys of one set may share a kid (e.g. an AS
    re-keying under the same id); the token signed by the second one must still verify."""
    jwks = {"keys": [public_jwk(minter.rsa, "dup"), public_jwk(minter.rsa2, "dup")]}
    v = TokenValidator(jwks=jwks, audience=[HOST], backend=backend_name)
    expect(decide(v, minter.token("RS512", key=minter.rsa, kid="dup")), 200, None)
    expect(decide(v, minter.token("RS512", key=minter.rsa2, kid=False)), 200, None)
    expect(decide(v, minter.token("RS512", key=minter.rsa2, kid="other")), 200, None)


def test_second_key_sharing_the_kid_is_tried(minter, backend_name):
    jwks = {"keys": [public_jwk(minter.rsa, "dup"), public_jwk(minter.rsa2, "dup")]}
    v = TokenValidator(jwks=jwks, audience=[HOST], backend=backend_name)
    expect(decide(v, minter.token("RS512", key=minter.rsa2, kid="dup")), 200, None)


@pytest.mark.parametrize("kid", [1, ["rsa-1"], {"k": "rsa-1"}, True])
def test_rejects_non_string_kid(v, minter, kid):
    # RFC 7515 §4.1.4: kid is a string.
    rejected(decide(v, minter.token("RS512", header={"kid": kid})))


# --- embedded keys: jwk / jku / x5u / x5c (IS-10 RS-12, RFC 8725 §3.10) ------------------

def _self_signed_cert(priv):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example.com")])
    t0 = datetime.datetime(2023, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(priv.public_key())
        .serial_number(1)
        .not_valid_before(t0)
        .not_valid_after(t0 + datetime.timedelta(days=3650))
        .sign(priv, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _embedded_headers(minter, priv):
    return {
        "jwk": {"jwk": public_jwk(priv, "rsa-1")},
        "jku": {"jku": "https://attacker.example/jwks.json"},
        "x5u": {"x5u": "https://attacker.example/cert.pem"},
        "x5c": {"x5c": [std_b64(_self_signed_cert(priv))]},
        "all": {
            "jwk": public_jwk(priv),
            "jku": "http://127.0.0.1:1/jwks",
            "x5u": "file:///etc/passwd",
            "x5c": [std_b64(_self_signed_cert(priv))],
        },
    }


_IO_EVENTS = []
_IO_WATCH = [False]
_IO_PREFIXES = ("socket.", "urllib.", "http.", "ssl.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "ftplib.", "smtplib.")


def _audit(event, args):
    if not _IO_WATCH[0]:
        return
    if event == "open" or event.startswith(_IO_PREFIXES):
        _IO_EVENTS.append((event, repr(args)[:120]))
    elif event == "import" and args and str(args[0]).split(".")[0] in ("socket", "_socket", "ssl", "http", "urllib", "asyncio"):
        _IO_EVENTS.append((event, args[0]))


sys.addaudithook(_audit)  # inert unless a test switches _IO_WATCH on


def test_rejects_attacker_key_embedded_in_header_and_does_no_io(v, minter):
    v.backend  # resolve the (lazy) backend before watching
    decide(v, minter.token("ES256"))  # warm the pure backend's lazy `ecdsa` import
    tokens = [
        minter.token("RS512", key=minter.attacker, kid=kid, header=extra)
        for extra in _embedded_headers(minter, minter.attacker).values()
        for kid in ("rsa-1", False, "attacker")
    ]
    del _IO_EVENTS[:]
    _IO_WATCH[0] = True
    try:
        decisions = [decide(v, t) for t in tokens]
    finally:
        _IO_WATCH[0] = False
    for d in decisions:
        rejected(d)
    assert _IO_EVENTS == []  # IS-10 RS-12: never fetch or read a key the token points at


def test_io_watch_is_not_inert():
    # The audit hook above really sees file and socket activity (so an empty log means something).
    import socket

    del _IO_EVENTS[:]
    _IO_WATCH[0] = True
    try:
        open(os.devnull, "rb").close()
        try:
            socket.getaddrinfo("localhost", 1)
        except OSError:
            pass
    finally:
        _IO_WATCH[0] = False
    assert {e for e, _ in _IO_EVENTS} >= {"open", "socket.getaddrinfo"}
    del _IO_EVENTS[:]


def test_embedded_key_headers_are_ignored_on_a_trusted_signature(v, minter):
    # The members are never used (RS-12), but their presence alone is no defect: a token signed
    # by a trusted key is accepted, and nothing is fetched.
    v.backend
    del _IO_EVENTS[:]
    _IO_WATCH[0] = True
    try:
        ds = [decide(v, minter.token("RS512", header=extra)) for extra in _embedded_headers(minter, minter.attacker).values()]
    finally:
        _IO_WATCH[0] = False
    for d in ds:
        expect(d, 200, None)
    assert _IO_EVENTS == []


_NO_IO_SCRIPT = r"""
import json, sys
before = set(sys.modules)
from nmosauth_lite import TokenValidator
data = json.loads(sys.stdin.read())
for b in ("cryptography", "pure"):
    v = TokenValidator(jwks=data["jwks"], audience=["node1.example.com"], backend=b)
    for t in data["bad"]:
        assert v.check(t, "GET", "/x-nmos/query/v1.3/nodes", data["now"]).status == 401
    for t in data["good"]:
        assert v.check(t, "GET", "/x-nmos/query/v1.3/nodes", data["now"]).status == 200
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_fresh_process_imports_no_network_module_for_embedded_key_tokens(minter):
    # The simple check: validating jku/x5u/x5c/jwk tokens never imports a network module.
    hdrs = _embedded_headers(minter, minter.attacker)
    data = {
        "jwks": minter.jwks,
        "now": NOW,
        "bad": [minter.token("RS512", key=minter.attacker, header=h) for h in hdrs.values()],
        "good": [minter.token("RS512", header=h) for h in hdrs.values()] + [minter.token("ES256", header=hdrs["jku"])],
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", _NO_IO_SCRIPT], input=json.dumps(data), capture_output=True, text=True, cwd=root, timeout=60
    )
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout)
    bad = [m for m in new if m.split(".")[0] in ("socket", "_socket", "ssl", "_ssl", "http", "asyncio", "select", "selectors")]
    bad += [m for m in new if m.startswith("urllib.request")]
    assert bad == []


# --- crit / b64 (RFC 7515 §4.1.11, RFC 7797 §6) -------------------------------------------

@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": ["x-custom"], "x-custom": 1},
        {"crit": ["x-custom"]},
        {"crit": ["b64"], "b64": True},
        {"crit": ["b64"], "b64": False},
        {"crit": [1]},
        {"crit": [["b64"]]},
        {"crit": ["alg"]},  # RFC 7515 §4.1.11: must not name a header parameter defined by the RFC
    ],
)
def test_rejects_unknown_crit(v, minter, extra):
    # RFC 7515 §4.1.11: we understand no extension, so any crit entry is unknown. IS-10 RS-12.
    rejected(decide(v, minter.token("RS512", header=extra)))


@pytest.mark.parametrize("crit", [[], "exp", {"exp": 1}, 1, True, ""])
def test_rejects_crit_empty_or_not_a_list(v, minter, crit):
    # RFC 7515 §4.1.11: a non-empty array of names.
    rejected(decide(v, minter.token("RS512", header={"crit": crit})))


def test_rejects_crit_null(v, minter):
    rejected(decide(v, minter.token("RS512", header={"crit": None})))


def test_rejects_kid_null(v, minter):
    rejected(decide(v, minter.token("RS512", header={"kid": None})))


def test_rejects_typ_null(v, minter):
    rejected(decide(v, minter.token("RS512", header={"typ": None})))


@pytest.mark.parametrize("b64_value", [False, True, "false", 0])
def test_rejects_b64_header(v, minter, b64_value):
    # RFC 7797: unencoded payloads change the signing input; not supported, never silently ignored.
    rejected(decide(v, minter.token("RS512", header={"b64": b64_value})))


@pytest.mark.parametrize("typ", ["JOSE", "jwt+at", "", 1, ["JWT"]])
def test_rejects_foreign_typ(v, minter, typ):
    # IS-10 RS-18 accepts JWT, at+jwt or no typ (RFC 7515 §4.1.9 case-insensitive).
    rejected(decide(v, minter.token("RS512", header={"typ": typ})))


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt"])
def test_accepts_jwt_typ_spellings(v, minter, typ):
    expect(decide(v, minter.token("RS512", header={"typ": typ})), 200, None)


# --- signature defects ----------------------------------------------------------------------

@pytest.mark.parametrize("alg,priv", [("ES256", "ec256"), ("ES384", "ec384"), ("ES512", "ec521")])
def test_rejects_der_encoded_ecdsa_signature(v, minter, alg, priv):
    # RFC 7518 §3.4: JWS ECDSA signatures are R || S, never ASN.1 DER.
    key = getattr(minter, priv)
    h = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "ec-" + alg[2:]}))
    p = b64(json.dumps(minter.claims()))
    der = key.sign((h + "." + p).encode(), ec.ECDSA({"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[alg[2:]]()))
    rejected(decide(v, h + "." + p + "." + b64(der)))


@pytest.mark.parametrize("alg", ["RS512", "ES256"])
def test_rejects_tampered_payload(v, minter, alg):
    # RFC 7515 §5.2: the signature covers the payload bytes exactly.
    t = minter.token(alg)
    changes = [
        {"x-nmos-query": {"read": ["*"], "write": ["*"]}},
        {"exp": NOW + 10**6},
        {"aud": ["*"]},
        {"sub": "admin"},
    ]
    for over in changes:
        p = b64(json.dumps(minter.claims(**over)))
        rejected(decide(v, with_segment(t, 1, p)))
    # the same claims, serialised differently (whitespace): still a different payload
    p = b64(json.dumps(minter.claims(), indent=1))
    rejected(decide(v, with_segment(t, 1, p)))


@pytest.mark.parametrize("alg", ["RS512", "ES256"])
def test_rejects_tampered_header(v, minter, alg):
    t = minter.token(alg)
    for header in (
        {"alg": alg, "typ": "JWT"},
        {"alg": alg, "typ": "JWT", "kid": "rsa-2"},
        {"alg": alg, "kid": "ec-256" if alg == "RS512" else "rsa-1", "typ": "JWT"},
        {"alg": "RS256" if alg == "RS512" else "ES384", "typ": "JWT", "kid": "rsa-1"},
        {"alg": alg, "typ": "at+jwt", "kid": "rsa-1" if alg == "RS512" else "ec-256"},
    ):
        rejected(decide(v, with_segment(t, 0, b64(json.dumps(header)))))


@pytest.mark.parametrize("alg", ["RS512", "ES256", "ES384", "ES512"])
def test_rejects_stripped_or_resized_signature(v, minter, alg):
    t = minter.token(alg)
    h, p, s = t.split(".")
    sig = base64.urlsafe_b64decode(s + "==")
    rejected(decide(v, h + "." + p + "."))  # stripped, RFC 7515 §5.2 step 1
    rejected(decide(v, h + "." + p))
    rejected(decide(v, h + "." + p + "." + b64(sig[:-1])))
    rejected(decide(v, h + "." + p + "." + b64(sig + b"\x00")))
    rejected(decide(v, h + "." + p + "." + b64(b"\x00" + sig)))
    rejected(decide(v, h + "." + p + "." + b64(bytes(len(sig)))))
    rejected(decide(v, h + "." + p + "." + b64(b"\xff" * len(sig))))
    flipped = bytearray(sig)
    flipped[len(sig) // 2] ^= 1
    rejected(decide(v, h + "." + p + "." + b64(bytes(flipped))))


def test_rejects_rsa_signature_not_below_modulus(v, minter):
    # RFC 8017 §5.2.2 step 1: s must be < n; s + n is the same residue and must not verify.
    t = minter.token("RS512")
    h, p, s = t.split(".")
    sig = int.from_bytes(base64.urlsafe_b64decode(s + "=="), "big")
    n = minter.rsa.public_key().public_numbers().n
    if sig + n < 1 << 2048:
        rejected(decide(v, h + "." + p + "." + b64((sig + n).to_bytes(256, "big"))))
    rejected(decide(v, h + "." + p + "." + b64(n.to_bytes(256, "big"))))


@pytest.mark.parametrize("alg,priv,size", [("ES256", "ec256", 32), ("ES384", "ec384", 48), ("ES512", "ec521", 66)])
def test_rejects_degenerate_ecdsa_signatures(v, minter, alg, priv, size):
    # r or s = 0 or >= the group order must never verify (Wycheproof's classic edge cases).
    order = {32: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
             48: int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16),
             66: int("01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B889"
                     "9C47AEBB6FB71E91386409", 16)}[size]
    t = minter.token(alg)
    h, p, s = t.split(".")
    sig = base64.urlsafe_b64decode(s + "==")
    r, s_ = sig[:size], sig[size:]
    z = bytes(size)
    nb = order.to_bytes(size, "big")
    for cand in (z + z, r + z, z + s_, nb + s_, r + nb, b"\xff" * 2 * size):
        rejected(decide(v, h + "." + p + "." + b64(cand)))


# --- size caps and nesting (IS-10 TOK-08; RFC 8725 §3.x resource exhaustion) ------------

def _token_of_length(minter, target, alg="RS512"):
    """A validly signed token as close to `target` characters as the encoding allows (<=)."""
    best = None
    lo, hi = 0, target
    while lo <= hi:
        mid = (lo + hi) // 2
        t = minter.token(alg, padding="x" * mid)
        if len(t) <= target:
            best = t
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def test_token_at_size_cap_is_accepted_and_one_over_is_rejected(v, minter):
    t = _token_of_length(minter, jws.MAX_TOKEN_LEN)
    assert jws.MAX_TOKEN_LEN - 4 <= len(t) <= jws.MAX_TOKEN_LEN
    expect(decide(v, t), 200, None)
    big = _token_of_length(minter, jws.MAX_TOKEN_LEN + 8)
    assert len(big) > jws.MAX_TOKEN_LEN
    rejected(decide(v, big))
    rejected(decide(v, minter.token("RS512", padding="x" * 100000)))
    rejected(decide(v, "A" * (jws.MAX_TOKEN_LEN + 1)))
    rejected(decide(v, "a." * 50000 + "a"))


def test_oversize_header_segment_is_rejected(v, minter):
    claims = json.dumps(minter.claims())
    fits = None
    for n in range(1400, 1600):
        hdr = json.dumps({"alg": "RS512", "typ": "JWT", "pad": "x" * n})
        if len(b64(hdr)) <= jws.MAX_HEADER_SEGMENT:
            fits = hdr
        else:
            t = raw_token(hdr, claims, minter.rsa, "RS512")
            rejected(decide(v, t))
            break
    expect(decide(v, raw_token(fits, claims, minter.rsa, "RS512")), 200, None)
    rejected(decide(v, raw_token(json.dumps({"alg": "RS512", "pad": "x" * 100000}), claims, minter.rsa, "RS512")))


def test_oversize_signature_segment_is_rejected(v, minter):
    h, p, s = minter.token("RS512").split(".")
    rejected(decide(v, h + "." + p + "." + "A" * (jws.MAX_SIGNATURE_SEGMENT + 2)))


@pytest.mark.parametrize("depth", [100000, 3000, 1000])
def test_deeply_nested_payload_is_401_not_a_crash(v, minter, depth):
    for inner in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        payload = '{"iss":"%s","deep":%s}' % (Minter.ISS, inner)
        rejected(decide(v, raw_token('{"alg":"RS512","kid":"rsa-1"}', payload, minter.rsa, "RS512")))
        rejected(decide(v, raw_token('{"alg":"RS512","kid":"rsa-1"}', inner, minter.rsa, "RS512")))


@pytest.mark.parametrize("depth", [100000, 1000])
def test_deeply_nested_header_is_401_not_a_crash(v, minter, depth):
    hdr = '{"alg":"RS512","deep":%s}' % ("[" * depth + "]" * depth)
    rejected(decide(v, raw_token(hdr, json.dumps(minter.claims()), minter.rsa, "RS512")))


def test_nested_header_within_the_cap_is_harmless(v, minter):
    hdr = '{"alg":"RS512","deep":%s}' % ("[" * 700 + "]" * 700)
    assert len(b64(hdr)) <= jws.MAX_HEADER_SEGMENT
    rejected(decide(v, b64(hdr) + "." + b64(json.dumps(minter.claims())) + "." + "A" * 342))


def test_jws_parse_survives_100000_nested_arrays_without_the_size_cap(minter, monkeypatch):
    # Defence in depth: even if the size cap were raised, the JSON depth limit turns into a
    # MalformedTokenError, never RecursionError.
    monkeypatch.setattr(jws, "MAX_TOKEN_LEN", 1 << 22)
    inner = "[" * 100000 + "]" * 100000
    for tok in (
        b64('{"alg":"RS512"}') + "." + b64(inner) + ".AAAA",
        b64('{"alg":"RS512"}') + "." + b64('{"a":%s}' % inner) + ".AAAA",
        b64('{"alg":"RS512"}') + "." + b64('{"a":' * 100000 + "1" + "}" * 100000) + ".AAAA",
    ):
        with pytest.raises(MalformedTokenError):
            jws.parse(tok)


@pytest.mark.parametrize("claim", ["aud", "x-nmos-query", "scope", "client_id"])
def test_nested_values_in_typed_claims_are_rejected(v, minter, claim):
    deep = json.loads("[" * 500 + "]" * 500)
    rejected(decide(v, minter.token("RS512", **{claim: deep})))
    rejected(decide(v, minter.token("RS512", **{claim: {"read": deep}})))


# --- base64url strictness (RFC 7515 §2, RFC 4648 §3.5/§5) --------------------------------

def _token_with_partial_quanta(minter, alg="RS512"):
    """A valid token whose three segments all end in a partial base64 quantum (len % 4 in 2, 3)."""
    for k in range(8):
        for j in range(8):
            t = minter.token(alg, header={"x": "y" * k}, jti="j" * (j + 1))
            if all(len(s) % 4 in (2, 3) for s in t.split(".")):
                return t
    raise AssertionError("no token with partial quanta")


def _noncanonical(seg):
    rem = len(seg) % 4
    v = ALPHABET.index(seg[-1])
    mask = 0x0F if rem == 2 else 0x03  # unused low bits of the last sextet
    assert v & mask == 0
    out = seg[:-1] + ALPHABET[v | 1]
    # a lenient decoder (stdlib, non-validating) yields the very same bytes
    assert base64.urlsafe_b64decode(out + "=" * (-len(out) % 4)) == base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))
    return out


@pytest.mark.parametrize("alg", ["RS512", "ES256"])
def test_rejects_non_canonical_last_character(v, minter, alg):
    # RFC 4648 §3.5: non-zero pad bits make a second spelling of the same bytes (malleability).
    t = _token_with_partial_quanta(minter, alg)
    expect(decide(v, t), 200, None)
    for i in range(3):
        rejected(decide(v, with_segment(t, i, _noncanonical(t.split(".")[i]))))


@pytest.mark.parametrize("alg", ["RS512", "ES256"])
def test_rejects_padding(v, minter, alg):
    # RFC 7515 §2: base64url without '=' padding.
    t = _token_with_partial_quanta(minter, alg)
    for i in range(3):
        seg = t.split(".")[i]
        rejected(decide(v, with_segment(t, i, seg + "=" * (-len(seg) % 4))))
        rejected(decide(v, with_segment(t, i, seg + "=")))
    rejected(decide(v, t + "=="))
    rejected(decide(v, t.replace(".", "=.")))


def test_rejects_standard_alphabet(v, minter):
    # RFC 4648 §5: '-' and '_', never '+' and '/'.
    for j in range(200):
        t = minter.token("RS512", jti="std-%d" % j)
        s = t.split(".")[2]
        if "-" in s and "_" in s:
            break
    else:
        raise AssertionError("no signature with both - and _")
    expect(decide(v, t), 200, None)
    rejected(decide(v, with_segment(t, 2, s.replace("-", "+"))))
    rejected(decide(v, with_segment(t, 2, s.replace("_", "/"))))
    rejected(decide(v, with_segment(t, 2, s.replace("-", "+").replace("_", "/"))))
    # header and payload in the standard alphabet
    claims = json.dumps(minter.claims())
    for j in range(64):
        hdr = json.dumps({"alg": "RS512", "kid": "rsa-1", "x": "?>~" * (j + 1)})
        std_h = base64.b64encode(hdr.encode()).decode().rstrip("=")
        if "+" in std_h or "/" in std_h:
            break
    good = raw_token(hdr, claims, minter.rsa, "RS512")
    expect(decide(v, good), 200, None)
    rejected(decide(v, std_h + "." + ".".join(good.split(".")[1:])))


_WS = [" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u00a0", "\u2028", "\u200b", "\x00"]


@pytest.mark.parametrize("ws", _WS, ids=[repr(w) for w in _WS])
def test_rejects_whitespace_inside_the_token(v, minter, ws):
    t = minter.token("RS512")
    h, p, s = t.split(".")
    for cand in (
        ws + t,
        t + ws,
        h[:5] + ws + h[5:] + "." + p + "." + s,
        h + "." + p[:40] + ws + p[40:] + "." + s,
        h + "." + p + "." + s[:100] + ws + s[100:],
        h + ws + "." + p + "." + s,
        h + "." + ws + p + "." + s,
    ):
        rejected(decide(v, cand))


@pytest.mark.parametrize("ch", ["\u00e9", "\u0130", "\uff21", "\ud800", "\udc80", "\U0001f600", "\u0660", "\uff0e"])
def test_rejects_non_ascii_characters(v, minter, ch):
    t = minter.token("RS512")
    h, p, s = t.split(".")
    for cand in (ch + t, t + ch, h + ch + "." + p + "." + s, h + "." + p + ch + "." + s, h + "." + p + "." + s[:-2] + ch + s[-1:]):
        rejected(decide(v, cand))
    # a non-ASCII look-alike in place of a dot (U+FF0E, U+2024)
    rejected(decide(v, t.replace(".", "\u2024", 1)))


def test_rejects_wrong_segment_counts_and_empty_segments(v, minter):
    t = minter.token("RS512")
    h, p, s = t.split(".")
    for cand in (
        h, h + "." + p, h + "." + p + "." + s + "." + s, h + "." + p + "." + s + ".",
        "." + t, h + "." + p + "." + s + ".." , "." , "..", "...", "....",
        "." + p + "." + s, h + ".." + s, h + "." + p + ".", ".." + s,
        h + "." + p + "." + p + "." + s,  # JWE-like 5 segments
        h + "." + p + "." + s + "." + s + "." + s,
    ):
        rejected(decide(v, cand))


def test_empty_string_token_is_treated_as_no_credentials(v):
    # API contract: `token` is None when the request carries none; an empty string is handled the
    # same way (RS-23 no-credentials form: 401 without an error code). check_header("Bearer ")
    # is the way an empty bearer value on the wire is judged (400 invalid_request).
    expect(decide(v, ""), 401, None)
    expect(decide(v, None), 401, None)


# --- time claims (RFC 7519 §4.1.4-6, IS-10 RS-13/RS-14/RS-19) -----------------------------

_BAD_DATES = [float("nan"), float("inf"), float("-inf"), True, False, "1700000600", 10**400, 1e308, -1e308, 1e13, -1e13,
              [NOW + 500], {"v": NOW + 500}, None, ""]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", _BAD_DATES, ids=[repr(x)[:20] for x in _BAD_DATES])
def test_rejects_non_numericdate_time_claims(v, minter, claim, value):
    # RFC 7519 §2 NumericDate: a finite JSON number. Booleans, strings, NaN/Infinity (not even
    # JSON, RFC 8259 §6, but Python's parser reads them) and out-of-range values are refused.
    claims = minter.claims()
    claims[claim] = value  # None stays as JSON null: present but not a number
    rejected(decide(v, minter.token("RS512", claims=claims)))


def test_time_claim_boundaries(v, minter, backend_name):
    expect(decide(v, minter.token("RS512", exp=NOW + 0.5)), 200, None)  # fractional NumericDate
    rejected(decide(v, minter.token("RS512", exp=NOW)))  # now == exp is expired (RFC 7519 §4.1.4)
    rejected(decide(v, minter.token("RS512", iat=NOW + 1)))  # RS-13
    rejected(decide(v, minter.token("RS512", nbf=NOW + 0.001)))  # RS-14
    expect(decide(v, minter.token("RS512", nbf=NOW)), 200, None)
    expect(decide(v, minter.token("RS512", exp=9.99e12)), 200, None)
    expect(decide(v, minter.token("RS512", nbf=-1e12, iat=-1e12)), 200, None)
    rejected(decide(v, minter.token("RS512", exp=-1e12)))
    rejected(decide(v, minter.token("RS512", exp=None)))  # RS-17: exp required
    lv = TokenValidator(jwks=minter.jwks, audience=[HOST], backend=backend_name, leeway=5)
    expect(decide(lv, minter.token("RS512", exp=NOW - 4)), 200, None)  # RS-19
    rejected(decide(lv, minter.token("RS512", exp=NOW - 5)))
    expect(decide(lv, minter.token("RS512", iat=NOW + 5)), 200, None)
    rejected(decide(lv, minter.token("RS512", nbf=NOW + 5.5)))


def test_cached_token_dies_at_exp(v, minter):
    t = minter.token("RS512", exp=NOW + 10)
    expect(decide(v, t), 200, None)
    expect(decide(v, t, now=NOW + 9.9), 200, None)
    rejected(decide(v, t, now=NOW + 10))
    rejected(decide(v, t, now=NOW - 101))  # before iat (iat = NOW - 100)


# --- claim-set JSON shape and types (RFC 7519 §7.2, IS-10 TOK-10, RS-17) ------------------

def _claims_json(minter, *pairs):
    body = json.dumps(minter.claims())[1:-1]
    return "{" + body + "".join(",%s:%s" % (json.dumps(k), json.dumps(val)) for k, val in pairs) + "}"


def test_duplicate_claims_last_one_wins(v, minter):
    """Duplicate member names: RFC 7519 §4 lets a parser reject them or take the last one
    (ECMAScript semantics, RFC 8259 §4); we (Python's json) take the LAST one, consistently for
    the header and the claims set. The signature covers the bytes, so only the issuer can
    produce such a token; the documented choice just has to be stable."""
    hdr = '{"alg":"RS512","kid":"rsa-1"}'
    foreign, ours = ["https://other.example.org"], ["https://node1.example.com"]
    expect(decide(v, raw_token(hdr, _claims_json(minter, ("aud", foreign), ("aud", ours)), minter.rsa, "RS512")), 200, None)
    expect(decide(v, raw_token(hdr, _claims_json(minter, ("aud", ours), ("aud", foreign)), minter.rsa, "RS512")), 403, "insufficient_scope")
    rejected(decide(v, raw_token(hdr, _claims_json(minter, ("exp", NOW + 50), ("exp", NOW - 50)), minter.rsa, "RS512")))
    expect(decide(v, raw_token(hdr, _claims_json(minter, ("exp", NOW - 50), ("exp", NOW + 50)), minter.rsa, "RS512")), 200, None)
    claims = json.dumps(minter.claims())
    expect(decide(v, raw_token('{"alg":"none","alg":"RS512"}', claims, minter.rsa, "RS512")), 200, None)
    rejected(decide(v, raw_token('{"alg":"RS512","alg":"none"}', claims, minter.rsa, "RS512")))
    rejected(decide(v, raw_token('{"alg":"RS512","crit":["x"],"crit":[]}', claims, minter.rsa, "RS512")))


@pytest.mark.parametrize("payload", ["[]", '["iss"]', '"a string"', "1700000600", "true", "null", "", " ", "{", '{"iss":1,}'])
def test_rejects_payload_that_is_not_a_json_object(v, minter, payload):
    # RFC 7519 §7.2 step 10: the claims set is a JSON object.
    rejected(decide(v, raw_token('{"alg":"RS512","kid":"rsa-1"}', payload, minter.rsa, "RS512")))


@pytest.mark.parametrize("header", ["[]", '"RS512"', "null", "", '{"alg":"RS512"', "\ufeff{\"alg\":\"RS512\"}"])
def test_rejects_header_that_is_not_a_json_object(v, minter, header):
    rejected(decide(v, raw_token(header, json.dumps(minter.claims()), minter.rsa, "RS512")))


def test_rejects_payload_that_is_not_utf8(v, minter):
    h = b64('{"alg":"RS512","kid":"rsa-1"}')
    p = b64(b'{"iss":"\xff"}')
    si = (h + "." + p).encode()
    rejected(decide(v, h + "." + p + "." + b64(sign_raw(minter.rsa, "RS512", si))))


_WRONG_TYPES = [
    ("iss", 1), ("iss", ""), ("iss", ["https://auth.example.com"]), ("iss", None), ("iss", True),
    ("sub", 1), ("sub", ""), ("sub", {"id": 1}), ("sub", None), ("sub", False),
    ("aud", 1), ("aud", {"node1.example.com": 1}), ("aud", [1]), ("aud", ["node1.example.com", None]),
    ("aud", None), ("aud", True), ("aud", [["node1.example.com"]]), ("aud", ["x"] * 65),
    ("client_id", 1), ("client_id", ""), ("client_id", ["a"]), ("client_id", None), ("client_id", True),
    ("azp", 1), ("azp", ""), ("azp", ["test-client-0123456789abcdef"]), ("azp", None),
    ("scope", 1), ("scope", ["query"]), ("scope", {"query": True}), ("scope", True),
]


@pytest.mark.parametrize("claim,value", _WRONG_TYPES, ids=["%s=%s" % (c, repr(x)[:16]) for c, x in _WRONG_TYPES])
def test_rejects_claims_of_the_wrong_json_type(v, minter, claim, value):
    # IS-10 TOK-10 / RS-17 and the token schema: wrong JSON types are a token defect (401).
    claims = minter.claims()
    if claim == "azp":
        claims.pop("client_id")  # so that azp is the client identifier
    claims[claim] = value  # a None value is JSON null, present but not of the right type
    rejected(decide(v, minter.token("RS512", claims=claims)))


_BAD_NMOS = [
    ("*", "GET", PATH), (["*"], "GET", PATH), (1, "GET", PATH), (None, "GET", PATH), (True, "GET", PATH),
    ({"read": "*"}, "GET", PATH), ({"read": [1]}, "GET", PATH), ({"read": [None]}, "GET", PATH),
    ({"read": [["*"]]}, "GET", PATH), ({"read": {"*": 1}}, "GET", PATH),
    ({"read": ["*"], "write": {"a": 1}}, "POST", "/x-nmos/query/v1.3/subscriptions"),
    ({"read": ["*"], "write": "subscriptions"}, "POST", "/x-nmos/query/v1.3/subscriptions"),
    ("*", "GET", "/x-nmos/query/v1.3"),  # base path: the claim is still consulted
    ("*", "GET", "/x-nmos/query"),
]


@pytest.mark.parametrize("value,method,path", _BAD_NMOS, ids=["%s %s %s" % (repr(x)[:24], m, p) for x, m, p in _BAD_NMOS])
def test_rejects_malformed_x_nmos_claim_when_consulted(v, minter, value, method, path):
    # IS-10 TOK-22/TOK-26 and the token schema: a permission object of arrays of strings.
    claims = minter.claims()
    claims["x-nmos-query"] = value  # None stays a JSON null
    rejected(decide(v, minter.token("RS512", claims=claims), method, path))


def test_malformed_x_nmos_claim_of_another_api_is_not_consulted(v, minter):
    """Project decision (permissions.Permissions): only the x-nmos-<api> claim a request consults
    is type-checked, so a malformed claim for another API (or another permission) does not
    make the token defective for this request."""
    expect(decide(v, minter.token("RS512", **{"x-nmos-other": "x"})), 200, None)
    expect(decide(v, minter.token("RS512", **{"x-nmos-": 1})), 200, None)
    expect(decide(v, minter.token("RS512", **{"x-nmos-query": {"read": ["*"], "write": {"a": 1}}})), 200, None)
    t = minter.token("RS512", **{"x-nmos-other": "x"})
    rejected(decide(v, t, "GET", "/x-nmos/other/v1.0/x"))
    expect(decide(v, t), 200, None)  # the cached token still serves the API whose claim is fine


@pytest.mark.parametrize("aud", [[], [""], "", ["https://"], ["https://node1.example.com:443"]])
def test_aud_of_the_right_type_that_names_nobody_is_403(v, minter, aud):
    # IS-10 RS-25 / aud-cases AU-17: audience mismatch is 403 insufficient_scope.
    expect(decide(v, minter.token("RS512", aud=aud)), 403, "insufficient_scope")


def test_client_id_and_azp(v, minter):
    # IS-10 §3.2: client_id, else azp; both present must agree (§12 C7); neither is refused.
    expect(decide(v, minter.token("RS512", azp="test-client-0123456789abcdef")), 200, None)
    expect(decide(v, minter.token("RS512", client_id=None, azp="only-azp")), 200, None)
    rejected(decide(v, minter.token("RS512", azp="other-client")))
    rejected(decide(v, minter.token("RS512", client_id="A", azp="a")))
    rejected(decide(v, minter.token("RS512", client_id=None)))


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp"])
def test_rejects_missing_required_claim(v, minter, claim):
    rejected(decide(v, minter.token("RS512", **{claim: None})))  # RS-17


def test_untrusted_issuer(minter, backend_name):
    v = TokenValidator(jwks=minter.jwks, audience=[HOST], issuers=[Minter.ISS], backend=backend_name)
    expect(decide(v, minter.token("RS512")), 200, None)
    for iss in ("https://evil.example.com", Minter.ISS + "/", Minter.ISS.upper(), "http://auth.example.com"):
        rejected(decide(v, minter.token("RS512", iss=iss)))  # IS-10 RS-10


# --- paths (IS-10 RS-31, RS-32; RFC 3986 §5.2.4) -----------------------------------------

def _conn_claims(minter):
    return minter.claims(**{
        "x-nmos-connection": {"read": ["single/*"], "write": ["single/senders/*"]},
        "x-nmos-query": None, "x-nmos-node": None, "x-nmos-registration": None,
        "scope": "connection",
    })


_PATHS = [
    ("GET", CONN + "/single/senders/abc", 200, None),
    ("GET", CONN + "/bulk/senders", 403, "insufficient_scope"),
    # dot segments, literal and percent-encoded (RS-32: judged as `bulk`)
    ("GET", CONN + "/single/../bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/%2e%2e/bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/%2E%2e/bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/.%2e/bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/%2e./bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/senders/../../bulk/senders", 403, "insufficient_scope"),
    ("GET", CONN + "/single/./../bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/%2E/../bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/./bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/single/./senders/x", 200, None),
    ("GET", CONN + "/single/%73enders/x", 200, None),  # %73 = 's', unreserved: decoded
    # repeated slashes collapse
    ("GET", CONN + "//bulk", 403, "insufficient_scope"),
    ("GET", "//x-nmos//connection//v1.1//single//senders", 200, None),
    # writes
    ("POST", CONN + "/single/senders/x/staged", 200, None),
    ("PATCH", CONN + "/single/receivers/x/../../senders/x/staged", 200, None),
    ("PATCH", CONN + "/single/senders/../receivers/x/staged", 403, "insufficient_scope"),
    ("PATCH", CONN + "/single/senders/%2e%2e/receivers/x", 403, "insufficient_scope"),
    ("PATCH", CONN + "/single/senders/x/%2E%2E/%2e%2e/%2e%2E/bulk", 403, "insufficient_scope"),
    # climbing out of the API, and above the root (never above it)
    ("GET", CONN + "/single/../../../query/v1.3/nodes", 403, "insufficient_scope"),
    ("GET", CONN + "/../../../../../../x-nmos/connection/v1.1/bulk", 403, "insufficient_scope"),
    ("GET", CONN + "/../../../../../../x-nmos/connection/v1.1/single/x", 200, None),
    ("GET", CONN + "/../../..", 200, None),  # "/" is public
    ("GET", CONN + "/..", 200, None),  # base path: the claim grants read (TOK-21)
    # encoded slash / backslash / NUL / bad escapes: refused (400 invalid_request)
    ("GET", CONN + "/single/..%2Fbulk", 400, "invalid_request"),
    ("GET", CONN + "/single/..%2fbulk", 400, "invalid_request"),
    ("GET", CONN + "/single%2F..%2F..%2Fbulk", 400, "invalid_request"),
    ("GET", CONN + "/single/..\\bulk", 400, "invalid_request"),
    ("GET", CONN + "/single/..%5Cbulk", 400, "invalid_request"),
    ("GET", CONN + "/single/..%5cbulk", 400, "invalid_request"),
    ("GET", CONN + "/single/%00", 400, "invalid_request"),
    ("GET", CONN + "/single/%zz", 400, "invalid_request"),
    ("GET", CONN + "/single/%2", 400, "invalid_request"),
    ("GET", CONN + "/single/%", 400, "invalid_request"),
    ("GET", CONN + "/single/a b", 400, "invalid_request"),
    ("GET", CONN + "/single/\u00e9", 400, "invalid_request"),
    # query strings and fragments are ignored
    ("GET", CONN + "/bulk?x=/single/senders", 403, "insufficient_scope"),
    ("GET", CONN + "/single/senders/x?path=../../bulk", 200, None),
    ("GET", CONN + "/single/x?%2F..%2F", 200, None),
    ("GET", CONN + "/bulk#/single/x", 403, "insufficient_scope"),
    ("GET", CONN + "/single/x#../../bulk", 200, None),
    ("GET", CONN + "/single/x?a#b", 200, None),
    ("GET", CONN + "/single%3Fx", 403, "insufficient_scope"),  # an encoded '?' is data, not a query
    ("GET", "/x-nmos?access_token=x", 200, None),
]


@pytest.mark.parametrize("method,path,status,error", _PATHS, ids=["%s %s" % (m, p[len(CONN):] if p.startswith(CONN) else p) for m, p, _, _ in _PATHS])
def test_path_traversal_and_normalisation(v, minter, method, path, status, error):
    t = minter.token("RS512", claims=_conn_claims(minter))
    expect(decide(v, t, method, path), status, error)


@pytest.mark.parametrize("path", [CONN + "/bulk//../single/x", CONN + "/bulk/a//../../single/x", CONN + "/bulk//%2e%2e/single/x"])
def test_dot_dot_after_empty_segment_is_not_authorised_as_its_neighbour(v, minter, path):
    # The router may resolve '..' against the empty segment (RFC 3986 §5.2.4 without slash
    # merging) and serve bulk/...; authorising single/x then grants what the token does not
    # (IS-10 RS-32: authorise and route on the same canonical string). Refusing (400) is fine too.
    d = decide(v, minter.token("RS512", claims=_conn_claims(minter)), "GET", path)
    assert d.status in (400, 403), d
    expect(d, d.status, "invalid_request" if d.status == 400 else "insufficient_scope")


@pytest.mark.parametrize("path", [CONN + "/single/../bulk", CONN + "/single/%2e%2e/bulk", CONN + "//bulk", CONN + "/single/x?q"])
def test_traversal_without_a_token_is_401_without_error(v, path):
    expect(decide(v, None, "GET", path), 401, None)


@pytest.mark.parametrize("path", [CONN + "/../..", "/x-nmos/.", "/x-nmos/%2e", "//", "/./x-nmos/", "/x-nmos/a/..?x"])
def test_traversal_to_a_public_path_needs_no_token(v, path):
    expect(decide(v, None, "GET", path), 200, None)
    expect(decide(v, "garbage", "GET", path), 200, None)


@pytest.mark.parametrize("path", [CONN + "/single/..%2Fbulk", CONN + "/a\\b", "/x-nmos/%5C"])
def test_bad_path_encoding_is_400_with_or_without_token(v, minter, path):
    expect(decide(v, None, "GET", path), 400, "invalid_request")
    expect(decide(v, "garbage", "GET", path), 400, "invalid_request")
    expect(decide(v, minter.token("RS512"), "GET", path), 400, "invalid_request")


def test_options_needs_no_token_anywhere(v):
    # IS-10 RS-29 / GEN-04.
    expect(decide(v, None, "OPTIONS", CONN + "/bulk"), 200, None)
    expect(decide(v, "garbage", "OPTIONS", CONN + "/bulk"), 200, None)


# --- Authorization header (RFC 6750 §2.1, IS-10 RS-20) ------------------------------------

def test_authorization_header_forms(v, minter):
    t = minter.token("RS512")
    expect(decide_header(v, "Bearer " + t), 200, None)
    expect(decide_header(v, "bearer " + t), 200, None)
    expect(decide_header(v, "BEARER " + t), 200, None)
    expect(decide_header(v, None), 401, None)
    for empty in ("", "Bearer", "Bearer ", "bearer  ", "   "):
        expect(decide_header(v, empty), 400, "invalid_request")
    for bad in ("Bearer  " + t, "Bearer\t" + t, "Basic dXNlcjpwYXNz", "Bearer " + t + " x", t, "Bearer " + t + "\n"):
        rejected(decide_header(v, bad))


# --- audience (IS-10 RS-15, RS-16, RS-25; aud-cases.json) ---------------------------------

_AUD = [
    # multi-label wildcard (AU-08)
    (["a.b.example.com"], ["*.example.com"], 200),
    (["a.b.example.com"], ["https://*.example.com"], 200),
    (["example.com"], ["*.example.com"], 403),  # AU-07: at least one label in place of *
    # partial label (AU-14: implementation-defined; ours is a glob, so IS-10's own example matches)
    (["node-7.example.com"], ["node-*.example.com"], 200),
    (["node-7.example.com"], ["https://node-*.example.com"], 200),
    ([HOST], ["node-*.example.com"], 403),
    (["node-.example.com"], ["node-*.example.com"], 200),  # '*' is zero or more characters
    # scheme prefixes
    ([HOST], ["https://node1.example.com"], 200),
    ([HOST], ["http://node1.example.com"], 200),
    ([HOST], ["HTTPS://NODE1.EXAMPLE.COM"], 200),
    ([HOST], ["ftp://node1.example.com"], 403),
    ([HOST], ["wss://node1.example.com"], 403),
    ([HOST], ["https:/node1.example.com"], 403),
    ([HOST], ["https://https://node1.example.com"], 403),
    # ports, paths, queries, userinfo never match (AU-12, AU-13: our documented choice)
    ([HOST], ["node1.example.com:8443"], 403),
    ([HOST], ["https://node1.example.com:8443"], 403),
    ([HOST], ["https://*.example.com:8443"], 403),
    ([HOST], ["https://node1.example.com:443"], 403),
    ([HOST], ["https://node1.example.com/x-nmos"], 403),
    ([HOST], ["https://node1.example.com/"], 403),
    ([HOST], ["https://*.example.com/x-nmos"], 403),
    ([HOST], ["https://node1.example.com?x=1"], 403),
    ([HOST], ["https://node1.example.com#f"], 403),
    ([HOST], ["https://evil@node1.example.com"], 403),
    ([HOST], ["https://node1.example.com@evil.net"], 403),
    # case-insensitive host names (AU-11)
    ([HOST], ["NODE1.Example.COM"], 200),
    ([HOST], ["*.EXAMPLE.com"], 200),
    (["NODE1.EXAMPLE.COM"], ["node1.example.com"], 200),
    # one trailing dot, either side (AU-10)
    ([HOST], ["node1.example.com."], 200),
    ([HOST], ["https://*.example.com."], 200),
    (["node1.example.com."], ["https://node1.example.com"], 200),
    ([HOST], ["node1.example.com.."], 403),
    # suffix confusion (AU-19)
    ([HOST], ["node1.example.com.evil.net"], 403),
    ([HOST], ["https://node1.example.com.evil.net"], 403),
    ([HOST], ["*.example.com.evil.net"], 403),
    ([HOST], ["*.com.evil.net"], 403),
    (["node1.example.com.evil.net"], ["node1.example.com"], 403),
    ([HOST], ["example.com"], 403),  # AU-06
    ([HOST], ["com"], 403),
    # prefix confusion (AU-20)
    (["evilnode1.example.com"], ["https://node1.example.com"], 403),
    ([HOST], ["evilnode1.example.com"], 403),
    ([HOST], ["ode1.example.com"], 403),
    ([HOST], ["node1.example.co"], 403),
    ([HOST], ["node1"], 403),
    # IP literals: exact only, never a wildcard (AU-18)
    (["192.0.2.10"], ["192.0.2.10"], 200),
    (["192.0.2.10"], ["https://192.0.2.10"], 200),
    (["192.0.2.10"], ["*"], 403),
    (["192.0.2.10"], ["192.0.2.*"], 403),
    (["192.0.2.10"], ["*.0.2.10"], 403),
    (["192.0.2.10"], ["*.2.10"], 403),
    (["192.0.2.10"], ["192.0.2.1"], 403),
    # bare * (AU-15: implementation-defined; ours: the glob matches every host name, not IPs)
    ([HOST], ["*"], 200),
    ([HOST], ["https://*"], 200),
    ([HOST], ["*."], 200),
    # every entry is tried (AU-09), string form (AU-16), empty (AU-17)
    ([HOST], ["https://other.example.org", "https://node1.example.com"], 200),
    ([HOST], "https://node1.example.com", 200),
    ([HOST], "*.example.com", 200),
    ([HOST], ["https://*.example.org"], 403),  # AU-05
    ([HOST], [], 403),
    # several configured names: any may match
    (["node1.example.com", "192.0.2.10"], ["192.0.2.10"], 200),
    (["192.0.2.10", "node1.example.com"], ["*.example.com"], 200),
]


@pytest.mark.parametrize("configured,aud,status", _AUD, ids=["%s<-%s" % (c[0], a) for c, a, _ in _AUD])
def test_wildcard_audiences(minter, backend_name, configured, aud, status):
    v = TokenValidator(jwks=minter.jwks, audience=configured, backend=backend_name)
    d = decide(v, minter.token("RS512", aud=aud))
    expect(d, status, None if status == 200 else "insufficient_scope")


@pytest.mark.parametrize("configured", [["*.example.com"], ["node1.example.com:8443"], ["https://node1.example.com/x"], [], [""]])
def test_configured_audience_must_be_a_plain_host(minter, configured):
    with pytest.raises(ConfigError):
        TokenValidator(jwks=minter.jwks, audience=configured)
