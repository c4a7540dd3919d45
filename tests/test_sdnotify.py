"""sd_notify readiness against a real AF_UNIX datagram socket (what systemd listens on)."""

import os
import socket
import struct
import subprocess
import sys

import pytest

from nmosauth_lite.aio.sdnotify import MAX_MESSAGE, notify

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def listener(tmp_path):
    """A datagram socket bound to a file path, as systemd binds /run/systemd/notify."""
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    yield path, s
    s.close()


def test_sends_ready_to_a_path_socket(listener):
    path, s = listener
    assert notify("READY=1", {"NOTIFY_SOCKET": path}) is True
    assert s.recv(MAX_MESSAGE) == b"READY=1"


def test_abstract_socket_name_starting_with_at():
    name = "nmosauth-lite-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("\0" + name)
        s.settimeout(5)
        assert notify("STOPPING=1\nSTATUS=bye", {"NOTIFY_SOCKET": "@" + name}) is True
        assert s.recv(MAX_MESSAGE) == b"STOPPING=1\nSTATUS=bye"
    finally:
        s.close()


def test_no_op_without_notify_socket():
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": ""}) is False


def test_never_raises_when_nobody_listens(tmp_path):
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}) is False  # not spoken: ignored
    assert notify("X" * (MAX_MESSAGE + 1), {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_child_process_reads_the_environment_and_is_the_sender(listener):
    # systemd (NotifyAccess=main) accepts READY=1 only from the main PID: check the kernel's
    # SCM_CREDENTIALS on the datagram name the process that called notify().
    path, s = listener
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    env = dict(os.environ, NOTIFY_SOCKET=path, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, "-c",
                          "import sys; from nmosauth_lite.aio.sdnotify import notify; "
                          "sys.exit(0 if notify('READY=1') else 3)"], env=env)
    try:
        data, anc, _flags, _addr = s.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(12))
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert data == b"READY=1"
    creds = [d for level, kind, d in anc if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS]
    assert creds and struct.unpack("iII", creds[0][:12])[0] == p.pid
