-- The authorization server store as schema version 1 wrote it (nmosauth-lite before issue 21:
-- no clients.audience or clients.permissions), for the migration test (tests/authserver/
-- test_as_clientaccess.py). One client_credentials client whose secret is "old-client-secret"
-- (its SHA-256 below), one audit row. Load with sqlite3 executescript.
BEGIN;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY, secret_hash TEXT, auth_method TEXT NOT NULL, scope TEXT NOT NULL,
  grant_types TEXT NOT NULL, redirect_uris TEXT NOT NULL, metadata TEXT NOT NULL,
  status TEXT NOT NULL, created_at REAL NOT NULL, approved_by TEXT);
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
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO clients VALUES ('old-client-0123456789abcdef',
  '2b04ca36b9ea5b4cf96eabb567e9168a421b0e96931df4d687683118c84a0c2c', 'client_secret_basic', 'node connection', 'client_credentials', '[]',
  '{"client_name": "old controller", "grant_types": ["client_credentials"], "response_types": ["none"], "scope": "node connection", "token_endpoint_auth_method": "client_secret_basic"}',
  'active', 1796000000.0, 'operator');
INSERT INTO audit (at, event, client_id, actor, detail) VALUES (1796000000.0, 'client.register',
  'old-client-0123456789abcdef', 'operator', '{}');
COMMIT;
