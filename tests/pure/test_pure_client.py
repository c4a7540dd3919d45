"""The Node's OAuth client without `cryptography`, against a real lite authorization server.

The authorization server signs tokens and needs cryptography, so it runs as a peer
process on the main venv's Python ($NMOSAUTH_PEER_PYTHON, default .venv/bin/python), the
way a Node meets a real server on the network. This process (the pure lane) registers
with an initial access token (RFC 7591), gets client_credentials tokens with
client_secret_basic, fetches the server's JWKS over verified TLS and validates the
RS512 tokens with the pure backend. Pure lane only.
"""

import asyncio
import json
import os
import select
import signal
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER = os.environ.get("NMOSAUTH_PEER_PYTHON") or os.path.join(ROOT, ".venv", "bin", "python")
START_TIMEOUT = 60
AUD = "node1.example.com"
PATH = "/x-nmos/registration/v1.3/resource"


@pytest.fixture(autouse=True)
def only_in_the_pure_lane(pytestconfig):
    if not getattr(pytestconfig, "pure_lane", False):
        pytest.skip("pure lane only (make test-pure)")


def peer(*args, check=True):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    return subprocess.run([PEER, "-m", "nmosauth_lite"] + list(args), capture_output=True, text=True, env=env,
                          timeout=120, check=check)


@pytest.fixture
def authserver(tmp_path):
    if not os.access(PEER, os.X_OK):
        pytest.fail("no peer Python with cryptography at %s (set NMOSAUTH_PEER_PYTHON)" % PEER)
    state, config = str(tmp_path / "as"), str(tmp_path / "as.toml")
    with open(config, "w") as f:
        f.write('host = "localhost"\n[tokens]\nlifetime = 60\naudience = ["*.example.com"]\n')
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("STATE_DIRECTORY", None)
    log = open(tmp_path / "as.log", "w")
    proc = subprocess.Popen([PEER, "-m", "nmosauth_lite", "as", "serve", "--state-dir", state, "--config", config,
                             "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log,
                            stdin=subprocess.DEVNULL, env=env, text=True)
    log.close()
    try:
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        assert line, "as serve did not start: " + (tmp_path / "as.log").read_text()[-2000:]
        info = json.loads(line)
        iat = json.loads(peer("as", "client", "iat", "--scope", "registration", "--state-dir", state,
                              "--config", config).stdout)["initial_access_token"]
        yield info, iat
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # the process we started, by its PID
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        proc.stdout.close()


def run(coro, timeout=90):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def test_register_get_tokens_and_validate_them_without_cryptography(authserver, tmp_path):
    from nmosauth_lite.aio.keystore import KeyStore
    from nmosauth_lite.aio.oauth import CredentialStore, OAuthClient, ServerSelector, TokenManager
    from nmosauth_lite.jws import parse
    from nmosauth_lite.validator import TokenValidator

    info, iat = authserver
    issuer, ca = info["issuer"], info["ca_file"]

    async def go():
        sel = ServerSelector(issuers=[issuer], ca_file=ca)
        store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "client.key"))
        client = OAuthClient(sel, store, name="ACME Encoder-1 SN-pure", scope="registration", initial_token=iat)
        keys = KeyStore([issuer], state_dir=str(tmp_path / "node-keys"), ca_file=ca)
        try:
            async with TokenManager(client) as manager:
                first = await manager.token()
                second = await manager.invalidate(first)  # what a Node does after a 401
            v = TokenValidator(keys=keys, audience=[AUD])
            assert v.backend.name == "pure"
            await keys.refresh()
            decisions = [v.check(t, "POST", PATH) for t in (first, second)]
            write_elsewhere = v.check(second, "POST", "/x-nmos/connection/v1.1/single/senders/x/staged")
            return client, first, second, decisions, write_elsewhere
        finally:
            await keys.close()
            await sel.close()

    client, first, second, decisions, elsewhere = run(go())
    assert client.registrations == 1 and first != second
    assert parse(first).header["alg"] == "RS512" and parse(first).claims["iss"] == issuer
    assert [d.status for d in decisions] == [200, 200], [d.reason for d in decisions]
    assert elsewhere.status == 403
    record = client.store.load(issuer)
    assert record["token_endpoint_auth_method"] == "client_secret_basic"


def test_private_key_jwt_says_it_needs_cryptography(tmp_path):
    from nmosauth_lite.aio.oauth import CredentialStore
    from nmosauth_lite.errors import NmosAuthError

    store = CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "client.key"))
    with pytest.raises(NmosAuthError) as e:
        store.signing_key("ES256")
    assert "cryptography" in e.value.message
