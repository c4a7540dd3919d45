"""Issue 23 at small scale: strangers on many loopback addresses (127.0.x.y) flood the AS's scarce tables
(pending authorizations, the approval queue, sign-ins) and a legitimate user or device is still served.

Addresses are real: each request leaves from its own loopback source address.
"""

import json
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from as_flows import CB, parse_form, pkce
from as_support import ASThread, as_pki, request_from, server_table  # noqa: F401 (fixtures)
from nmosauth_lite.aio.admission import FairTable
from nmosauth_lite.authserver import throttle

ATTACKERS = ["127.0.%d.%d" % (3, i) for i in range(1, 16)]  # 15 addresses
USER_AT = "127.0.9.1"
BODY = json.dumps({"client_name": "node", "scope": "registration", "grant_types": ["client_credentials"]})


@pytest.fixture(scope="module")
def srv(as_pki, tmp_path_factory):
    table = server_table(as_pki, registration={"max_pending": 30, "max_pending_per_source": 4})
    with ASThread(table, str(tmp_path_factory.mktemp("as-flood"))) as s:
        yield s


@pytest.fixture(scope="module")
def client(srv):
    return srv.add_client(grants=["authorization_code"], auth="none", scope="query connection",
                          redirect_uris=[CB])


@pytest.fixture(scope="module")
def user(srv):
    return srv.add_user("dana", "dana's password")


def _authorize_url(srv, client):
    _, challenge = pkce()
    return srv.metadata["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": CB, "scope": "query",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})


def _sign_in(srv, client, username, password, source, page=None):
    if page is None:
        status, _, page = request_from(srv, "GET", _authorize_url(srv, client), source)
        assert status == 200, status
    form = parse_form(page.decode())
    data = dict(form.inputs, username=username, password=password, action="approve")
    return request_from(srv, "POST", form.action, source, body=data)


def _parallel(fn, args, workers=8):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda a: fn(*a), args))


def test_authorize_flood_from_many_addresses_never_blocks_a_user(srv, client, user):
    # IS-10 AS-09 (the authorization endpoint); issue 23 attack 1 at small scale: a 40-entry table
    # (4 per group), 15 addresses x 6 forms each (was: 1,000 forms from one address blocked every user).
    async def shrink():
        srv.running.app.authz._slots = FairTable(40, 4)
    srv.call(shrink())
    url = _authorize_url(srv, client)
    # the user opens the form first, then the flood arrives while they type
    status, _, page = request_from(srv, "GET", url, USER_AT)
    assert status == 200
    statuses = _parallel(lambda src: request_from(srv, "GET", url, src)[0], [(a,) for a in ATTACKERS * 6])
    assert set(statuses) == {200}  # nobody is refused: the flood displaces itself
    status, headers, _ = _sign_in(srv, client, *user, USER_AT, page=page)
    assert status == 302 and "code=" in headers["location"]
    # and a user arriving during the flood gets a form too
    served = [_sign_in(srv, client, *user, "127.0.9.%d" % i)[0] for i in range(2, 12)]
    assert served.count(302) >= 9


def test_registration_flood_from_many_addresses_leaves_room_for_a_new_device(srv):
    # IS-10 AS-21/AS-22 (registrations awaiting approval); issue 23 attack 3: 15 addresses x 4 fill a
    # queue of 30; a device from elsewhere still registers (it displaces the largest group's oldest).
    def register(source):
        return request_from(srv, "POST", srv.metadata["registration_endpoint"], source, BODY,
                            {"Content-Type": "application/json"})[0]
    flood = _parallel(register, [(a,) for a in ATTACKERS * 4])
    assert flood.count(201) >= 30
    devices = [register("127.0.9.%d" % i) for i in range(20, 30)]
    assert devices == [201] * 10  # no refusal because of strangers' traffic
    s = srv.store()
    try:
        assert s.count_pending() == 30  # the ceiling holds
    finally:
        s.close()


def test_password_guessing_from_many_addresses_adds_up_to_one_user_wide_back_off(srv, client, user):
    # RFC 6749 §10.10; issue 23 attack 4: 15 addresses x 4 guesses for one user name. The strangers'
    # failures add up: about USER_FREE_FAILURES + one per fresh address are judged, not 15 x 3.
    async def reset():
        srv.running.app.authz.logins = throttle.LoginPolicy()
        srv.running.app.authz._slots = FairTable(1000, 100)
    srv.call(reset())
    statuses = []
    for _ in range(4):
        statuses += _parallel(lambda a: _sign_in(srv, client, user[0], "guess", a)[0], [(a,) for a in ATTACKERS])
    judged = statuses.count(200)  # the form again: "wrong password"
    assert judged <= throttle.USER_FREE_FAILURES + len(ATTACKERS) + 4, statuses
    assert statuses.count(429) >= len(statuses) - judged
    # the user, from an address of their own, is never refused
    status, headers, _ = _sign_in(srv, client, *user, USER_AT)
    assert status == 302 and "code=" in headers["location"]
    status, headers, _ = _sign_in(srv, client, *user, "127.0.9.99")  # and from a fresh one
    assert status == 302 and "code=" in headers["location"]
