"""board/install.sh refuses half a TLS pair (issue 22 §2): a certificate without its key (or the
reverse) would install a unit that restart-loops, so nothing is installed and the exit status is 2."""

import os
import subprocess

import pytest

BOARD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "board")


@pytest.mark.parametrize("given,missing", [("--protect-cert", "--protect-key"), ("--protect-key", "--protect-cert"),
                                           ("--as-cert", "--as-key"), ("--as-key", "--as-cert")])
def test_install_refuses_half_a_tls_pair_and_installs_nothing(tmp_path, given, missing):
    pyz = tmp_path / "nmosauth-lite.pyz"
    pyz.write_bytes(b"#!/usr/bin/env python3\nPK-stand-in\n")
    half = tmp_path / "half.pem"
    half.write_text("-----BEGIN CERTIFICATE-----\n")
    root = tmp_path / "stage"
    p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--root", str(root), "--pyz", str(pyz),
                        given, str(half)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert given in p.stderr and missing in p.stderr
    assert not (root / "etc").exists() and not (root / "usr").exists()  # refused before any file was written


def test_install_accepts_whole_pairs(tmp_path):
    pyz = tmp_path / "nmosauth-lite.pyz"
    pyz.write_bytes(b"#!/usr/bin/env python3\nPK-stand-in\n")
    args = []
    for flag in ("--protect-cert", "--protect-key"):
        f = tmp_path / flag.strip("-")
        f.write_text("-----BEGIN X-----\n")
        args += [flag, str(f)]
    root = tmp_path / "stage"
    p = subprocess.run(["sh", os.path.join(BOARD, "install.sh"), "--root", str(root), "--pyz", str(pyz)] + args,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (root / "etc/nmosauth-lite/tls/protect/node.key").exists()
