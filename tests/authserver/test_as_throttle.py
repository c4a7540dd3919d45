"""Issue 11 §3: login lock-out, client-authentication back-off, side channels, log forging at the AS.

Source addresses are real: requests leave from 127.0.0.1 or 127.0.0.2 and the server keys
its back-offs by the connection's peer address (never X-Forwarded-For).
"""

import json
import logging
import time
import urllib.parse
import uuid

import pytest

from as_flows import CB, parse_form, pkce
from as_support import as_pki, as_server, basic, http, request_from, token_form  # noqa: F401 (fixtures)
from minting import encode_token, public_jwk
from nmosauth_lite.authserver import clientauth

ATTACKER, USER = "127.0.0.2", "127.0.0.1"
FORGED_NAME = "bob\r\nINFO audit authorize.approve client=x actor=admin\x00\x1b[2J\x7f\x85\u2028\u2029\u202e"


@pytest.fixture(scope="module")
def user(as_server):
    return as_server.add_user("carol", "the right password")


@pytest.fixture(scope="module")
def public_client(as_server):
    return as_server.add_client(grants=["authorization_code", "refresh_token"], auth="none",
                                scope="query connection", redirect_uris=[CB])


def _try_login(srv, client, username, password, source):
    _, challenge = pkce()
    q = urllib.parse.urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": CB,
                                "scope": "query", "state": "s", "code_challenge": challenge,
                                "code_challenge_method": "S256"})
    status, _, page = request_from(srv, "GET", srv.metadata["authorization_endpoint"] + "?" + q, source)
    assert status == 200
    form = parse_form(page.decode())
    data = dict(form.inputs, username=username, password=password, action="approve")
    return request_from(srv, "POST", form.action, source, body=data)


def test_attacker_elsewhere_never_locks_a_user_out(as_server, user, public_client):
    """20 wrong passwords for carol from 127.0.0.2; carol from 127.0.0.1 signs in at once."""
    with as_server.clock.stopped():  # the count below must not depend on how fast this machine answers
        statuses = [_try_login(as_server, public_client, user[0], "wrong", ATTACKER)[0] for _ in range(20)]
    assert statuses[:3] == [200, 200, 200]  # the form again, "wrong password"
    assert statuses.count(429) >= 15  # then a growing delay
    status, headers, _ = _try_login(as_server, public_client, user[0], "wrong", ATTACKER)
    assert status == 429 and int(headers["retry-after"]) >= 1
    # the attacker's own source stays throttled even with the right password ...
    assert _try_login(as_server, public_client, *user, ATTACKER)[0] == 429
    # ... but the user from an address that has not failed is never refused (was 429 for all).
    status, headers, _ = _try_login(as_server, public_client, *user, USER)
    assert status == 302 and "code=" in headers["location"]


def test_login_back_off_is_per_user_name_and_source(as_server, user, public_client):
    other = as_server.add_user("dave", "dave's password")
    for _ in range(6):
        _try_login(as_server, public_client, user[0], "wrong", ATTACKER)
    assert _try_login(as_server, public_client, user[0], "wrong", ATTACKER)[0] == 429
    assert _try_login(as_server, public_client, *other, ATTACKER)[0] == 302  # another name from there: fine


def test_forged_user_name_never_forges_a_log_line(as_server, public_client, caplog):
    caplog.set_level(logging.INFO, logger="nmosauth_lite")
    status, _, _ = _try_login(as_server, public_client, FORGED_NAME, "x", USER)
    assert status == 200
    deadline = time.time() + 5
    while not any("authorize.login_failed" in r.getMessage() for r in caplog.records) and time.time() < deadline:
        time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if "audit" in r.getMessage()]
    (line,) = [m for m in lines if "authorize.login_failed" in m]
    for c in "\r\n\x00\x1b\x7f\x85\u2028\u2029\u202e":
        assert c not in line, repr(c)
    assert len(line.splitlines()) == 1 and "actor=bob\\x0d\\x0aINFO audit" in line


# --- client authentication ---------------------------------------------------------------------------
def test_failed_client_authentication_backs_off_per_client_and_source(as_server):
    cc = as_server.add_client()
    url = as_server.metadata["token_endpoint"]
    form = {"grant_type": "client_credentials"}
    wrong = {"Authorization": basic(cc["client_id"], "wrong")}
    right = {"Authorization": basic(cc["client_id"], cc["client_secret"])}
    statuses = [request_from(as_server, "POST", url, ATTACKER, dict(form), wrong)[0] for _ in range(6)]
    # `free` failures, one more that starts the delay, then 429 until it has passed
    assert statuses == [401] * (clientauth.Backoff().free + 1) + [429] * (5 - clientauth.Backoff().free)
    status, headers, body = request_from(as_server, "POST", url, ATTACKER, dict(form), right)
    assert status == 429 and int(headers["retry-after"]) >= 1 and headers["cache-control"] == "no-store"
    err = json.loads(body)
    assert err["error"] == "invalid_client" and "retry after" in err["error_description"]  # RFC 6749 §5.2 shape
    # The client itself, from its own address, is not locked out by someone else's failures.
    assert request_from(as_server, "POST", url, USER, dict(form), right)[0] == 200


def test_one_source_failing_for_many_clients_is_throttled(as_server):
    url = as_server.metadata["token_endpoint"]
    statuses = [request_from(as_server, "POST", url, ATTACKER, {"grant_type": "client_credentials"},
                             {"Authorization": basic("nobody-%d" % i, "x")})[0] for i in range(24)]
    n = clientauth.SOURCE_FREE_FAILURES + 1
    assert statuses == [401] * n + [429] * (24 - n)


class _CountingBackend:
    def __init__(self, inner):
        self.inner = inner
        self.verifies = 0

    def verify(self, *a):
        self.verifies += 1
        return self.inner.verify(*a)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _assertion(srv, cid, priv):
    now = int(time.time())
    return encode_token({"alg": "ES256", "kid": "k1"}, {"iss": cid, "sub": cid, "exp": now + 60, "iat": now,
                        "aud": srv.metadata["token_endpoint"], "jti": str(uuid.uuid4())}, priv)


def test_unknown_client_assertion_costs_a_signature_check_like_a_known_one(as_server, http):
    """No client-id enumeration through private_key_jwt: an unknown client_id is verified against
    a dummy key, so both paths do one signature verification (counted, not timed)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    mine, forger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    client = as_server.add_client(auth="private_key_jwt", jwks={"keys": [public_jwk(mine, "k1", "ES256")]})
    auth = as_server.running.app.authenticator
    counting = _CountingBackend(auth.backend)
    old = auth._backend
    auth._backend = counting
    try:
        counts = []
        for cid in (client["client_id"], "no-such-client-id-0000000000000"):
            before = counting.verifies
            form = {"grant_type": "client_credentials", "client_assertion_type": clientauth.ASSERTION_TYPE,
                    "client_assertion": _assertion(as_server, cid, forger)}
            resp = token_form(http, as_server, form)
            assert resp.status_code == 400 and resp.json()["error"] == "invalid_client"
            counts.append(counting.verifies - before)
    finally:
        auth._backend = old
    assert counts == [1, 1]


def test_unknown_client_id_takes_the_same_secret_check_path(as_server, http, monkeypatch):
    """client_secret_basic: one digest + one constant-time compare for a known client with a
    wrong secret, an unknown client_id, and a client without a secret (dummy hash)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    known = as_server.add_client()
    key = ec.generate_private_key(ec.SECP256R1())
    keyed = as_server.add_client(auth="private_key_jwt", jwks={"keys": [public_jwk(key, "k", "ES256")]})
    calls = []
    real = clientauth.digest
    monkeypatch.setattr(clientauth, "digest", lambda s: calls.append(s) or real(s))
    counts = []
    for cid in (known["client_id"], "unknown-client-id-000000000000", keyed["client_id"]):
        before = len(calls)
        resp = token_form(http, as_server, {"grant_type": "client_credentials"}, basic(cid, "guess"))
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
        counts.append(len(calls) - before)
    assert counts == [1, 1, 1]
