"""attach --address-group / `[attach] address_group` (issue 23; the option protect has, from the same
code): attach's Node-side server counts connections per address group (aio.admission.Grouping).
A real attach process on 127.0.0.1 with --max-connections 8 (a share of 4 per group): four silent
connections from 127.0.0.2 take their group's share, so a fifth from 127.0.0.2 is dropped at once;
a Node call from 127.0.0.3 is answered when groups are addresses (/32, the default) and dropped
when they are /24s (127.0.0.3 is then in 127.0.0.2's group). Real sockets, real source addresses;
no authorization server or Registry is needed: the call is one attach answers itself (403)."""

import socket
import subprocess
import sys
import time

import pytest

from attach_support import Attach, env, registry_pki
from dns_helpers import free_port

CALL = b"GET /x-nmos/query/v1.3/nodes HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _args(tmp_path, *extra):
    dead = "https://localhost:%d" % free_port()
    ca = registry_pki(tmp_path / "pki").ca_cert
    return ["--issuer", dead + "/x-nmos/auth/v1.0", "--ca", ca, "--state-dir", tmp_path / "state",
            "--key-file", tmp_path / "keys" / "client.key", "--name", "ACME Encoder-7 SN-1",
            "--listen", "127.0.0.1:0", "--registry", dead, "--startup-timeout", "0",
            "--max-connections", "8", "--head-timeout", "30"] + list(extra)


def _ask(port, source, data=CALL, timeout=10):
    """What attach answers a connection from `source` (b"" when it drops the connection unanswered)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    chunks = []
    try:
        s.sendall(data)
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            chunks.append(piece)
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return b"".join(chunks)


def _hold(port, source, n):
    held = [socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) for _ in range(n)]
    time.sleep(0.3)  # attach admits them (its event loop) before the next connection is looked at
    return held


@pytest.mark.parametrize("how,extra,table,shared", [
    ("default", [], None, False),
    ("flag", ["--address-group", "24"], None, True),
    ("config", [], "address_group = 24", True),
    ("flag over config", ["--address-group", "32"], "address_group = 24", False),
])
def test_address_group_reaches_attachs_server(tmp_path, how, extra, table, shared):
    if table is not None:
        cfg = tmp_path / "config.toml"
        cfg.write_text("[attach]\n%s\n" % table)
        extra = ["--config", cfg] + extra
    a = Attach(tmp_path, "attach-groups", _args(tmp_path, *extra))
    held = []
    try:
        assert _ask(a.port, "127.0.0.3").startswith(b"HTTP/1.1 403 ")  # answered locally, never forwarded
        held = _hold(a.port, "127.0.0.2", 4)
        assert _ask(a.port, "127.0.0.2") == b""  # 127.0.0.2's group holds its share: dropped unanswered
        answer = _ask(a.port, "127.0.0.3")
        if shared:  # /24: 127.0.0.3 counts with 127.0.0.2
            assert answer == b"", (how, answer[:40])
        else:  # /32: 127.0.0.3 is a group of its own
            assert answer.startswith(b"HTTP/1.1 403 "), (how, answer[:40])
    finally:
        for s in held:
            s.close()
        a.stop()


@pytest.mark.parametrize("extra,table,message", [
    (["--address-group", "16"], None, "invalid choice"),
    ([], "address_group = 16", "address_group must be 24 or 32"),
    ([], 'address_group = "24"', "address_group must be int"),
])
def test_a_bad_address_group_is_refused_at_start(tmp_path, extra, table, message):
    if table is not None:
        cfg = tmp_path / "config.toml"
        cfg.write_text("[attach]\n%s\n" % table)
        extra = ["--config", cfg] + extra
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "attach"] + [str(x) for x in _args(tmp_path, *extra)],
                       capture_output=True, text=True, timeout=60, env=env())
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
