"""What a Raspberry Pi OS bookworm user runs, checked inside the arm64 lane's Debian root (issue 18):
Debian's own python3 (3.11) with apt's python3-cryptography and python3-ecdsa, on arm64 through
qemu-user. `make test-arm64` (tools/arm/lane.sh) runs this file there with NMOSAUTH_DEVICE_LANE
set; everywhere else it is skipped, because the install test changes the system it runs on (users,
/etc, /usr/local): inside the lane that is a throwaway overlay. Correctness only: emulated timings
mean nothing, so no test here measures time."""

import json
import os
import platform
import pwd
import stat
import subprocess
import sys

import pytest

LANE = os.environ.get("NMOSAUTH_DEVICE_LANE")
pytestmark = pytest.mark.skipif(not LANE, reason="runs in the arm64 lane's Debian root (make test-arm64)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "nmosauth_lite", "data")
BUNDLE = os.path.join(ROOT, "dist", "nmosauth-lite.pyz")
MACHINES = {"arm64": "aarch64", "armhf": "armv7l"}
EMULATED = 600  # seconds: generous bound for one command under qemu-user on a loaded machine


def _example_args(*extra):
    # the IS-10 specification's own example token, offline (what `make example` runs)
    return ["verify", "--jwks", os.path.join(DATA, "is10-example-jwks.json"), "--audience", "node1.example.com",
            "--now", "1548779500", "--path", "/x-nmos/connection/v1.1/single/senders", "--token", "-", *extra]


def _token():
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        return f.read()


def _run(argv, **kw):
    kw.setdefault("input", None)
    return subprocess.run(argv, capture_output=True, text=True, timeout=EMULATED, **kw)


def test_this_is_debian_python_on_the_lane_cpu_with_apt_cryptography():
    import cryptography

    assert platform.machine() == MACHINES[LANE]
    assert sys.executable == "/usr/bin/python3" and sys.version_info[:2] == (3, 11)
    assert cryptography.__file__.startswith("/usr/lib/python3/dist-packages/")  # apt's, not PyPI's


@pytest.mark.parametrize("backend", ["cryptography", "pure"])
def test_verify_accepts_the_is10_example_token_on_each_backend(backend):
    r = _run([sys.executable, "-m", "nmosauth_lite", *_example_args("--backend", backend)], input=_token())
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == 200


def test_the_firmware_bundle_runs_on_a_python_without_cryptography(tmp_path):
    # python3 -S: no site-packages, so neither apt's cryptography nor ecdsa (the bundle vendors ecdsa)
    probe = _run([sys.executable, "-S", "-c", "import cryptography"])
    assert probe.returncode != 0 and "No module named 'cryptography'" in probe.stderr
    r = _run([sys.executable, "-S", BUNDLE, *_example_args()], input=_token())
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == 200
    d = _run([sys.executable, "-S", BUNDLE, "doctor", "--json", "--state-dir", str(tmp_path)])
    doc = json.loads(d.stdout)
    assert doc["python"]["bundle"] is True and doc["python"]["machine"] == MACHINES[LANE]
    assert doc["backends"]["auto"] == "pure" and not doc["backends"]["cryptography"]["available"]
    assert doc["backends"]["pure"]["rs512"] and doc["backends"]["pure"]["es256"]  # vendored ecdsa


def test_demo_runs_end_to_end_and_exits_0(tmp_path):
    # emulated ARM runs many times slower than a Pi: the demo's clients get a minute per network wait
    r = _run([sys.executable, "-m", "nmosauth_lite", "demo", "--state-dir", str(tmp_path), "--timeout", "60"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout and " 0 failed" in r.stdout


def _make_tls(tmp_path):
    cert, key = tmp_path / "node.pem", tmp_path / "node.key"
    r = _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-subj", "/CN=node-1.example.com", "-days", "30", "-keyout", str(key), "-out", str(cert)])
    assert r.returncode == 0, r.stderr
    return str(cert), str(key)


def test_raspberry_pi_install_steps_use_apt_cryptography(tmp_path):
    # board/README.md "Install on Raspberry Pi OS (bookworm)": as root, with protect's TLS files.
    cert, key = _make_tls(tmp_path)
    install = ["sh", os.path.join(ROOT, "board", "install.sh"), "--pyz", BUNDLE,
               "--protect-cert", cert, "--protect-key", key]
    r = _run(install)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "apt-get install" not in r.stdout  # python3-cryptography from apt is there already
    assert "wrote /etc/nmosauth-lite/config.toml" in r.stdout
    for user in ("nmosauth-protect", "nmosauth-as"):
        pwd.getpwnam(user)
    st = os.stat("/etc/nmosauth-lite/tls/protect/node.key")
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
    assert stat.S_IMODE(os.stat("/var/lib/nmosauth-lite-protect").st_mode) == 0o700

    # the installed command, as the service's user: apt's cryptography is the backend it uses
    r = _run(["runuser", "-u", "nmosauth-protect", "--", "nmosauth-lite", "doctor", "--json",
              "--state-dir", "/var/lib/nmosauth-lite-protect"])
    doc = json.loads(r.stdout)
    assert doc["python"]["bundle"] is True and doc["python"]["executable"] == "/usr/bin/python3"
    assert doc["backends"]["auto"] == "cryptography"
    import cryptography
    assert doc["backends"]["cryptography"]["version"] == cryptography.__version__
    r = _run(["nmosauth-lite", *_example_args()], input=_token())
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == 200, r.stderr

    # idempotent: a second run upgrades in place and keeps the edited configuration
    with open("/etc/nmosauth-lite/config.toml", "a") as f:
        f.write("# edited by the operator\n")
    r = _run(install)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kept /etc/nmosauth-lite/config.toml" in r.stdout
    with open("/etc/nmosauth-lite/config.toml") as f:
        assert f.read().endswith("# edited by the operator\n")
