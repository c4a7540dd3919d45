"""Users who may approve authorization requests, with salted password hashes.

Hashes are stdlib scrypt (RFC 7914; n=2^14, r=8, p=1, 16-byte salt) written as
`scrypt$n$r$p$salt$hash`; PBKDF2-HMAC-SHA256 (`pbkdf2$iterations$salt$hash`, RFC
8018) is used where OpenSSL lacks scrypt and is always accepted. Comparison is
constant-time. Failed logins are throttled by authorize.py (throttle.Backoff).
"""

import base64
import hashlib
import hmac
import os

SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1  # ~16 MiB, ~50 ms: interactive logins (RFC 7914 §2)
PBKDF2_ITERATIONS = 600000  # OWASP 2023 figure for PBKDF2-HMAC-SHA256
MAX_PASSWORD = 1024
MAX_USERNAME = 128


def _b64(b):
    return base64.b64encode(b).decode("ascii")


def hash_password(password, *, method=None):
    salt = os.urandom(16)
    pw = password.encode("utf-8")
    if method is None:
        method = "scrypt" if hasattr(hashlib, "scrypt") else "pbkdf2"
    if method == "scrypt":
        h = hashlib.scrypt(pw, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
        return "scrypt$%d$%d$%d$%s$%s" % (SCRYPT_N, SCRYPT_R, SCRYPT_P, _b64(salt), _b64(h))
    h = hashlib.pbkdf2_hmac("sha256", pw, salt, PBKDF2_ITERATIONS)
    return "pbkdf2$%d$%s$%s" % (PBKDF2_ITERATIONS, _b64(salt), _b64(h))


def verify_password(password, stored):
    """True when `password` matches the stored hash; False for anything malformed."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return False
    parts = stored.split("$")
    pw = password.encode("utf-8")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            if n > 1 << 20 or r > 32 or p > 16:
                return False
            want = base64.b64decode(parts[5])
            got = hashlib.scrypt(pw, salt=base64.b64decode(parts[4]), n=n, r=r, p=p, dklen=len(want),
                                 maxmem=256 * 1024 * 1024)
        elif parts[0] == "pbkdf2" and len(parts) == 4:
            want = base64.b64decode(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", pw, base64.b64decode(parts[2]), int(parts[1]))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def check_username(name):
    if not name or len(name) > MAX_USERNAME or any(c <= " " or c == "\x7f" for c in name):
        raise ValueError("user names are 1..%d printable characters without spaces" % MAX_USERNAME)
    return name
