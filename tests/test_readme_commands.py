"""Every shell command in README.md and the role pages of docs/ works as written (issue 12 §2, issue 22).

Each command of a ```sh block is classified here, explicitly: RUN ones are run by bash in a
temporary directory with HOME and STATE_DIRECTORY redirected there (never the host's
/var/lib), with `nmosauth-lite` on PATH as the README says; LIVE ones need a server, a
network or a key that only a deployment has, and are parsed by the real argparse parser;
MAKE ones are make targets, checked with `make -n`. A README command missing from the table
fails the test: a new command must be classified here.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from nmosauth_lite import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "nmosauth_lite", "data")
SHELL_BLOCKS = ("sh", "shell", "bash", "console")

# command (comments dropped, continuation lines joined, spaces collapsed) -> class
RUN, LIVE, MAKE = "run", "live", "make"
COMMANDS = {
    "make run": MAKE,
    "make test": MAKE,
    # runs against keys.json and $TOKEN prepared below (the IS-10 example): exit 1 = denied, as documented
    "nmosauth-lite verify --jwks keys.json --audience node-1.studio.example.com --method GET "
    "--path /x-nmos/node/v1.3/self --token \"$TOKEN\"": (RUN, {0, 1}),
    "nmosauth-lite verify --issuer https://auth.studio.example.com/x-nmos/auth/v1.0 --ca studio-ca.pem "
    "--state-dir /var/lib/nmosauth-lite --audience node-1.studio.example.com --path ... --token ...": LIVE,
    "nmosauth-lite jwks refresh --issuer https://auth.studio.example.com/x-nmos/auth/v1.0 --ca studio-ca.pem": LIVE,
    "nmosauth-lite jwks show": (RUN, {0}),
    "nmosauth-lite discover --domain studio.example.com --nameserver 10.0.0.53": LIVE,
    "nmosauth-lite protect --listen 0.0.0.0:443 --upstream http://127.0.0.1:8080 "
    "--audience node-1.studio.example.com --cert node.pem --key node.key "
    "--issuer https://auth.studio.example.com/x-nmos/auth/v1.0 --ca studio-ca.pem "
    "--state-dir /var/lib/nmosauth-lite": LIVE,
    "nmosauth-lite as serve --state-dir ./as-state --listen 0.0.0.0:8443": LIVE,  # a server: runs until stopped
    "nmosauth-lite as client add --state-dir ./as-state --name node-1 --grant client_credentials "
    "--scope registration --auth client_secret_basic": (RUN, {0}),
    "nmosauth-lite as keys rotate --state-dir ./as-state": (RUN, {0}),
    # KID is a placeholder: the command runs and answers "no published key KID"
    "nmosauth-lite as keys withdraw --state-dir ./as-state KID": (RUN, {1}),
    "nmosauth-lite as zone --state-dir ./as-state --domain studio.example.com --host auth --address 10.0.0.5":
        (RUN, {0}),
    # issue 22: lab mode, test tokens, certificates, doctor's file checks (docs/authorization-server.md,
    # docs/operations.md)
    "nmosauth-lite as serve --lab --state-dir ./as-state --audience node-1.studio.example.com": LIVE,
    "nmosauth-lite as client add --lab --state-dir ./as-state --name bench-controller --grant client_credentials "
    "--scope \"node connection\"": (RUN, {0}),
    "nmosauth-lite as token --state-dir ./as-state --scope \"node connection\" --audience node-1.studio.example.com "
    "--lifetime 300": (RUN, {0}),
    "nmosauth-lite certs make --out ./certs --name node-1.studio.example.com --ip 10.0.0.7": (RUN, {0}),
    "nmosauth-lite doctor --config /etc/nmosauth-lite/config.toml": LIVE,  # the device's file
    "nmosauth-lite register --discover --domain studio.example.com --name \"ACME Encoder-1 SN123\" "
    "--scope registration --initial-token \"$IAT\" --ca studio-ca.pem": LIVE,
    "nmosauth-lite token --discover --domain studio.example.com --scope registration --ca studio-ca.pem": LIVE,
    # docs/discovery.md (issue 22 item 3): a studio's DNS and authorization server
    "nmosauth-lite protect --listen 0.0.0.0:8444 --upstream http://127.0.0.1:8080 --audience "
    "node-1.studio.example.com --cert node.pem --key node.key --discover --domain studio.example.com "
    "--nameserver 10.0.0.53 --ca studio-ca.pem": LIVE,
    "nmosauth-lite protect --listen 0.0.0.0:8444 --upstream http://127.0.0.1:8080 --audience "
    "node-1.studio.example.com --cert node.pem --key node.key --issuer "
    "https://auth.studio.example.com/x-nmos/auth/v1.0 --connect auth.studio.example.com=10.0.0.5 "
    "--ca studio-ca.pem": LIVE,
    "nmosauth-lite jwks refresh --discover --domain studio.example.com --ca studio-ca.pem": LIVE,
    "nmosauth-lite verify --discover --domain studio.example.com --ca studio-ca.pem --audience "
    "node-1.studio.example.com --path /x-nmos/node/v1.3/self --token \"$TOKEN\"": LIVE,
    "nmosauth-lite register --issuer https://auth.studio.example.com/x-nmos/auth/v1.0 --connect "
    "auth.studio.example.com=10.0.0.5 --ca studio-ca.pem --name \"ACME Encoder-1 SN123\" --scope registration "
    "--initial-token \"$IAT\"": LIVE,
    "nmosauth-lite probe --issuer-only --listen 0.0.0.0:8444 --issuer-host probe.example.com": LIVE,
    "nmosauth-lite probe https://node-1.example.com:8443 --ca node-ca.pem --api node/v1.3 --api connection/v1.1 "
    "--listen 0.0.0.0:8444 --issuer-host probe.example.com": LIVE,
}


def readme_commands(text):
    """Shell commands of the README's shell code blocks, in order, one string each."""
    out, block, pending = [], None, ""
    for line in text.splitlines():
        fence = re.match(r"^\s*```(\S*)", line)
        if fence:
            block = None if block is not None else fence.group(1)
            continue
        if block not in SHELL_BLOCKS:
            continue
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue  # an output illustration or a comment line
        command = " ".join(shlex.split(stripped.rstrip("\\"), comments=True, posix=False)) if stripped else ""
        pending = (pending + " " + command).strip()
        if not stripped.endswith("\\"):
            if pending:
                out.append(pending)
            pending = ""
    assert not pending, "unfinished continuation line: " + pending
    return out


WALKTHROUGH = "## Protect your Node in ten minutes"
# the reference moved out of the README into one page per role (issue 22): their commands are held to the same rule
ROLE_PAGES = ("resource-server", "client", "authorization-server", "device-image", "operations")
TOPIC_PAGES = ("discovery",)  # issue 22 item 3: finding the issuer on a device


def without_walkthrough(text):
    """The README less its walkthrough section, which tests/test_walkthrough.py runs verbatim, in order."""
    a = text.find(WALKTHROUGH)
    if a < 0:
        return text
    b = text.find("\n## ", a + len(WALKTHROUGH))
    return text[:a] + (text[b:] if b >= 0 else "")


def _readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        out = readme_commands(without_walkthrough(f.read()))
    for page in ROLE_PAGES + TOPIC_PAGES:
        with open(os.path.join(ROOT, "docs", page + ".md"), encoding="utf-8") as f:
            out += readme_commands(f.read())
    return out


def _kind(cmd):
    kind = COMMANDS[cmd]
    return kind if isinstance(kind, tuple) else (kind, None)


def test_every_readme_command_is_classified():
    found = _readme()
    assert found, "no shell commands found in README.md"
    unknown = [c for c in found if c not in COMMANDS]
    assert not unknown, "classify these README commands in tests/test_readme_commands.py:\n" + "\n".join(unknown)


def test_the_extractor_joins_continuations_and_drops_comments():
    text = "```sh\n# comment\nnmosauth-lite a \\\n    --b c   # note\nmake x\n```\n```python\nx = 1\n```\n"
    assert readme_commands(text) == ["nmosauth-lite a --b c", "make x"]


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if _kind(c)[0] == LIVE])
def test_live_commands_parse(cmd):
    assert cmd in _readme(), "stale entry: no longer in README.md"
    argv = shlex.split(cmd)
    assert argv[0] == "nmosauth-lite"
    args = cli.build_parser().parse_args(argv[1:])  # exits 2 on any usage error
    assert args._run is not None


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if _kind(c)[0] == MAKE])
def test_make_commands_exist(cmd):
    assert cmd in _readme(), "stale entry: no longer in README.md"
    r = subprocess.run(shlex.split(cmd)[:1] + ["-n"] + shlex.split(cmd)[1:], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """cwd, env: HOME and STATE_DIRECTORY in a temporary directory, nmosauth-lite on PATH."""
    home = tmp_path_factory.mktemp("readme")
    shutil.copy(os.path.join(DATA, "is10-example-jwks.json"), home / "keys.json")
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read().strip()
    bindir = os.path.dirname(sys.executable)
    assert os.access(os.path.join(bindir, "nmosauth-lite"), os.X_OK), "nmosauth-lite is not in " + bindir
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIGURATION_DIRECTORY",)}
    env.update(HOME=str(home), STATE_DIRECTORY=str(home / "state"), TOKEN=token, IAT="not-a-token",
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    return home, env


def test_run_commands_work_as_written(sandbox):
    home, env = sandbox
    readme = _readme()
    ran = 0
    for cmd in readme:  # in README order: the AS commands build on one another
        kind, codes = _kind(cmd)
        if kind != RUN:
            continue
        r = subprocess.run(["bash", "-c", cmd], cwd=str(home), env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode in codes, (cmd, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, (cmd, r.stderr)
        ran += 1
    assert ran == sum(1 for c in COMMANDS if _kind(c)[0] == RUN)
    assert (home / "as-state" / "authserver.db").exists()  # the README's state dir, nowhere else


def test_an_as_admin_command_says_when_it_creates_a_store(sandbox, tmp_path):
    _, env = sandbox
    r = subprocess.run(["nmosauth-lite", "as", "client", "list", "--state-dir", str(tmp_path / "new")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "creating it" in r.stderr and str(tmp_path / "new") in r.stderr
    r = subprocess.run(["nmosauth-lite", "as", "client", "list", "--state-dir", str(tmp_path / "new")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
