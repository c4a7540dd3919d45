"""State directory and crash-safe files (ARCHITECTURE.md "Files on a device").

A write is temp file + fsync + rename + directory fsync, so a power cut leaves
either the old file or the new one, never half of one. Directories we create
are 0700 and files 0600: they hold keys, credentials and caches.
"""

import os
import tempfile

from ..errors import ConfigError

MAX_CONFIG_FILE = 1 << 20
# The tables of one shared device configuration file (board/config.toml.example).
COMPONENTS = ("protect", "authserver", "client", "attach")


def default_state_dir(environ=None, euid=None):
    """$STATE_DIRECTORY (systemd; the first of several), else /var/lib/nmosauth-lite as root,
    else $XDG_STATE_HOME/nmosauth-lite or ~/.local/state/nmosauth-lite."""
    environ = os.environ if environ is None else environ
    env = environ.get("STATE_DIRECTORY")
    if env:
        return env.split(":")[0]
    if (os.geteuid() if euid is None else euid) == 0:
        return "/var/lib/nmosauth-lite"
    base = environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "nmosauth-lite")


def ensure_private_dir(path):
    """Create `path` with mode 0700, and every missing parent 0700 too; return it.

    os.makedirs gives the parents it creates the umask's mode (0755): `<state>/jwks` made
    first would leave the state directory itself open (issue 22 item 8). Existing
    directories are left as they are (doctor reports an open one)."""
    missing = []
    p = os.path.abspath(path)
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
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


def read_config_table(path, section):
    """The `[section]` table of a TOML file, capped at 1 MiB; raises ConfigError.

    A shared device file keeps each component's settings in its own table; a file
    without `[section]` is taken whole, less the other components' tables.
    """
    import tomllib

    try:
        raw = read_limited(path, MAX_CONFIG_FILE)
    except OSError as e:
        raise ConfigError("cannot read config file %s: %s" % (path, e.strerror or e))
    except ValueError:
        raise ConfigError("config file %s is larger than 1 MiB" % path)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("config file %s: %s" % (path, e))
    if section in doc:
        table = doc[section]
    else:
        table = {k: v for k, v in doc.items() if k not in COMPONENTS}
    if not isinstance(table, dict):
        raise ConfigError("config file %s: [%s] must be a table" % (path, section))
    return table


def is_loopback(host):
    """True for localhost and loopback address literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    import ipaddress  # lazily: every command imports this module at start-up

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
