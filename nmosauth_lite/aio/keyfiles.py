"""The key store's files: one JSON document per trusted issuer under `<state_dir>/jwks/`.

What lets a Node validate tokens right after boot with the authorization server down
(IS-10 RS-04). Each file is written atomically (0600, in a 0700 directory), so a power
cut leaves the old document or the new one, never half of either. A corrupt, truncated
or foreign file is ignored and rebuilt by the next fetch; a directory that cannot be
made or written keeps keys in memory only, with one warning. File names are a hash of
the issuer, so no issuer string reaches the file system.
"""

import hashlib
import logging
import os

from .. import jsonshim
from .files import atomic_write, ensure_private_dir, read_limited

log = logging.getLogger("nmosauth_lite.keys")

CACHE_SUBDIR = "jwks"
MAX_JWKS_BYTES = 262144  # a JWK Set of a few RSA keys is < 10 KiB
MAX_FILE_BYTES = 2 * MAX_JWKS_BYTES  # one key set and what is known of its issuer


class KeyFiles:
    """Persisted key sets of one state directory. `dir` is None when there is none to use."""

    def __init__(self, state_dir):
        self.dir = None
        self.read_only = False
        if state_dir is None:
            return
        d = os.path.join(state_dir, CACHE_SUBDIR)
        try:
            ensure_private_dir(d)
        except OSError as e:
            log.warning("key cache directory %s unusable (%s): keys are kept in memory only", d, e)
        if os.path.isdir(d):
            self.dir = d
            if not os.access(d, os.W_OK):
                log.warning("key cache directory %s is read-only: new keys are kept in memory only", d)
                self.read_only = True

    def path(self, iss):
        return os.path.join(self.dir, hashlib.sha256(iss.encode()).hexdigest()[:32] + ".json")

    def load(self, state):
        """Fill `state` (an IssuerKeys) from its file, if there is a good one."""
        if self.dir is None:
            return
        path = self.path(state.issuer)
        try:
            state.load_json(jsonshim.loads(read_limited(path, MAX_FILE_BYTES)))
            log.info("loaded %d persisted keys for %s", len(state.keys), state.issuer)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            # Corrupt, truncated or foreign: ignored, refetched, never fatal.
            log.warning("ignoring key cache file %s: %s", path, e)

    def save(self, state):
        if self.dir is None or self.read_only:
            return
        try:
            atomic_write(self.path(state.issuer), jsonshim.dumps(state.to_json()).encode())
        except OSError as e:
            log.warning("cannot persist keys for %s (%s): keeping them in memory only", state.issuer, e)
            self.read_only = True


def read_persisted(state_dir):
    """Every persisted key cache document under `state_dir` (for `jwks show` and `doctor`)."""
    d = os.path.join(state_dir, CACHE_SUBDIR)
    out = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            doc = jsonshim.loads(read_limited(os.path.join(d, name), MAX_FILE_BYTES))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("format") and isinstance(doc.get("issuer"), str):
            out.append(doc)
    return out
