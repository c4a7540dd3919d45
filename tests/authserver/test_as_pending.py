"""Issue 11 §3: the approval queue cannot be flooded (expiry, per-source cap, initial access tokens pass)."""

import json
import time

import pytest

from as_support import ASThread, as_pki, request_from, server_table  # noqa: F401 (fixtures)
from nmosauth_lite.authserver.registration import issue_initial_access_token
from nmosauth_lite.authserver.service import open_keyring

BODY = json.dumps({"client_name": "node", "scope": "registration", "grant_types": ["client_credentials"]})


@pytest.fixture()
def srv(as_pki, tmp_path):
    table = server_table(as_pki, registration={"max_pending": 3, "max_pending_per_source": 2,
                                               "pending_lifetime": 3600})
    with ASThread(table, str(tmp_path)) as s:
        yield s


def _register(srv, source, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    status, _, body = request_from(srv, "POST", srv.metadata["registration_endpoint"], source, BODY, headers)
    return status, json.loads(body)


def _iat(srv):
    s = srv.store()
    try:
        return issue_initial_access_token(s, open_keyring(srv.config, s), issuer=srv.issuer,
                                          registration_endpoint=srv.metadata["registration_endpoint"],
                                          scope="", ttl=3600, now=time.time())[0]
    finally:
        s.close()


def test_one_address_cannot_fill_the_queue(srv):
    assert [_register(srv, "127.0.0.2")[0] for _ in range(2)] == [201, 201]
    status, err = _register(srv, "127.0.0.2")
    assert status == 400 and "this address" in err["error_description"]
    assert _register(srv, "127.0.0.3")[0] == 201  # another address still can


def test_full_queue_never_blocks_an_initial_access_token(srv):
    for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3"):
        assert _register(srv, source)[0] == 201
    assert _register(srv, "127.0.0.2")[0] == 400  # refused: the queue holds this address's share
    status, body = _register(srv, "127.0.0.2", _iat(srv))
    assert status == 201 and "client_secret" in body
    s = srv.store()
    try:
        assert s.get_client(body["client_id"])["status"] == "active"
    finally:
        s.close()


def test_pending_registrations_expire(srv):
    ids = [_register(srv, src)[1]["client_id"] for src in ("127.0.0.2", "127.0.0.2", "127.0.0.3")]
    assert _register(srv, "127.0.0.2")[0] == 400  # this address's share
    srv.clock.advance(3601)  # registration.pending_lifetime
    try:
        assert _register(srv, "127.0.0.2")[0] == 201  # the old ones are gone, the queue has room again
    finally:
        srv.clock.advance(-3601)
    s = srv.store()
    try:
        assert all(s.get_client(cid) is None for cid in ids)
        assert s.count_pending() == 1
    finally:
        s.close()


def test_default_pending_lifetime_is_a_day_and_housekeeping_drops_them(tmp_path):
    from nmosauth_lite.authserver.config import Config
    from nmosauth_lite.authserver.registration import check_metadata, create_client
    from nmosauth_lite.authserver.store import Store

    cfg = Config({}, state_dir=str(tmp_path))
    assert cfg.pending_lifetime == 86400 and cfg.max_pending_per_source == 10
    store = Store(cfg.db_path)
    try:
        meta = check_metadata(json.loads(BODY), cfg)
        old = create_client(store, meta, 1000, status="pending", actor="x", source="127.0.0.2")["client_id"]
        new = create_client(store, meta, 1000 + 86000, status="pending", actor="x", source="127.0.0.2")["client_id"]
        store.purge(1000 + 86401, pending_before=1000 + 86401 - cfg.pending_lifetime)
        assert store.get_client(old) is None and store.get_client(new) is not None
        assert store.count_pending("127.0.0.2") == 1
    finally:
        store.close()


def test_operator_cannot_approve_a_registration_past_its_lifetime(tmp_path):
    # Between housekeeping runs an expired registration is still in the table: `as client approve`
    # must not bring it back (issue 11 §3, pending registrations expire).
    import subprocess
    import sys

    from nmosauth_lite.authserver.config import Config
    from nmosauth_lite.authserver.registration import check_metadata, create_client
    from nmosauth_lite.authserver.store import Store

    cfg = Config({}, state_dir=str(tmp_path))
    store = Store(cfg.db_path)
    try:
        meta = check_metadata(json.loads(BODY), cfg)
        now = time.time()
        stale = create_client(store, meta, now - cfg.pending_lifetime - 60, status="pending", actor="x",
                              source="127.0.0.2")["client_id"]
        fresh = create_client(store, meta, now - 60, status="pending", actor="x", source="127.0.0.2")["client_id"]
    finally:
        store.close()

    def approve(cid):
        return subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "client", "approve",
                               "--state-dir", str(tmp_path), "--", cid], capture_output=True, text=True, timeout=60)

    r = approve(stale)
    assert r.returncode == 1 and "awaits approval" in r.stderr
    assert approve(fresh).returncode == 0
    store = Store(cfg.db_path)
    try:
        assert store.get_client(stale) is None and store.get_client(fresh)["status"] == "active"
    finally:
        store.close()


def test_full_queue_displaces_the_largest_group_not_a_device_from_elsewhere(srv):
    # issue 23: the oldest registration of the group holding the most makes room
    firsts = [_register(srv, s)[1]["client_id"] for s in ("127.0.0.2", "127.0.0.2", "127.0.0.3")]
    status, body = _register(srv, "127.0.0.4")
    assert status == 201
    s = srv.store()
    try:
        assert s.get_client(firsts[0]) is None  # 127.0.0.2's oldest was dropped
        assert s.get_client(firsts[1])["status"] == "pending" and s.get_client(firsts[2])["status"] == "pending"
        assert s.count_pending() == 3
    finally:
        s.close()


def _device_body(jwk, scope="registration"):
    return json.dumps({"client_name": "device", "scope": scope, "grant_types": ["client_credentials"],
                       "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}})


def _register_body(srv, source, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    status, _, out = request_from(srv, "POST", srv.metadata["registration_endpoint"], source, body, headers)
    return status, json.loads(out)


def test_approved_device_re_registering_with_its_key_never_waits_behind_the_queue(srv):
    # issue 23 (IS-10 AS-21/AS-22): the device registered with an initial access token and its
    # private_key_jwt key; it lost its stored credentials and registers again, unauthenticated,
    # while the queue is full and its own address holds its share
    from cryptography.hazmat.primitives.asymmetric import ec
    from minting import public_jwk

    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "dev-1")
    status, first = _register_body(srv, "127.0.0.2", _device_body(jwk), _iat(srv))
    assert status == 201
    for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3"):
        assert _register(srv, source)[0] == 201
    assert _register(srv, "127.0.0.2")[0] == 400  # the queue holds this address's share
    status, again = _register_body(srv, "127.0.0.2", _device_body(jwk))
    assert status == 201 and again["client_id"] != first["client_id"]
    s = srv.store()
    try:
        assert s.get_client(again["client_id"])["status"] == "active"
        assert s.count_pending() == 3  # it did not take a place in the queue
        # asking for more than the approved client may do is an ordinary, unauthenticated registration
        status, wider = _register_body(srv, "127.0.0.4", _device_body(jwk, "registration events"))
        assert status == 201 and s.get_client(wider["client_id"])["status"] == "pending"
        # a key nobody approved waits like everyone else
        other = public_jwk(ec.generate_private_key(ec.SECP256R1()), "dev-2")
        status, stranger = _register_body(srv, "127.0.0.5", _device_body(other))
        assert status == 201 and s.get_client(stranger["client_id"])["status"] == "pending"
    finally:
        s.close()


def test_a_copied_public_key_cannot_grow_the_client_table(srv):
    from cryptography.hazmat.primitives.asymmetric import ec
    from minting import public_jwk
    from nmosauth_lite.authserver.registration import MAX_CLIENTS_PER_KEY

    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "dev-3")
    assert _register_body(srv, "127.0.0.2", _device_body(jwk), _iat(srv))[0] == 201
    statuses = []
    s = srv.store()
    try:
        for i in range(MAX_CLIENTS_PER_KEY + 2):
            status, out = _register_body(srv, "127.0.0.%d" % (10 + i), _device_body(jwk))
            statuses.append(s.get_client(out["client_id"])["status"] if status == 201 else status)
    finally:
        s.close()
    assert statuses.count("active") == MAX_CLIENTS_PER_KEY - 1  # then the ordinary queue
