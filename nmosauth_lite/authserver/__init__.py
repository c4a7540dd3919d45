"""The lite IS-10 authorization server: store, signing keys, token claims, OAuth grants, HTTP app.

Runs outside the MicroPython core (ARCHITECTURE.md "Authorization server (lite)"):
plain CPython 3.11 with stdlib sqlite3 and `cryptography` for signing. Modules:
config (TOML settings), store (SQLite, WAL), keys (signing keys and rotation),
tokens (IS-10 claims), users (password hashes), clientauth (RFC 6749 §2.3,
RFC 7523), oauth (grants, revocation), registration (RFC 7591), authorize (the
login and consent page), app (HTTP endpoints), service (`as serve`), zone (DNS-SD records).
"""
