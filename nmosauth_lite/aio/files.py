"""State directory and crash-safe files (ARCHITECTURE.md "Files on a device").

A write is temp file + fsync + rename + directory fsync, so a power cut leaves
either the old file or the new one, never half of one. Directories we create
are 0700 and files 0600: they hold keys, credentials and caches.
"""

import os
import tempfile


def default_state_dir():
    """$STATE_DIRECTORY (systemd), else /var/lib/nmosauth-lite as root, else ~/.local/state/nmosauth-lite."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return env.split(":")[0]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/nmosauth-lite"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "nmosauth-lite")


def ensure_private_dir(path):
    """Create `path` (and parents) with mode 0700 for the last component; return it."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def atomic_write(path, data, mode=0o600):
    """Replace `path` with `data` (bytes) so that readers see the old or the new content only."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)  # make the rename itself durable
    except OSError:
        pass
    finally:
        os.close(dfd)


def read_limited(path, limit):
    """Read at most `limit` bytes; raise ValueError when the file is larger."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError("%s is larger than %d bytes" % (path, limit))
    return data
