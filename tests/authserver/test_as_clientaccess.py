"""A client's own audience list and IPMX permissions (issue 21; TR-10-SEC SEC-39, SEC-67..SEC-69):
`as client add/update --audience/--permission`, the checks made when an operator sets them, the
tokens a real `as serve --profile ipmx` then issues (verified by TokenValidator(profile="ipmx")
configured as two different Nodes), the IS-10 profile unchanged for clients without a list, and
the schema-1 store (tests/vectors/authserver/store-v1.sql) migrated in place.
"""

import base64
import json
import os
import signal
import sqlite3
import time

import pytest

from as_support import ASThread, as_pki, basic, server_table, token_form  # noqa: F401 (as_pki: fixture)
from test_as_cli import _cli, _session, serve  # noqa: F401  (serve is a fixture)
from nmosauth_lite.authserver.clientaccess import check_client_access, parse_permission, token_access
from nmosauth_lite.authserver.config import Config
from nmosauth_lite.authserver.store import SCHEMA_VERSION, Store, digest
from nmosauth_lite.errors import ConfigError
from nmosauth_lite.validator import TokenValidator

HERE = os.path.dirname(os.path.abspath(__file__))
STORE_V1 = os.path.join(os.path.dirname(HERE), "vectors", "authserver", "store-v1.sql")
OLD_ID, OLD_SECRET = "old-client-0123456789abcdef", "old-client-secret"  # the client in STORE_V1

NODE_A, ID_A = "node-cc91629.example.com", "CC91629"
NODE_B, ID_B = "node-cc91699.example.com", "CC91699"
CONN = "/x-nmos/connection/v1.1/single/senders/s1/staged"


def _claims(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))


def _old_store(path):
    """A database exactly as schema version 1 made it (0600, as Store makes its file)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    db = sqlite3.connect(path)
    with open(STORE_V1) as f:
        db.executescript(f.read())
    db.close()
    os.chmod(path, 0o600)


def _ipmx(tmp_path, **tokens):
    return Config({"profile": "ipmx", "tokens": dict({"audience": [NODE_A, NODE_B]}, **tokens)},
                  state_dir=str(tmp_path))


# --- the command-line syntax and the checks made when the operator sets the values ---------------------

def test_permission_syntax():  # SEC-38: ["*"], [""], or signed aud indexes
    assert parse_permission("connection=*:0,-1", "c") == ("connection", {"read": ["*"], "write": [0, -1]})
    assert parse_permission("connection=:", "c") == ("connection", {"read": [""], "write": [""]})
    assert parse_permission("node=1,2", "c") == ("node", {"read": [1, 2]})  # write left out: denied (SEC-38)
    assert parse_permission("node=-0", "c") == ("node", {"read": [0]})  # JSON -0 is the integer 0 (SEC-39)
    for bad in ("connection", "=*:*", "connection=1.0", "connection=+1", "connection=0x1", "connection= 1",
                "connection=1,", "connection=1e0", "connection=*,0", "connection=-", "connection=1234567"):
        with pytest.raises(ConfigError) as e:
            parse_permission(bad, "'ctl'")
        assert "client 'ctl'" in str(e.value)


def test_indexes_are_checked_against_the_clients_own_list(tmp_path):  # SEC-39, SEC-68
    cfg = _ipmx(tmp_path)
    scopes = ["node", "connection"]
    ok = check_client_access(["*", NODE_A], {"connection": {"read": [0, -1], "write": [1]}}, config=cfg,
                             scopes=scopes, who="'ctl'")
    assert ok == (["*", NODE_A], {"connection": {"read": [0, -1], "write": [1]}})
    cases = {
        "outside the 2 audience entries": {"write": [2]},  # |i| >= len(aud): an invalid token (SEC-39)
        "index -2 is outside": {"write": [0, -2]},
        "non-negative indexes first": {"write": [-1, 0]},  # SEC-39 order
        "integers": {"write": [0.0]},  # JSON integers only (SEC-38)
        "integers)": {"write": [True]},
        'must be ["*"]': {"write": []},
        "read and write only": {"delete": ["*"]},
    }
    for message, perm in cases.items():
        with pytest.raises(ConfigError) as e:
            check_client_access(["*", NODE_A], {"connection": perm}, config=cfg, scopes=scopes, who="'ctl'")
        assert message in str(e.value) and "client 'ctl'" in str(e.value) and "connection" in str(e.value)
    with pytest.raises(ConfigError, match="no connection scope"):
        check_client_access([NODE_A], {"connection": {"read": ["*"]}}, config=cfg, scopes=["node"], who="c")
    with pytest.raises(ConfigError, match="own audience list"):  # an index needs a list it points into
        check_client_access(None, {"connection": {"read": [0]}}, config=cfg, scopes=scopes, who="c")
    assert check_client_access(None, {"connection": {"read": ["*"], "write": [""]}}, config=cfg, scopes=scopes,
                               who="c")[1] == {"connection": {"read": ["*"], "write": [""]}}
    for aud in ([], ["a.example.com"] * 2, ["node:8443"], ["https://n.example.com/x"], ["a"] * 17, "a.example.com"):
        with pytest.raises(ConfigError):
            check_client_access(aud, None, config=cfg, scopes=scopes, who="c")


def test_the_servers_permissions_must_fit_a_clients_own_list(tmp_path):  # SEC-39
    cfg = _ipmx(tmp_path, permissions={"connection": {"read": ["*"], "write": [1]}})
    with pytest.raises(ConfigError) as e:  # tokens.permissions' write [1] would point outside [NODE_A]
        check_client_access([NODE_A], None, config=cfg, scopes=["node", "connection"], who="'ctl'")
    assert "tokens.permissions for connection" in str(e.value) and "--permission connection=" in str(e.value)
    assert check_client_access([NODE_A], None, config=cfg, scopes=["node"], who="c") == ([NODE_A], None)
    assert check_client_access([NODE_A], {"connection": {"read": [0]}}, config=cfg, scopes=["connection"],
                               who="c")[0] == [NODE_A]


def test_permissions_per_client_are_the_ipmx_profiles_only(tmp_path):  # SEC-68 vs IS-10 path specifiers
    is10 = Config({"tokens": {"audience": ["*.example.com"]}}, state_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="ipmx profile"):
        check_client_access([NODE_A], {"registration": {"read": ["*"]}}, config=is10, scopes=["registration"],
                            who="c")
    assert check_client_access([NODE_A], None, config=is10, scopes=["registration"], who="c") == ([NODE_A], None)


def test_token_access(tmp_path):  # SEC-67, SEC-69
    ipmx = _ipmx(tmp_path, permissions={"connection": {"read": ["*"], "write": [1]}})
    is10 = Config({"tokens": {"audience": ["*.example.com"]}}, state_dir=str(tmp_path))
    plain = {"scopes": ["node", "connection"], "audience": None, "permissions": None}
    for cfg in (ipmx, is10):  # no values of its own: exactly the server's, same objects
        aud, perms = token_access(plain, cfg, cfg.token_audience())
        assert aud is not None and aud == cfg.token_audience() and perms is cfg.permissions
    own = dict(plain, audience=["*", NODE_A], permissions={"connection": {"read": [0], "write": [1]}})
    aud, perms = token_access(own, ipmx, ipmx.token_audience())
    assert aud == ["*", NODE_A] and perms["connection"] == {"read": [0], "write": [1]}
    assert perms["node"] == ipmx.permissions["node"] and ipmx.permissions["connection"]["write"] == [1]
    aud, perms = token_access(own, is10, is10.token_audience())  # IS-10: the list, never IPMX permissions
    assert aud == ["*", NODE_A] and perms is is10.permissions
    with pytest.raises(ValueError, match="connection"):  # the server's write [1] outside a 1-entry list
        token_access(dict(plain, audience=[NODE_A]), ipmx, ipmx.token_audience())


# --- the store: schema 1 databases keep working -----------------------------------------------------------

def test_a_schema_1_database_is_migrated_in_place(tmp_path):
    path = str(tmp_path / "state" / "authserver.db")
    _old_store(path)
    s = Store(path)
    try:
        assert s.get_meta("schema") == str(SCHEMA_VERSION) == "2"
        old = s.get_client(OLD_ID)
        assert old["secret_hash"] == digest(OLD_SECRET) and old["scopes"] == ["node", "connection"]
        assert old["audience"] is None and old["permissions"] is None  # the server's values, as before
        assert s.audit_entries(event="client.register")[0]["client_id"] == OLD_ID
        assert s.set_client_access(OLD_ID, [NODE_A], {"connection": {"read": [0]}})
        s.add_client("new", secret_hash=None, auth_method="none", scope="node", grant_types=["authorization_code"],
                     redirect_uris=[], metadata={}, status="active", now=time.time())
    finally:
        s.close()
    again, second = Store(path), Store(path)  # reopened, and by a second connection: no second migration
    try:
        assert again.get_client(OLD_ID)["audience"] == [NODE_A]
        assert second.get_client(OLD_ID)["permissions"] == {"connection": {"read": [0]}}
        assert again.get_client("new")["audience"] is None
        assert not again.set_client_access("nobody", None, None)
    finally:
        again.close()
        second.close()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    path = str(tmp_path / "as.db")
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET v='3' WHERE k='schema'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="schema version 3"):
        Store(path)


# --- the IS-10 profile: a client's list replaces tokens.audience; nothing else changes ----------------------

def test_is10_client_with_its_own_audience(as_pki, tmp_path):
    import requests

    from nmosauth_lite.authserver.registration import check_metadata, create_client

    with ASThread(server_table(as_pki), str(tmp_path)) as srv, requests.Session() as http:
        http.trust_env, http.verify = False, srv.ca_file
        plain = srv.add_client(scope="registration")
        s = srv.store()
        try:
            meta = check_metadata({"client_name": "n", "scope": "registration", "grant_types": ["client_credentials"]},
                                  srv.config)
            own = create_client(s, meta, time.time(), status="active", actor="test", audience=["reg.example.com"])
        finally:
            s.close()
        got = {}
        for name, c in (("plain", plain), ("own", own)):
            r = token_form(http, srv, {"grant_type": "client_credentials"}, basic(c["client_id"], c["client_secret"]))
            assert r.status_code == 200, r.text
            got[name] = _claims(r.json()["access_token"])
    assert got["plain"]["aud"] == ["*.example.com"]  # tokens.audience, as before
    assert got["own"]["aud"] == ["reg.example.com"]
    for c in got.values():  # IS-10 path specifiers, top level, unchanged (BCP-003-02 §2)
        assert c["x-nmos-registration"] == {"read": ["*"], "write": ["*"]} and "ext" not in c


# --- end to end: `as serve --profile ipmx`, two Nodes, three clients, an old database ------------------------

def _config(tmp_path):
    path = tmp_path / "ipmx.toml"
    path.write_text("\n".join([
        "[authserver]", 'profile = "ipmx"', "[authserver.tokens]", 'audience = ["%s", "%s"]' % (NODE_A, NODE_B),
        "[authserver.tokens.permissions.connection]", 'read = ["*"]', "write = [1]"]) + "\n")
    return str(path)


def _add(s, config, name, *access):
    r = _cli(s.state, "client", "add", "--config", config, "--name", name, "--grant", "client_credentials",
             "--scope", "node connection", *access)
    return json.loads(r.stdout)


def _token(h, info, client_id, secret):
    r = h.post(info["issuer"] + "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret),
               timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _statuses(nodes, token):
    return {n: (v.check(token, "GET", CONN).status, v.check(token, "PATCH", CONN).status) for n, v in nodes.items()}


def test_per_client_audiences_under_ipmx_end_to_end(serve, tmp_path):  # SEC-39, SEC-40, SEC-67..SEC-69
    config = _config(tmp_path)
    state = str(tmp_path / "state")
    _old_store(os.path.join(state, "authserver.db"))  # made by schema 1, migrated by the server
    s = serve("--config", config, state=state)
    info = s.ready()
    # client 1: Node A only; client 2: everyone but Node A (aud[0] "*" allows, -1 denies aud[1]).
    one = _add(s, config, "one", "--audience", NODE_A, "--permission", "connection=*:0")
    two = _add(s, config, "two", "--audience", "*", "--audience", NODE_A, "--permission", "connection=0,-1:0,-1")
    assert one["audience"] == [NODE_A] and two["permissions"] == {"connection": {"read": [0, -1], "write": [0, -1]}}
    # the server's connection write [1] does not fit a one-entry list: refused, naming client and API
    r = _cli(s.state, "client", "add", "--config", config, "--name", "three", "--grant", "client_credentials",
             "--scope", "node connection", "--audience", NODE_A, check=False)
    assert r.returncode == 2 and "client 'three'" in r.stderr and "connection" in r.stderr and "SEC-39" in r.stderr
    for bad, words in (("connection=*:2", "index 2 is outside the 2 audience"), ("connection=*:-1,0", "non-negative"),
                       ("connection=*:0.5", "integers")):
        r = _cli(s.state, "client", "add", "--config", config, "--name", "four", "--grant", "client_credentials",
                 "--scope", "node connection", "--audience", NODE_A, "--audience", NODE_B, "--permission", bad,
                 check=False)
        assert r.returncode == 2 and words in r.stderr and "client 'four'" in r.stderr, r.stderr
    h = _session(info["ca_file"])
    jwks = h.get(info["issuer"] + "/jwks", timeout=10).json()
    nodes = {n: TokenValidator(jwks=jwks, issuers=[info["issuer"]], profile="ipmx", oaim=0, instance_id=i,
                               cert_names=[n], grant_policy="client_credentials")
             for n, i in ((NODE_A, ID_A), (NODE_B, ID_B))}

    t1 = _token(h, info, one["client_id"], one["client_secret"])
    c1 = _claims(t1)
    assert c1["aud"] == [NODE_A] and c1["ext"]["x-nmos-connection"] == {"read": ["*"], "write": [0]}
    assert c1["ext"]["x-nmos-node"] == {"read": ["*"], "write": ["*"]}  # tokens.permissions where it has none
    assert c1["sub"] == c1["client_id"] == one["client_id"]  # SEC-21, SEC-67
    assert _statuses(nodes, t1) == {NODE_A: (200, 200), NODE_B: (403, 403)}  # B is not in its aud (SEC-26)

    t2 = _token(h, info, two["client_id"], two["client_secret"])
    assert _claims(t2)["aud"] == ["*", NODE_A]
    assert _statuses(nodes, t2) == {NODE_A: (403, 403), NODE_B: (200, 200)}  # -1 denies aud[1] = A (SEC-40)

    # the old database's client, with no list of its own: tokens.audience and tokens.permissions, as before
    t3 = _token(h, info, OLD_ID, OLD_SECRET)
    c3 = _claims(t3)
    assert c3["aud"] == [NODE_A, NODE_B] and c3["ext"]["x-nmos-connection"] == {"read": ["*"], "write": [1]}
    assert _statuses(nodes, t3) == {NODE_A: (200, 403), NODE_B: (200, 200)}

    # changed while the server runs: the next token carries the new values
    r = _cli(s.state, "client", "update", OLD_ID, "--config", config, "--audience", NODE_B,
             "--permission", "connection=*:0")
    assert json.loads(r.stdout) == {"client_id": OLD_ID, "changed": ["audience", "permissions"], "audience": [NODE_B],
                                    "permissions": {"connection": {"read": ["*"], "write": [0]}}}
    assert _statuses(nodes, _token(h, info, OLD_ID, OLD_SECRET)) == {NODE_A: (403, 403), NODE_B: (200, 200)}
    r = _cli(s.state, "client", "update", OLD_ID, "--config", config, "--clear-permission", "connection", check=False)
    assert r.returncode == 2 and "tokens.permissions for connection" in r.stderr  # write [1] outside [NODE_B]
    r = _cli(s.state, "client", "update", OLD_ID, "--config", config, "--clear-audience",
             "--clear-permission", "connection")
    assert json.loads(r.stdout)["audience"] is None
    assert _claims(_token(h, info, OLD_ID, OLD_SECRET))["aud"] == [NODE_A, NODE_B]  # back to tokens.audience
    listed = {c["client_id"]: c for c in json.loads(_cli(s.state, "client", "list", "--config", config).stdout)}
    assert listed[one["client_id"]]["audience"] == [NODE_A] and listed[OLD_ID]["permissions"] is None
    h.close()
    assert s.signal(signal.SIGTERM) == 0
    db = Store(os.path.join(state, "authserver.db"))
    try:
        events = [e["event"] for e in db.audit_entries(event="client.access")]
        assert len(events) == 4  # two adds with values of their own, two updates
    finally:
        db.close()


def test_a_client_whose_values_no_longer_fit_gets_no_token(as_pki, tmp_path):  # SEC-68: no invalid token
    import requests

    table = server_table(as_pki, profile="ipmx", tokens={"audience": [NODE_A, NODE_B],
                                                           "permissions": {"connection": {"write": [1]}}})
    with ASThread(table, str(tmp_path)) as srv, requests.Session() as http:
        http.trust_env, http.verify = False, srv.ca_file
        c = srv.add_client(scope="connection")
        s = srv.store()
        try:  # as if set under another configuration: the server's write [1] points outside [NODE_A]
            s.set_client_access(c["client_id"], [NODE_A], None)
        finally:
            s.close()
        r = token_form(http, srv, {"grant_type": "client_credentials"}, basic(c["client_id"], c["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope" and "SEC-39" in r.json()["error_description"]


def test_a_re_registering_device_keeps_its_audience(as_pki, tmp_path):  # issue 23 + 21: no more than it had
    from cryptography.hazmat.primitives.asymmetric import ec
    from minting import public_jwk
    from test_as_pending import _device_body, _iat, _register_body

    with ASThread(server_table(as_pki), str(tmp_path)) as srv:
        jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "dev-1")
        status, first = _register_body(srv, "127.0.0.2", _device_body(jwk), _iat(srv))
        assert status == 201
        s = srv.store()
        try:
            s.set_client_access(first["client_id"], ["registry.example.com"], None)
            status, again = _register_body(srv, "127.0.0.2", _device_body(jwk))
            row = s.get_client(again["client_id"])
            assert status == 201 and row["status"] == "active" and row["audience"] == ["registry.example.com"]
            assert "audience" not in again  # a registration response never shows the operator's values
        finally:
            s.close()


def test_the_server_names_clients_whose_values_no_longer_fit_at_start(tmp_path, caplog):
    import logging

    from nmosauth_lite.authserver.service import _check_clients

    cfg = _ipmx(tmp_path, permissions={"connection": {"write": [1]}})
    s = Store(str(tmp_path / "as.db"))
    try:
        for cid, aud, perms in (("fits", [NODE_A, NODE_B], None), ("misfit", [NODE_A], None),
                                ("plain", None, {"connection": {"read": ["*"]}})):
            s.add_client(cid, secret_hash=None, auth_method="client_secret_basic", scope="connection",
                         grant_types=["client_credentials"], redirect_uris=[], metadata={}, status="active",
                         now=time.time(), audience=aud, permissions=perms)
        with caplog.at_level(logging.INFO, logger="nmosauth_lite.authserver"):
            _check_clients(cfg, s, cfg.token_audience())
            warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warned) == 1 and "misfit" in warned[0] and "connection" in warned[0]
            caplog.clear()
            is10 = Config({"tokens": {"audience": ["*.example.com"]}}, state_dir=str(tmp_path))
            _check_clients(is10, s, is10.token_audience())  # IPMX permissions are not used under IS-10
            assert [r.levelno for r in caplog.records] == [logging.INFO] and "plain" in caplog.records[0].getMessage()
    finally:
        s.close()
