"""Persisted client registrations, one file per issuer, secrets sealed (IS-10 CL-18).

Layout under the state directory: `oauth-clients/` (0700) holds `<hash of issuer>.json`
(0600) per authorization server the device registered with, and `signing-key.json` (the
private_key_jwt key). Client secrets, registration access tokens and the private key are
sealed with aio.oauth.secretbox under a key file kept elsewhere; the rest (client_id,
names, URIs) is plain so operators can read it. Writes are atomic. A cross-process lock
keeps two processes sharing the directory from registering twice.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import time

from ... import b64url, jsonshim
from ...errors import ConfigError
from ..files import atomic_write, ensure_private_dir, read_limited
from .secretbox import default_key_file, load_key
from .signing import DEFAULT_ALG, ClientKey

log = logging.getLogger("nmosauth_lite.oauth.credentials")

SUBDIR = "oauth-clients"
MAX_RECORD = 256 * 1024
SEALED = ("client_secret", "registration_access_token")
LOCK_POLL = 0.05
LOCK_TIMEOUT = 120.0
RECORD_VERSION = 1


class CredentialStore:
    def __init__(self, state_dir, key_file=None):
        self.state_dir = os.path.abspath(state_dir)
        self.dir = os.path.join(self.state_dir, SUBDIR)
        self.key_file = os.path.abspath(key_file or default_key_file())
        self._box = None

    def _ensure_dir(self):
        ensure_private_dir(self.state_dir)
        ensure_private_dir(self.dir)
        os.chmod(self.dir, 0o700)

    def box(self, create=False):
        if self._box is None:
            self._box = load_key(self.key_file, self.state_dir, create)
        return self._box

    def path_for(self, issuer):
        digest = hashlib.sha256(issuer.encode("utf-8")).digest()
        return os.path.join(self.dir, "client-%s.json" % b64url.encode(digest[:15]))

    # --- registrations ----------------------------------------------------------------
    def load(self, issuer):
        """The stored registration for `issuer` with secrets decrypted, or None."""
        path = self.path_for(issuer)
        try:
            doc = jsonshim.loads(read_limited(path, MAX_RECORD).decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeError) as e:
            raise ConfigError("stored registration %s is unreadable (%s): repair or delete it" % (path, e))
        if not isinstance(doc, dict) or doc.get("issuer") != issuer or not isinstance(doc.get("client_id"), str):
            raise ConfigError("stored registration %s does not belong to %s: repair or delete it" % (path, issuer))
        for name in SEALED:
            sealed = doc.pop(name + "_sealed", None)
            if sealed is not None:
                doc[name] = self.box().open(sealed, issuer + "\n" + name)
        return doc

    def save(self, record):
        issuer = record["issuer"]
        out = {"version": RECORD_VERSION}
        for name, value in record.items():
            if name in SEALED:
                if value is not None:
                    out[name + "_sealed"] = self.box(create=True).seal(value, issuer + "\n" + name)
            else:
                out[name] = value
        self._ensure_dir()
        atomic_write(self.path_for(issuer), (jsonshim.dumps(out) + "\n").encode("utf-8"), mode=0o600)

    def remove(self, issuer):
        try:
            os.unlink(self.path_for(issuer))
            return True
        except FileNotFoundError:
            return False

    def issuers(self):
        out = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return out
        for name in names:
            if name.startswith("client-") and name.endswith(".json"):
                try:
                    doc = jsonshim.loads(read_limited(os.path.join(self.dir, name), MAX_RECORD).decode("utf-8"))
                    out.append(doc["issuer"])
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        return out

    @staticmethod
    def redacted(record):
        """The record for printing: secrets replaced by a marker (messages never hold secrets)."""
        out = {k: v for k, v in record.items() if k != "version"}
        for name in SEALED:
            if out.get(name) is not None:
                out[name] = "<redacted>"
        return out

    # --- the private_key_jwt signing key ---------------------------------------------------
    def signing_key(self, alg=DEFAULT_ALG, create=True):
        """The device's assertion key (made on first use, sealed at rest)."""
        path = os.path.join(self.dir, "signing-key.json")
        try:
            doc = jsonshim.loads(read_limited(path, MAX_RECORD).decode("utf-8"))
        except FileNotFoundError:
            doc = None
        except (OSError, ValueError, UnicodeError) as e:
            raise ConfigError("stored signing key %s is unreadable: %s" % (path, e))
        if doc is not None:
            if not isinstance(doc, dict) or not isinstance(doc.get("alg"), str):
                raise ConfigError("stored signing key %s is malformed" % path)
            key = ClientKey.from_pem(self.box().open(doc.get("pem_sealed"), "signing-key\n" + doc["alg"]),
                                     doc["alg"])
            if doc["alg"] != alg:
                log.warning("keeping the stored %s signing key (asked for %s)", doc["alg"], alg)
            return key
        if not create:
            return None
        key = ClientKey.generate(alg)
        sealed = self.box(create=True).seal(key.pem(), "signing-key\n" + alg)
        self._ensure_dir()
        atomic_write(path, jsonshim.dumps({"alg": alg, "kid": key.kid, "pem_sealed": sealed,
                                           "created_at": int(time.time())}).encode("utf-8"), mode=0o600)
        return key

    # --- one registration at a time across processes ---------------------------------------
    @contextlib.asynccontextmanager
    async def locked(self):
        self._ensure_dir()
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if loop.time() > deadline:
                        raise ConfigError("another process holds %s for too long" % self.dir)
                    await asyncio.sleep(LOCK_POLL)
            yield self
        finally:
            os.close(fd)  # releases the lock
