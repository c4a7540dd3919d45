"""`as serve --profile ipmx` (issue 21): tokens the IPMX profile accepts (TR-10-SEC SEC-65..SEC-72),
accepted by TokenValidator(profile="ipmx") and refused by the IS-10 validators where the
differences table says. Real server processes, real TLS, real SQLite, a real client_credentials
exchange for a controller (SEC-61)."""

import base64
import json
import signal

import pytest

from test_as_cli import _cli, _session, serve  # noqa: F401  (serve is a fixture)

from nmosauth_lite.authserver.config import Config
from nmosauth_lite.errors import ConfigError
from nmosauth_lite.validator import TokenValidator

NODE = "node-cc91629.example.com"
OTHER = "node-cc91699.example.com"
CONN = "/x-nmos/connection/v1.1/single/senders/s1/staged"


def _config(tmp_path, location=None, lifetime=None):
    lines = ['[authserver]', 'profile = "ipmx"', '[authserver.tokens]', 'audience = ["%s", "%s"]' % (NODE, OTHER)]
    if location:
        lines.append('claims_location = "%s"' % location)
    if lifetime:
        lines.append("lifetime = %d" % lifetime)
    lines += ['[authserver.tokens.permissions.connection]', 'read = ["*"]', 'write = [0]']
    path = tmp_path / ("ipmx-%s.toml" % (location or "default"))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _claims(token):
    h, p, _ = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(h + "===")), json.loads(base64.urlsafe_b64decode(p + "===")))


def _controller_token(s, info, config, scope="node connection"):
    # SEC-61: a controller gets a Node-API token by client_credentials (no --lab needed under ipmx)
    client = json.loads(_cli(s.state, "client", "add", "--config", config, "--name", "controller",
                             "--grant", "client_credentials", "--scope", scope).stdout)
    h = _session(info["ca_file"])
    r = h.post(info["issuer"] + "/token", data={"grant_type": "client_credentials", "scope": scope},
               auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert r.status_code == 200, r.text
    jwks = h.get(info["issuer"] + "/jwks", timeout=10).json()
    h.close()
    return client, r.json(), jwks


def _ipmx_validator(jwks, info, **kw):
    return TokenValidator(jwks=jwks, issuers=[info["issuer"]], profile="ipmx", oaim=0, instance_id="CC91629",
                          cert_names=[NODE], **kw)


@pytest.mark.parametrize("location", ["ext", "top"])
def test_ipmx_server_tokens_are_accepted_by_the_ipmx_validator(serve, tmp_path, location):
    config = _config(tmp_path, location)
    s = serve("--config", config)
    info = s.ready()
    client, body, jwks = _controller_token(s, info, config)
    header, claims = _claims(body["access_token"])
    assert header["typ"].lower() in ("jwt", "at+jwt", "application/at+jwt")  # SEC-13, SEC-66
    assert claims["sub"] == claims["client_id"] == client["client_id"]  # SEC-21, SEC-67
    assert 3600 <= claims["exp"] - claims["iat"] <= 86400 and body["expires_in"] == 3600  # SEC-65
    assert "nbf" not in claims and claims["aud"] == [NODE, OTHER]  # SEC-67, SEC-69
    where = claims["ext"] if location == "ext" else claims
    assert where["x-nmos-connection"] == {"read": ["*"], "write": [0]}  # SEC-23, SEC-38
    assert where["x-nmos-node"] == {"read": ["*"], "write": ["*"]}
    if location == "ext":
        assert not any(k.startswith("x-nmos-") for k in claims)
    v = _ipmx_validator(jwks, info, grant_policy="client_credentials")
    tok = body["access_token"]
    assert v.check(tok, "GET", CONN).status == 200
    assert v.check(tok, "PATCH", CONN).status == 200  # write [0]: aud[0] is this Node
    assert v.check(tok, "GET", "/").status == 200  # SEC-37: node scope
    other = TokenValidator(jwks=jwks, profile="ipmx", oaim=0, instance_id="CC91699", cert_names=[OTHER])
    assert other.check(tok, "GET", CONN).status == 200 and other.check(tok, "PATCH", CONN).status == 403
    # The IS-10 validators refuse it where the table says they differ:
    is10 = TokenValidator(jwks=jwks, audience=[NODE], issuers=[info["issuer"]])
    strict = TokenValidator(jwks=jwks, audience=[NODE], issuers=[info["issuer"]], algorithms=("RS512",))
    for w in (is10, strict):
        d = w.check(tok, "PATCH", CONN)
        if location == "top":
            assert d.status == 401  # SEC-68: an aud-index array is no path specifier (TOK-26)
        else:
            assert d.status == 403  # IS-10 reads no `ext`: no x-nmos-connection claim at all (TOK-20)
        assert w.check(tok, "GET", "/x-nmos/connection/v1.1").status == 200  # base path by scope (RS-31)
    assert s.signal(signal.SIGTERM) == 0


def test_ipmx_lifetime_bounds_and_permission_values_are_checked(tmp_path):  # SEC-65, SEC-39, SEC-68
    for lifetime in (3599, 86401, 600):
        with pytest.raises(ConfigError):
            Config({"profile": "ipmx", "tokens": {"lifetime": lifetime}}, state_dir=str(tmp_path))
    assert Config({"profile": "ipmx", "tokens": {"lifetime": 86400}}, state_dir=str(tmp_path)).token_lifetime == 86400
    aud = {"audience": ["a.example.com", "b.example.com"]}
    for bad in (["single/*"], [], [2], [0, -2], [-1, 0], [0.0], [True], ["*", "*"], "*"):
        with pytest.raises(ConfigError):
            Config({"profile": "ipmx", "tokens": dict(aud, permissions={"connection": {"write": bad}})},
                   state_dir=str(tmp_path))
    ok = Config({"profile": "ipmx", "tokens": dict(aud, permissions={"connection": {"read": [""], "write": [1, -0]}})},
                state_dir=str(tmp_path))
    assert ok.permissions["connection"] == {"read": [""], "write": [1, 0]}
    assert ok.claims_location == "ext" and set(ok.client_credentials_scopes) == set(ok.scopes)  # SEC-23, SEC-72
    with pytest.raises(ConfigError):
        Config({"tokens": {"claims_location": "ext"}}, state_dir=str(tmp_path))  # IS-10 keeps top-level claims
    with pytest.raises(ConfigError):
        Config({"profile": "ipmx-2"}, state_dir=str(tmp_path))
    is10 = Config({}, state_dir=str(tmp_path))
    assert is10.profile == "is-10" and is10.token_lifetime == 600 and is10.claims_location == "top"


def test_as_token_under_ipmx(serve, tmp_path):
    import subprocess
    import sys

    from test_as_cli import _env

    config = _config(tmp_path, "ext", lifetime=7200)
    s = serve("--config", config)
    info = s.ready()
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "token", "--state-dir", s.state, "--config",
                        config, "--scope", "connection", "--sub", "op"], capture_output=True, text=True,
                       env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    header, claims = _claims(r.stdout.strip())
    assert claims["exp"] - claims["iat"] == 7200 and claims["ext"]["x-nmos-connection"]["write"] == [0]
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "token", "--state-dir", s.state, "--config",
                        config, "--scope", "connection", "--audience", NODE], capture_output=True, text=True,
                       env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr  # one aud entry: index 0 still inside it
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "token", "--state-dir", s.state, "--config",
                        config, "--scope", "connection", "--lifetime", "600"], capture_output=True, text=True,
                       env=_env(), timeout=60)
    assert r.returncode == 2 and "SEC-65" in r.stderr
    assert s.signal(signal.SIGTERM) == 0


def test_controllers_get_node_api_scopes_by_client_credentials_under_ipmx_only(tmp_path):  # SEC-61, SEC-72
    state = str(tmp_path / "as")
    r = _cli(state, "client", "add", "--name", "c", "--grant", "client_credentials", "--scope", "connection",
             check=False)
    assert r.returncode == 2  # IS-10 / BCP-003-02 BCP-G-04: not without --lab
    r = _cli(state, "client", "add", "--profile", "ipmx", "--name", "c", "--grant", "client_credentials",
             "--scope", "connection")
    assert json.loads(r.stdout)["scope"] == "connection"
