"""A lab path to a Node-API token (issue 22 §1) that keeps BCP-003-02's production rule.

BCP-003-02 BCP-G-02/G-03: client_credentials only for registration and events unless a deployment
agrees otherwise, never by default. `as serve --lab` is that agreement for a bench, said loudly in
the log and in the RFC 8414 metadata; `as token` mints a test token with the server's own key
(RS512, IS-10 TOK-03), audited. Real server processes, real TLS, real SQLite."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
import requests

from test_as_cli import ROOT, _cli, _env, _session, serve  # noqa: F401  (serve is a fixture)

from nmosauth_lite.validator import TokenValidator


def _cc_client(state, scope, *extra):
    return _cli(state, "client", "add", "--name", "bench", "--grant", "client_credentials", "--scope", scope,
                *extra, check=False)


def test_without_lab_client_credentials_stays_registration_and_events_only(tmp_path):
    # BCP-003-02 BCP-G-04: the production default refuses a Node-API scope with client_credentials
    r = _cc_client(str(tmp_path / "as"), "node")
    assert r.returncode == 2 and "scopes allowed with client_credentials: registration events" in r.stderr


def test_lab_server_grants_node_api_tokens_by_client_credentials_and_says_so(serve, tmp_path):
    s = serve("--lab")
    info = s.ready()
    md = _session(info["ca_file"]).get(info["issuer"].replace("/x-nmos", "/.well-known/oauth-authorization-server"
                                                              "/x-nmos"), timeout=10).json()
    assert "LAB MODE" in md["nmosauth_lite_lab_mode"] and "BCP-G-03" in md["nmosauth_lite_lab_mode"]
    assert "LAB MODE" in s.log()
    client = json.loads(_cc_client(s.state, "node connection", "--lab").stdout)
    h = _session(info["ca_file"])
    r = h.post(info["issuer"] + "/token", data={"grant_type": "client_credentials", "scope": "node"},
               auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert r.status_code == 200, r.text
    jwks = h.get(md["jwks_uri"], timeout=10).json()
    v = TokenValidator(jwks=jwks, audience=["localhost"], issuers=[info["issuer"]])
    aud = json.loads(__import__("base64").urlsafe_b64decode(r.json()["access_token"].split(".")[1] + "==="))["aud"]
    assert aud != ["*"]  # the default audience names a host or a domain, never every host
    v = TokenValidator(jwks=jwks, audience=[a.replace("*", "node-1") for a in aud], issuers=[info["issuer"]])
    assert v.check(r.json()["access_token"], method="GET", path="/x-nmos/node/v1.3/self").status == 200
    h.close()
    assert s.signal(signal.SIGTERM) == 0


def test_metadata_of_a_production_server_has_no_lab_member(serve):
    s = serve()
    info = s.ready()
    md = _session(info["ca_file"]).get(info["issuer"].replace("/x-nmos", "/.well-known/oauth-authorization-server"
                                                              "/x-nmos"), timeout=10).json()
    assert "nmosauth_lite_lab_mode" not in md and "LAB MODE" not in s.log()
    assert s.signal(signal.SIGTERM) == 0


def _token(state, *args):
    return subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "token", "--state-dir", state] + list(args),
                          capture_output=True, text=True, env=_env(), timeout=60)


def test_as_token_mints_an_audited_rs512_token_that_the_running_servers_jwks_verifies(serve):
    s = serve()
    info = s.ready()
    r = _token(s.state, "--scope", "node connection", "--audience", "node-1.studio.example.com",
               "--lifetime", "120")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert r.stdout.count("\n") == 1 and token.count(".") == 2  # the token alone: TOKEN=$(...)
    h = _session(info["ca_file"])
    jwks = h.get(info["issuer"] + "/jwks", timeout=10).json()
    h.close()
    v = TokenValidator(jwks=jwks, audience=["node-1.studio.example.com"], issuers=[info["issuer"]],
                       algorithms=("RS512",))
    d = v.check(token, method="GET", path="/x-nmos/connection/v1.1/single/senders")
    assert d.status == 200, d.reason
    assert d.claims["iss"] == info["issuer"]  # the issuer the server started as (its port was 0)
    assert d.claims["exp"] - d.claims["iat"] == 120 and d.claims["sub"] == "operator"
    assert v.check(token, method="PATCH", path="/x-nmos/node/v1.3/self").status == 403
    db = sqlite3.connect(os.path.join(s.state, "authserver.db"))
    (detail,) = db.execute("SELECT detail FROM audit WHERE event='token.operator'").fetchone()
    db.close()
    assert d.claims["jti"] in detail and token not in detail  # audited, never the token itself
    assert s.signal(signal.SIGTERM) == 0


@pytest.mark.parametrize("args,needle", [
    (["--scope", "nodes"], "unknown: nodes"), (["--scope", ""], "give scopes"),
    (["--scope", "node", "--lifetime", "29"], "30..3600"), (["--scope", "node", "--lifetime", "3601"], "30..3600"),
    (["--scope", "node", "--audience", "node-1.example.com:8443"], "no port"),
    (["--scope", "node", "--audience", "https://node-1.example.com/x"], "no port or path"),
    (["--scope", "node", "--audience", "a\nb"], "IS-10 aud"),
    (["--scope", " ".join("s%d" % i for i in range(40))], "--scope: too many"),
    (["--scope", "node", "--issuer", "http://plain.example.com"], "not https"),
    (["--scope", "node", "--sub", "x" * 201], "--sub"), (["--scope", "node", "--sub", "a\x1bb"], "--sub"),
])
def test_as_token_refuses_what_is10_does_not_allow_in_one_line(tmp_path, args, needle):
    r = _token(str(tmp_path / "as"), *args)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_as_token_defaults_to_the_audience_and_issuer_the_server_started_with(serve):
    s = serve("--audience", "node-7.lab.example.com", "--audience", "localhost")
    info = s.ready()
    r = _token(s.state, "--scope", "node")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stderr.strip().splitlines()[-1].split(": ", 1)[1])
    assert summary["aud"] == ["node-7.lab.example.com", "localhost"] and summary["iss"] == info["issuer"]
    assert s.signal(signal.SIGTERM) == 0


def test_as_serve_refuses_an_audience_with_a_port(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nmosauth_lite", "as", "serve", "--state-dir", str(tmp_path / "as"),
                        "--listen", "127.0.0.1:0", "--audience", "node-1.example.com:443"],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 2 and "no port" in r.stderr and "Traceback" not in r.stderr


def test_as_token_refuses_more_audiences_than_max(tmp_path):
    from nmosauth_lite.commands.authserver import MAX_AUDIENCES

    args = ["--scope", "node"]
    for i in range(MAX_AUDIENCES + 1):
        args += ["--audience", "n%d.example.com" % i]
    r = _token(str(tmp_path / "as"), *args)
    assert r.returncode == 2 and "at most %d" % MAX_AUDIENCES in r.stderr


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), st.from_regex(r"\A(https://)?[a-z0-9*.:/\-]{0,60}\Z")))
def test_an_audience_value_is_an_is10_aud_or_a_config_error(value):
    # IS-10 TOK aud: a host name (wildcards allowed) or https://host; never a port, path or query
    from nmosauth_lite.commands.authserver import check_audience_value
    from nmosauth_lite.errors import ConfigError

    try:
        out = check_audience_value(value)
    except ConfigError:
        return
    host = out[8:] if out.lower().startswith("https://") else out
    assert out == value and host
    if "/" in host or "?" in host:
        raise AssertionError(value)
    if ":" in host:  # only an IPv6 literal may hold a colon
        import ipaddress

        ipaddress.ip_address(host.strip("[]"))
