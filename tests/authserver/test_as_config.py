"""Configuration, token claims and password hashing of the lite AS (no network)."""

import pytest

from as_support import validate
from nmosauth_lite.authserver import config as cfgmod
from nmosauth_lite.authserver import tokens, users
from nmosauth_lite.errors import ConfigError


def test_defaults_give_loopback_issuer_with_nmos_path(tmp_path):
    c = cfgmod.Config({}, state_dir=str(tmp_path))
    assert (c.listen_host, c.listen_port) == ("127.0.0.1", 8443)
    assert c.issuer() == "https://localhost:8443/x-nmos/auth/v1.0"  # IS-10 AS-02
    assert c.issuer(443) == "https://localhost/x-nmos/auth/v1.0"
    assert c.token_alg == "RS512" and c.publish_delay == 7200  # TOK-03, AS-16
    assert c.client_credentials_scopes == ["registration", "events"]  # BCP-G-02


@pytest.mark.parametrize("lifetime", [29, 3601, 0, "600"])
def test_token_lifetime_outside_tok07_is_refused(lifetime, tmp_path):
    with pytest.raises(ConfigError):
        cfgmod.Config({"tokens": {"lifetime": lifetime}}, state_dir=str(tmp_path))


def test_unknown_settings_and_bad_types_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting tokens.lifetim"):
        cfgmod.Config({"tokens": {"lifetim": 60}}, state_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        cfgmod.Config({"registration": {"manual_approval": "yes"}}, state_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        cfgmod.Config({"tokens": {"alg": "RS256"}}, state_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        cfgmod.Config({"tokens": {"permissions": {"connection": {"write": ["/x-nmos/connection/v1.1/*"]}}}},
                      state_dir=str(tmp_path))


def test_state_dir_default_follows_architecture():
    assert cfgmod.default_state_dir({"STATE_DIRECTORY": "/run/sd:/other"}, 1000) == "/run/sd"
    assert cfgmod.default_state_dir({}, 0) == "/var/lib/nmosauth-lite"
    assert cfgmod.default_state_dir({"HOME": "/home/u"}, 1000).endswith("/.local/state/nmosauth-lite")


def test_toml_file_with_authserver_table(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('[authserver]\nlisten = "0.0.0.0:9443"\nhost = "auth.studio.example.com"\n'
                 '[authserver.tokens]\nlifetime = 60\n[authserver.tokens.permissions.connection]\n'
                 'read = ["single/*"]\nwrite = []\n')
    c = cfgmod.load(str(p), state_dir=str(tmp_path))
    assert c.issuer() == "https://auth.studio.example.com:9443/x-nmos/auth/v1.0"
    assert c.token_lifetime == 60
    assert c.token_audience() == ["*.studio.example.com"]  # wildcard of the AS's own domain
    assert c.permissions["connection"] == {"read": ["single/*"], "write": []}
    assert c.permissions["registration"] == {"read": ["*"], "write": ["*"]}  # defaults kept
    p.write_text("not toml [")
    with pytest.raises(ConfigError):
        cfgmod.load(str(p), state_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        cfgmod.load(str(tmp_path / "missing.toml"))


@pytest.mark.parametrize("host,aud", [("auth.example.com", ["*.example.com"]), ("localhost", ["localhost"]),
                                      ("192.0.2.1", ["192.0.2.1"]), ("gw.lab.local.", ["*.lab.local"]),
                                      ("Benchbox", ["benchbox"])])
def test_default_audience_is_a_domain_wildcard_or_the_host_itself_never_a_bare_star(host, aud):
    # IS-10 TOK aud: fully resolved names or wildcard domain names; "*" would open every RS (issue 22)
    assert tokens.default_audience(host) == aud


def test_a_loopback_server_names_this_machine_in_its_default_audience(tmp_path):
    import socket

    c = cfgmod.Config({}, listen="127.0.0.1:0", state_dir=str(tmp_path))
    assert c.host == "localhost"
    assert c.token_audience() == tokens.default_audience(socket.getfqdn()) != ["*"]


def test_claims_follow_is10_and_validate_against_token_schema():
    perms = tokens.check_permissions({"node": {"read": ["self"], "write": []}})
    c = tokens.build_claims(issuer="https://auth.example.com/x-nmos/auth/v1.0", audience=["*.example.com"],
                            client_id="c" * 32, sub="alice", scopes=["registration", "node", "events"],
                            permissions=perms, now=1700000000.7, lifetime=60)
    validate("token_schema.json", c)
    assert c["iat"] == 1700000000 and c["exp"] == 1700000060
    assert c["aud"] == ["*.example.com"] and c["client_id"] == "c" * 32 and c["jti"]
    assert c["scope"] == "registration node events"
    assert c["x-nmos-registration"] == {"read": ["*"], "write": ["*"]}
    assert c["x-nmos-node"] == {"read": ["self"]}  # TOK-23: empty write left out
    assert c["x-nmos-events"] == {"read": ["*"]}


def test_claim_that_grants_nothing_is_left_out():
    perms = tokens.check_permissions({"query": {"read": [], "write": []}})
    c = tokens.build_claims(issuer="https://a", audience=["*"], client_id="x", sub="y", scopes=["query"],
                            permissions=perms, now=0, lifetime=30)
    assert "x-nmos-query" not in c and c["scope"] == "query"  # TOK-23


def test_default_write_lists_cover_list_resources():
    # IS-10 §12 A6: "subscriptions/*" alone would not allow POST .../subscriptions.
    assert "subscriptions" in tokens.DEFAULT_PERMISSIONS["query"]["write"]
    assert "map/activations" in tokens.DEFAULT_PERMISSIONS["channelmapping"]["write"]


def test_parse_scope():
    assert tokens.parse_scope("registration  events registration") == ["registration", "events"]
    assert tokens.parse_scope(None) == []
    for bad in ('a"b', "a\\b", "é"):
        with pytest.raises(ValueError):
            tokens.parse_scope(bad)


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2"])
def test_password_hashes_are_salted_and_verify(method, monkeypatch):
    monkeypatch.setattr(users, "PBKDF2_ITERATIONS", 1000)
    h1 = users.hash_password("s3cret pw", method=method)
    h2 = users.hash_password("s3cret pw", method=method)
    assert h1 != h2 and h1.startswith(method + "$")
    assert users.verify_password("s3cret pw", h1)
    assert not users.verify_password("s3cret pX", h1)
    assert not users.verify_password("s3cret pw", "md5$abc")
    assert not users.verify_password("s3cret pw", "scrypt$bad")


def test_backoff_grows_per_key_then_forgets():
    # Issue 11 §3: a growing delay per key (the AS keys logins by user name and source address).
    from nmosauth_lite.authserver.throttle import Backoff

    b = Backoff(free=3, base_delay=1, max_delay=8, forget_after=100)
    for _ in range(3):
        assert b.retry_after("k", 100) == 0
        b.failed("k", 100)
    assert b.retry_after("k", 100) == 0  # `free` failures cost nothing
    b.failed("k", 100)
    assert b.retry_after("k", 100) == 1 and b.retry_after("k", 101) == 0
    delays = []
    for _ in range(5):
        b.failed("k", 150)
        delays.append(b.retry_after("k", 150))
    assert delays == [2, 4, 8, 8, 8]  # doubles up to max_delay
    assert b.retry_after("other", 150) == 0  # keys never hold each other back
    assert b.retry_after("k", 300) == 0 and b.failures("k") == 0  # forgotten after quiet
    b.failed("k", 300)
    b.succeeded("k")
    assert b.failures("k") == 0


def test_backoff_is_bounded():
    from nmosauth_lite.authserver.throttle import Backoff

    b = Backoff(max_tracked=100)
    for i in range(1000):
        b.failed(("u%d" % i, "127.0.0.2"), float(i))
    assert len(b._entries) <= 100 and b.failures(("u999", "127.0.0.2")) == 1


def test_shared_device_file_without_authserver_table_ignores_other_components(tmp_path):
    from nmosauth_lite.authserver.config import load

    f = tmp_path / "config.toml"
    f.write_text('[protect]\nupstream = "http://127.0.0.1:8080"\n\n[tokens]\nlifetime = 120\n')
    assert load(str(f), state_dir=str(tmp_path)).token_lifetime == 120


def test_address_groups_are_ipv4_addresses_or_slash_24s(tmp_path):
    # issue 23: [authserver] address_group feeds every table of the admission policy
    assert cfgmod.Config({}, state_dir=str(tmp_path)).address_group == 32
    assert cfgmod.Config({"address_group": 24}, state_dir=str(tmp_path)).address_group == 24
    for bad in (16, 0, "24"):
        with pytest.raises(ConfigError):
            cfgmod.Config({"address_group": bad}, state_dir=str(tmp_path))
