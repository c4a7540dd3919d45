"""The authorization server's SQLite store (stdlib sqlite3, WAL mode, one file, 0600).

Tables: clients (with the source address of those awaiting approval, and the audience and
IPMX permissions an operator set for one client, clientaccess.py), authorization codes, refresh tokens and their rotation families, signing keys, users, initial access
tokens, used client-assertion `jti`s, audit.
Bearer secrets (client secrets, codes, refresh and initial access tokens) are kept
as SHA-256 digests only, so a copy of the file cannot be replayed. Multi-row changes
run in `BEGIN IMMEDIATE` transactions: the CLI and the server may share the file.
Leaves out policy: oauth.py decides what a row means.
"""

import contextlib
import hashlib
import json
import logging
import os
import sqlite3

from ..logfield import escape, escape_json

log = logging.getLogger("nmosauth_lite.authserver.audit")

SCHEMA_VERSION = 2  # 2 (issue 21): clients.audience, clients.permissions
BUSY_TIMEOUT_MS = 10000  # the CLI may hold the write lock briefly while the server runs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY, secret_hash TEXT, auth_method TEXT NOT NULL, scope TEXT NOT NULL,
  grant_types TEXT NOT NULL, redirect_uris TEXT NOT NULL, metadata TEXT NOT NULL,
  status TEXT NOT NULL, created_at REAL NOT NULL, approved_by TEXT, audience TEXT, permissions TEXT);
CREATE TABLE IF NOT EXISTS codes (
  code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT, scope TEXT NOT NULL,
  sub TEXT NOT NULL, challenge TEXT, method TEXT, family_id TEXT NOT NULL,
  expires_at REAL NOT NULL, used_at REAL);
CREATE TABLE IF NOT EXISTS families (
  family_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL NOT NULL, revoked_at REAL, reason TEXT);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL REFERENCES families(family_id) ON DELETE CASCADE,
  client_id TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL NOT NULL, rotated_at REAL);
CREATE INDEX IF NOT EXISTS refresh_by_family ON refresh_tokens(family_id);
CREATE TABLE IF NOT EXISTS keys (
  kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_pem TEXT NOT NULL,
  created_at REAL NOT NULL, use_from REAL NOT NULL, withdrawn_at REAL);
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, scope TEXT NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS initial_tokens (
  token_hash TEXT PRIMARY KEY, jti TEXT NOT NULL, scope TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL NOT NULL, revoked_at REAL, uses INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS used_jti (
  client_id TEXT NOT NULL, jti TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (client_id, jti));
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, at REAL NOT NULL, event TEXT NOT NULL, client_id TEXT, actor TEXT,
  detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit(at);
CREATE TABLE IF NOT EXISTS pending_sources (
  client_id TEXT PRIMARY KEY REFERENCES clients(client_id) ON DELETE CASCADE, source TEXT NOT NULL);
"""


def digest(secret):
    """SHA-256 hex of a bearer secret: what the store keeps instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _create_private(path):
    from ..aio.files import ensure_private_dir

    ensure_private_dir(os.path.dirname(os.path.abspath(path)))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # before sqlite creates it with the umask
    os.close(fd)


def _row(r):
    return None if r is None else dict(r)


class Store:
    """One connection, used from one thread (the server's event loop, or a CLI command)."""

    def __init__(self, path):
        _create_private(path)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout=%d" % BUSY_TIMEOUT_MS)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        self.db.execute("PRAGMA foreign_keys=ON")
        # executescript commits any open transaction itself, so the script carries its own.
        self.db.executescript("BEGIN IMMEDIATE;%sINSERT OR IGNORE INTO meta VALUES ('schema', '%d');COMMIT;"
                              % (_SCHEMA, SCHEMA_VERSION))
        v = self.db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()[0]
        if v == "1":
            v = self._migrate_from_1()
        if v != str(SCHEMA_VERSION):
            from ..errors import ConfigError

            raise ConfigError("store %s has schema version %s; this version reads %d" % (path, v, SCHEMA_VERSION))

    def _migrate_from_1(self):
        """Schema 1 -> 2: two nullable columns on clients (NULL: the server's tokens.audience and
        tokens.permissions, as before). In one write transaction, read again inside it: the CLI and
        the server may open an old file at the same moment; only one of them migrates it."""
        with self.transaction():
            v = self.db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()[0]
            if v == "1":
                self.db.execute("ALTER TABLE clients ADD COLUMN audience TEXT")
                self.db.execute("ALTER TABLE clients ADD COLUMN permissions TEXT")
                self.db.execute("UPDATE meta SET v='2' WHERE k='schema'")
                v = "2"
        return v

    def close(self):
        self.db.close()

    @contextlib.contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time across processes."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def data_version(self):
        """Changes whenever another connection (e.g. the CLI) commits (SQLite PRAGMA data_version)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def _one(self, sql, args=()):
        return _row(self.db.execute(sql, args).fetchone())

    def _all(self, sql, args=()):
        return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    # --- clients ------------------------------------------------------------------
    def add_client(self, client_id, *, secret_hash, auth_method, scope, grant_types, redirect_uris,
                   metadata, status, now, approved_by=None, audience=None, permissions=None):
        self.db.execute(
            "INSERT INTO clients (client_id, secret_hash, auth_method, scope, grant_types, redirect_uris, metadata, "
            "status, created_at, approved_by, audience, permissions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (client_id, secret_hash, auth_method, scope, " ".join(grant_types), json.dumps(redirect_uris),
             json.dumps(metadata, sort_keys=True), status, now, approved_by, _json_or_null(audience),
             _json_or_null(permissions)))

    def set_client_access(self, client_id, audience, permissions):
        """Replace one client's own audience list and IPMX permissions (None: the server's); checked
        by the caller (clientaccess.check_client_access). True when the client exists."""
        cur = self.db.execute("UPDATE clients SET audience=?, permissions=? WHERE client_id=?",
                              (_json_or_null(audience), _json_or_null(permissions), client_id))
        return cur.rowcount == 1

    def get_client(self, client_id):
        return _client(self._one("SELECT * FROM clients WHERE client_id=?", (client_id,)))

    def list_clients(self):
        return [_client(r) for r in self._all("SELECT * FROM clients ORDER BY created_at")]

    def count_pending(self, source=None):
        if source is None:
            return self.db.execute("SELECT count(*) FROM clients WHERE status='pending'").fetchone()[0]
        return self.db.execute("SELECT count(*) FROM clients JOIN pending_sources USING (client_id) "
                               "WHERE status='pending' AND source=?", (source,)).fetchone()[0]

    def pending_sources(self):
        """[(client_id, source, created_at)] of the registrations awaiting approval, oldest first."""
        return self.db.execute("SELECT client_id, coalesce(source, '-'), created_at FROM clients "
                               "LEFT JOIN pending_sources USING (client_id) WHERE status='pending' "
                               "ORDER BY created_at, client_id").fetchall()

    def note_pending_source(self, client_id, source):
        """Remember which address sent an unauthenticated registration (per-source cap)."""
        self.db.execute("INSERT OR REPLACE INTO pending_sources VALUES (?,?)", (client_id, source or "-"))

    def expire_pending(self, before):
        """Delete registrations still awaiting approval that arrived before `before`; returns how many."""
        with self.transaction():
            self.db.execute("DELETE FROM pending_sources WHERE client_id IN "
                            "(SELECT client_id FROM clients WHERE status='pending' AND created_at < ?)", (before,))
            return self.db.execute("DELETE FROM clients WHERE status='pending' AND created_at < ?",
                                   (before,)).rowcount

    def approve_client(self, client_id, by):
        cur = self.db.execute("UPDATE clients SET status='active', approved_by=? WHERE client_id=? "
                              "AND status='pending'", (by, client_id))
        self.db.execute("DELETE FROM pending_sources WHERE client_id=?", (client_id,))
        return cur.rowcount == 1

    def remove_client(self, client_id, now):
        """Delete a client and revoke every refresh token family it holds (IS-10 AS-27)."""
        with self.transaction():
            self.db.execute("UPDATE families SET revoked_at=?, reason='client removed' "
                            "WHERE client_id=? AND revoked_at IS NULL", (now, client_id))
            self.db.execute("DELETE FROM codes WHERE client_id=?", (client_id,))
            self.db.execute("DELETE FROM pending_sources WHERE client_id=?", (client_id,))
            cur = self.db.execute("DELETE FROM clients WHERE client_id=?", (client_id,))
            return cur.rowcount == 1

    # --- authorization codes --------------------------------------------------------
    def add_code(self, code_hash, *, client_id, redirect_uri, scope, sub, challenge, method, family_id,
                 expires_at):
        self.db.execute("INSERT INTO codes VALUES (?,?,?,?,?,?,?,?,?,NULL)",
                        (code_hash, client_id, redirect_uri, scope, sub, challenge, method, family_id, expires_at))

    def take_code(self, code_hash, now):
        """Mark a code used. Returns (state, row): ok, unknown, expired or reused (RFC 6749 §4.1.2:
        a second use revokes what the first produced)."""
        with self.transaction():
            row = self._one("SELECT * FROM codes WHERE code_hash=?", (code_hash,))
            if row is None:
                return "unknown", None
            if row["used_at"] is not None:
                self._revoke_family(row["family_id"], now, "authorization code reused")
                return "reused", row
            self.db.execute("UPDATE codes SET used_at=? WHERE code_hash=?", (now, code_hash))
            if row["expires_at"] <= now:
                return "expired", row
            return "ok", row

    # --- refresh tokens -------------------------------------------------------------
    def add_family(self, family_id, *, client_id, sub, now, expires_at):
        self.db.execute("INSERT INTO families VALUES (?,?,?,?,?,NULL,NULL)",
                        (family_id, client_id, sub, now, expires_at))

    def get_family(self, family_id):
        return self._one("SELECT * FROM families WHERE family_id=?", (family_id,))

    def add_refresh(self, token_hash, *, family_id, client_id, sub, scope, now, expires_at):
        self.db.execute("INSERT INTO refresh_tokens VALUES (?,?,?,?,?,?,?,NULL)",
                        (token_hash, family_id, client_id, sub, scope, now, expires_at))

    def find_refresh(self, token_hash):
        return self._one("SELECT r.*, f.revoked_at AS family_revoked_at, f.expires_at AS family_expires_at "
                         "FROM refresh_tokens r JOIN families f USING (family_id) WHERE r.token_hash=?",
                         (token_hash,))

    def rotate_refresh(self, token_hash, client_id, now, new_hash, new_expires_at, requested=None):
        """Use a refresh token once and store its successor, atomically (IS-10 AS-45).

        Returns (state, row): ok, unknown, wrong_client, revoked, expired, bad_scope (the
        `requested` scopes are not all in the token's; nothing changes), or reused (a
        rotated token presented again: the whole family is revoked, RFC 6819 §5.2.2.3).
        The successor keeps the scope of its predecessor (RFC 6749 §6).
        """
        with self.transaction():
            row = self.find_refresh(token_hash)
            if row is None:
                return "unknown", None
            if row["client_id"] != client_id:
                return "wrong_client", row  # IS-10 AS-44
            if row["family_revoked_at"] is not None:
                return "revoked", row
            if row["rotated_at"] is not None:
                self._revoke_family(row["family_id"], now, "rotated refresh token reused")
                return "reused", row
            if row["expires_at"] <= now:
                return "expired", row
            if requested and not set(requested) <= set(row["scope"].split()):
                return "bad_scope", row
            self.db.execute("UPDATE refresh_tokens SET rotated_at=? WHERE token_hash=?", (now, token_hash))
            self.add_refresh(new_hash, family_id=row["family_id"], client_id=client_id, sub=row["sub"],
                             scope=row["scope"], now=now,
                             expires_at=min(new_expires_at, row["family_expires_at"]))  # IS-10 AS-46
            return "ok", row

    def _revoke_family(self, family_id, now, reason):
        cur = self.db.execute("UPDATE families SET revoked_at=?, reason=? WHERE family_id=? AND revoked_at IS NULL",
                              (now, reason, family_id))
        return cur.rowcount == 1

    def revoke_family(self, family_id, now, reason):
        with self.transaction():
            return self._revoke_family(family_id, now, reason)

    def live_refresh_count(self, now):
        return self.db.execute(
            "SELECT count(*) FROM refresh_tokens r JOIN families f USING (family_id) WHERE r.rotated_at IS NULL "
            "AND r.expires_at > ? AND f.revoked_at IS NULL", (now,)).fetchone()[0]

    # --- signing keys ----------------------------------------------------------------
    def add_key(self, kid, alg, private_pem, now, use_from):
        self.db.execute("INSERT INTO keys VALUES (?,?,?,?,?,NULL)", (kid, alg, private_pem, now, use_from))

    def list_keys(self):
        return self._all("SELECT * FROM keys ORDER BY use_from, created_at, rowid")

    def withdraw_key(self, kid, now):
        # A withdrawn key is presumed compromised: its private half is dropped at once.
        return self.db.execute("UPDATE keys SET withdrawn_at=?, private_pem='' WHERE kid=? AND withdrawn_at IS NULL",
                               (now, kid)).rowcount == 1

    def delete_key(self, kid):
        return self.db.execute("DELETE FROM keys WHERE kid=?", (kid,)).rowcount == 1

    # --- users -----------------------------------------------------------------------
    def put_user(self, username, password_hash, scope, now):
        self.db.execute("INSERT OR REPLACE INTO users VALUES (?,?,?,?)", (username, password_hash, scope, now))

    def get_user(self, username):
        return self._one("SELECT * FROM users WHERE username=?", (username,))

    def list_users(self):
        return self._all("SELECT username, scope, created_at FROM users ORDER BY username")

    # --- initial access tokens ----------------------------------------------------------
    def add_initial_token(self, token_hash, jti, scope, now, expires_at):
        self.db.execute("INSERT INTO initial_tokens VALUES (?,?,?,?,?,NULL,0)",
                        (token_hash, jti, scope, now, expires_at))

    def use_initial_token(self, token_hash, now):
        """The token's row when it is known, current and not revoked (its use is counted), else None."""
        with self.transaction():
            row = self._one("SELECT * FROM initial_tokens WHERE token_hash=?", (token_hash,))
            if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
                return None
            self.db.execute("UPDATE initial_tokens SET uses=uses+1 WHERE token_hash=?", (token_hash,))
            return row

    # --- single-use client assertion jti (RFC 7523 §3 item 7) ----------------------------
    def use_jti(self, client_id, jti, expires_at):
        """True the first time (client_id, jti) is seen; False on a replay."""
        cur = self.db.execute("INSERT OR IGNORE INTO used_jti VALUES (?,?,?)", (client_id, jti, expires_at))
        return cur.rowcount == 1

    # --- audit (IS-10 AS-50) ---------------------------------------------------------------
    def get_meta(self, key):
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return None if row is None else row[0]

    def put_meta(self, key, value):
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def audit(self, event, now, *, client_id=None, actor=None, **detail):
        """Record one event. `detail` must never hold secrets: ids, scopes, reasons only."""
        text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
        self.db.execute("INSERT INTO audit (at, event, client_id, actor, detail) VALUES (?,?,?,?,?)",
                        (now, event, client_id, actor, text))
        # Client-chosen values (user names, client ids, names) never forge a log line.
        log.info("audit %s client=%s actor=%s %s", event, escape(client_id), escape(actor), escape_json(text))

    def audit_entries(self, limit=100, event=None):
        if event is None:
            rows = self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._all("SELECT * FROM audit WHERE event=? ORDER BY id DESC LIMIT ?", (event, limit))
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    # --- housekeeping ------------------------------------------------------------------------
    def purge(self, now, audit_before=None, pending_before=None):
        """Drop what can no longer matter: expired codes, jtis, refresh families, old audit rows,
        registrations that waited for approval since before `pending_before`."""
        with self.transaction():
            if pending_before is not None:
                self.expire_pending(pending_before)
            self.db.execute("DELETE FROM codes WHERE expires_at < ?", (now - 3600,))
            self.db.execute("DELETE FROM used_jti WHERE expires_at < ?", (now,))
            self.db.execute("DELETE FROM families WHERE expires_at < ?", (now,))
            self.db.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now,))
            self.db.execute("DELETE FROM initial_tokens WHERE expires_at < ?", (now - 86400,))
            if audit_before is not None:
                self.db.execute("DELETE FROM audit WHERE at < ?", (audit_before,))


def _json_or_null(value):
    return None if value is None else json.dumps(value, sort_keys=True)


def _client(row):
    if row is None:
        return None
    row["grant_types"] = row["grant_types"].split()
    row["redirect_uris"] = json.loads(row["redirect_uris"])
    row["metadata"] = json.loads(row["metadata"])
    row["scopes"] = row["scope"].split()
    for k in ("audience", "permissions"):  # NULL: the server's tokens.audience / tokens.permissions
        row[k] = None if row[k] is None else json.loads(row[k])
    return row
