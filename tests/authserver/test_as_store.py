"""The SQLite store: WAL, file modes, refresh rotation and reuse detection, codes, jti, persistence."""

import os
import stat

import pytest

from nmosauth_lite.authserver.store import Store, digest


@pytest.fixture()
def store(tmp_path):
    s = Store(str(tmp_path / "state" / "as.db"))
    yield s
    s.close()


def _family(store, fid="fam", client="client-a", now=1000.0, life=10000.0, token="rt-0"):
    with store.transaction():
        store.add_family(fid, client_id=client, sub="alice", now=now, expires_at=now + life)
        store.add_refresh(digest(token), family_id=fid, client_id=client, sub="alice", scope="query connection",
                          now=now, expires_at=now + 600)


def test_wal_mode_and_private_file(store, tmp_path):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(store.path)).st_mode) == 0o700


def test_secrets_are_stored_as_digests_only(store):
    _family(store, token="the-refresh-token-value")
    dump = "\n".join(store.db.iterdump())
    assert "the-refresh-token-value" not in dump and digest("the-refresh-token-value") in dump


def test_rotation_uses_each_refresh_token_once(store):
    _family(store)
    state, row = store.rotate_refresh(digest("rt-0"), "client-a", 1001, digest("rt-1"), 1601)
    assert state == "ok" and row["scope"] == "query connection"
    assert store.find_refresh(digest("rt-1"))["scope"] == "query connection"  # RFC 6749 §6: same scope
    state, _ = store.rotate_refresh(digest("rt-1"), "client-a", 1002, digest("rt-2"), 1602)
    assert state == "ok"
    assert store.live_refresh_count(1003) == 1


def test_reuse_of_a_rotated_token_revokes_the_family(store):
    _family(store)
    store.rotate_refresh(digest("rt-0"), "client-a", 1001, digest("rt-1"), 1601)
    state, row = store.rotate_refresh(digest("rt-0"), "client-a", 1002, digest("rt-x"), 1602)
    assert state == "reused"
    assert store.get_family("fam")["revoked_at"] == 1002
    # the legitimate successor dies with it (RFC 6819 §5.2.2.3)
    assert store.rotate_refresh(digest("rt-1"), "client-a", 1003, digest("rt-2"), 1603)[0] == "revoked"
    assert store.find_refresh(digest("rt-x")) is None


def test_refresh_token_is_bound_to_its_client(store):
    _family(store)
    assert store.rotate_refresh(digest("rt-0"), "client-b", 1001, digest("rt-1"), 1601)[0] == "wrong_client"
    assert store.rotate_refresh(digest("rt-0"), "client-a", 1001, digest("rt-1"), 1601)[0] == "ok"  # unharmed


def test_scope_may_narrow_but_not_widen(store):
    _family(store)
    assert store.rotate_refresh(digest("rt-0"), "client-a", 1001, digest("rt-1"), 1601, ["node"])[0] == "bad_scope"
    assert store.rotate_refresh(digest("rt-0"), "client-a", 1001, digest("rt-1"), 1601, ["query"])[0] == "ok"


def test_expiry_and_family_cap(store):
    _family(store, life=700)
    assert store.rotate_refresh(digest("rt-0"), "client-a", 1600, digest("rt-1"), 1600 + 600)[0] == "expired"
    _family(store, fid="f2", token="r2-0", life=700)
    store.rotate_refresh(digest("r2-0"), "client-a", 1100, digest("r2-1"), 1100 + 600)
    # IS-10 AS-46: a rotated token never outlives the first token's family
    assert store.find_refresh(digest("r2-1"))["expires_at"] == 1700


def test_unknown_token(store):
    assert store.rotate_refresh(digest("nope"), "client-a", 1, digest("n"), 2) == ("unknown", None)


def test_codes_are_single_use_and_reuse_revokes_their_family(store):
    store.add_code(digest("code"), client_id="c", redirect_uri=None, scope="query", sub="alice", challenge=None,
                   method=None, family_id="fam", expires_at=1060)
    assert store.take_code(digest("code"), 1001)[0] == "ok"
    _family(store, client="c")
    assert store.take_code(digest("code"), 1002)[0] == "reused"
    assert store.get_family("fam")["revoked_at"] == 1002
    store.add_code(digest("old"), client_id="c", redirect_uri=None, scope="query", sub="alice", challenge=None,
                   method=None, family_id="f2", expires_at=1060)
    assert store.take_code(digest("old"), 1060)[0] == "expired"
    assert store.take_code(digest("none"), 1)[0] == "unknown"


def test_jti_single_use_and_purge(store):
    assert store.use_jti("c", "j1", 2000)
    assert not store.use_jti("c", "j1", 2000)
    assert store.use_jti("other", "j1", 2000)
    store.purge(2001)
    assert store.use_jti("c", "j1", 3000)


def test_purge_drops_expired_families(store):
    _family(store, life=100)
    store.purge(1101)
    assert store.get_family("fam") is None and store.find_refresh(digest("rt-0")) is None


def test_data_survives_reopen_and_second_connection_sees_changes(tmp_path):
    path = str(tmp_path / "as.db")
    a = Store(path)
    b = Store(path)
    v = a.data_version()
    _family(b)
    assert a.data_version() != v  # how a running server notices the CLI's changes
    b.close()
    a.close()
    c = Store(path)
    assert c.find_refresh(digest("rt-0"))["client_id"] == "client-a"
    c.close()


def test_audit_records_events_in_order(store):
    store.audit("client.register", 1.5, client_id="c", actor="op", scope="registration")
    store.audit("token.refresh", 2.5, client_id="c", actor="alice", family="f")
    rows = store.audit_entries()
    assert [r["event"] for r in rows] == ["token.refresh", "client.register"]
    assert rows[0]["detail"] == {"family": "f"} and rows[1]["at"] == 1.5


def test_credentials_never_start_with_a_dash():
    # `--client-secret -3aN...` would be read as an option by every CLI (a 1-in-64 flake once).
    from nmosauth_lite.authserver.protocol import credential

    values = [credential(24) for _ in range(2000)]
    assert all(v[0] != "-" for v in values) and len(set(values)) == 2000
    assert all(len(credential(32)) == 43 for _ in range(10))
