"""systemd readiness notification (sd_notify(3)) in a few lines of stdlib.

A service unit with Type=notify sets NOTIFY_SOCKET; we send one AF_UNIX datagram
such as b"READY=1" to it. Names starting with '@' are Linux abstract sockets (the
'@' stands for a leading NUL byte). Without NOTIFY_SOCKET (not under systemd)
every call is a no-op. Failures are never fatal: readiness is a courtesy to the
service manager, never a reason to stop serving. Leaves out vsock addresses,
file-descriptor passing (FDSTORE) and the watchdog.
"""

import os
import socket

MAX_MESSAGE = 4096  # our messages are a few short KEY=VALUE lines; a datagram, not a stream


def _address(value):
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace (unix(7))
    if value.startswith("/"):
        return value
    return None  # vsock:... and anything else we do not speak


def notify(state, environ=None):
    """Send `state` (e.g. "READY=1" or "STOPPING=1\\nSTATUS=...") to the service manager.

    Returns True when a datagram was sent, False when there is no manager to tell
    or sending failed.
    """
    env = os.environ if environ is None else environ
    value = env.get("NOTIFY_SOCKET")
    if not value:
        return False
    addr = _address(value)
    data = state.encode("utf-8") if isinstance(state, str) else bytes(state)
    if addr is None or not data or len(data) > MAX_MESSAGE:
        return False
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | getattr(socket, "SOCK_CLOEXEC", 0))
    except OSError:
        return False
    try:
        sock.sendto(data, addr)
        return True
    except OSError:
        return False
    finally:
        sock.close()
