"""Ids that start with '-' on the command line (issue 12 §2, the 1-in-64 `make test` flake).

argparse read an AS-generated kid such as "-3aN..." as an unknown option, so `as keys
withdraw KID`, `as client remove|approve ID` and every option value (`--client-secret -x...`)
failed with "the following arguments are required". cli._Parser now takes any dash-token
that is neither one of the parser's options nor option-shaped as a value. The properties are
checked against every positional and every string option of the real parser tree, so a new
command is covered without editing this file.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmosauth_lite import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- the parser tree -----------------------------------------------------------------------
def _subparsers(parser):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a
    return None


def _leaves(parser=None, path=()):
    """(command path, leaf parser) for every runnable command of the real CLI."""
    parser = parser or cli.build_parser()
    sub = _subparsers(parser)
    if sub is None:
        yield path, parser
        return
    for name, child in sub.choices.items():
        yield from _leaves(child, path + (name,))


def _required(parser):
    """argv filling the leaf's required options with values its types accept."""
    out = []
    for a in parser._actions:
        if a.option_strings and a.required:
            out += [a.option_strings[-1], str(a.choices[0]) if a.choices else "1"]
    return out


def _positionals(parser):
    return [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]


def _string_options(parser):
    """Options that take one free-form string (ids, secrets, names, paths)."""
    return [a for a in parser._actions if a.option_strings and a.nargs is None and not a.choices
            and a.type is None and not isinstance(a, (argparse._StoreConstAction, argparse._HelpAction))
            and a.option_strings[-1].startswith("--")]


_PARSER = []


def _parse(argv):
    # one real parser tree for every parse: parse_args keeps no state between calls, and building
    # the tree (every command's module) per parse made these properties 30 s of the py lane
    if not _PARSER:
        _PARSER.append(cli.build_parser())
    return _PARSER[0].parse_args(argv)


LEAVES = list(_leaves())
ID_TAKING = [(path, p, a) for path, p in LEAVES for a in _positionals(p)]
OPTION_TAKING = [(path, p, a) for path, p in LEAVES for a in _string_options(p)]


def test_the_tree_has_the_id_taking_commands_of_the_issue():
    names = {(" ".join(path), a.dest) for path, _, a in ID_TAKING}
    assert {("as keys withdraw", "kid"), ("as client remove", "client_id"),
            ("as client approve", "client_id"), ("as user add", "username")} <= names


def test_no_option_is_longer_than_the_value_cut_off():
    # a longer option name would be read as a value: the cut-off must stay above every option
    for path, p in LEAVES:
        for a in p._actions:
            for o in a.option_strings:
                assert len(o) <= cli.MAX_OPTION_NAME and (len(o) == 2 or cli.is_option_shaped(o)), (path, o)


# --- ids the AS generates -----------------------------------------------------------------
generated_ids = st.one_of(
    st.text(alphabet=B64URL, min_size=43, max_size=43),      # kid = RFC 7638 thumbprint (SHA-256)
    st.text(alphabet=B64URL, min_size=32, max_size=32),      # client_id = credential(24)
    st.text(alphabet=B64URL, min_size=22, max_size=22))      # jti, family ids = token_urlsafe(16)
dash_ids = st.one_of(generated_ids.map(lambda s: "-" + s[1:]), generated_ids.map(lambda s: "--" + s[2:]))
# what an operator types: any printable id starting with '-' that is not shaped like an option
typed_ids = st.text(alphabet=B64URL + ".:~", min_size=1, max_size=60).map(lambda s: "-" + s).filter(
    lambda s: not cli.is_option_shaped(s) and s != "--")


def test_generated_ids_are_never_option_shaped():
    for _ in range(2000):
        for n in (16, 24, 32):
            v = secrets.token_urlsafe(n)
            assert not cli.is_option_shaped("-" + v[1:]) and not cli.is_option_shaped("--" + v[2:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ident=st.one_of(dash_ids, typed_ids))
def test_every_positional_takes_an_id_starting_with_dash(ident):
    for path, p, a in ID_TAKING:
        ns = _parse(list(path) + _required(p) + [ident])
        assert getattr(ns, a.dest) == ident, (path, a.dest)
        if "--state-dir" not in p._option_string_actions:
            continue  # e.g. `audit report FILE`: no option with a value to mix in
        # options may come after the id, in --opt VALUE and --opt=VALUE forms
        ns = _parse(list(path) + [ident, "--state-dir", "/x"] + _required(p))
        assert getattr(ns, a.dest) == ident and ns.state_dir == "/x"
        ns = _parse(list(path) + ["--state-dir=/y", ident] + _required(p))
        assert getattr(ns, a.dest) == ident and ns.state_dir == "/y"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ident=st.one_of(dash_ids, typed_ids))
def test_every_string_option_takes_a_value_starting_with_dash(ident):
    for path, p, a in OPTION_TAKING:
        ns = _parse(list(path) + _required(p) + [a.option_strings[-1], ident] + ["x"] * len(_positionals(p)))
        got = getattr(ns, a.dest)
        assert got == ident or got == [ident] or (isinstance(got, list) and got[-1] == ident), (path, a.dest)


@settings(max_examples=40, deadline=None)
@given(ident=st.text(alphabet=B64URL + ".", min_size=1, max_size=40).map(lambda s: "-" + s))
def test_anything_after_double_dash_is_the_id(ident):
    # the escape hatch for ids that do look like options (e.g. "-abc")
    for path, p, a in ID_TAKING:
        ns = _parse(list(path) + _required(p) + ["--", ident])
        assert getattr(ns, a.dest) == ident


# --- options still behave as options --------------------------------------------------------
def _run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_help_is_still_help(capsys):
    code, out, err = _run(["as", "keys", "withdraw", "--help"], capsys)
    assert code == 0 and "usage: nmosauth-lite as keys withdraw" in out and "kid" in out


@pytest.mark.parametrize("typo", ["--stat-dir", "--state-dri", "-x", "--verbose", "--state-dir-x=/d"])
def test_an_option_typo_is_reported_not_taken_as_the_id(typo, capsys):
    code, out, err = _run(["as", "keys", "withdraw", typo, "-3aNkid"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "unrecognized arguments: " + typo in err and "goes after --" in err


def test_an_option_abbreviation_still_works():
    assert _parse(["as", "keys", "withdraw", "--state", "/d", "-Kid"]).state_dir == "/d"


def test_a_missing_id_is_still_an_error(capsys):
    code, _, err = _run(["as", "keys", "withdraw", "--state-dir", "/d"], capsys)
    assert code == 2 and "required: kid" in err


def test_an_option_value_that_looks_like_an_option_needs_the_equals_form(capsys):
    # "--scope -abc" is ambiguous by shape; "--scope=-abc" is not
    code, _, err = _run(["as", "client", "add", "--name", "n", "--scope", "-abc"], capsys)
    assert code == 2 and "expected one argument" in err
    assert _parse(["as", "client", "add", "--name", "n", "--scope=-abc"]).scope == "-abc"


def test_negative_numbers_are_values():
    assert _parse(["as", "keys", "rotate", "--delay", "-5"]).delay == -5


# --- end to end, real store and real processes ------------------------------------------------
def _env(home):
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=str(home))
    env.pop("STATE_DIRECTORY", None)
    return env


def _as(state, home, *args):
    return subprocess.run([sys.executable, "-m", "nmosauth_lite", "as"] + list(args) + ["--state-dir", str(state)],
                          capture_output=True, text=True, env=_env(home), timeout=60)


def _store(state):
    from nmosauth_lite.authserver import config
    from nmosauth_lite.authserver.service import open_store

    return open_store(config.load(None, state_dir=str(state)))


def _dash_key():
    """A real ES256 key whose generated kid (RFC 7638 thumbprint) starts with '-' (1 in 64)."""
    from nmosauth_lite.authserver.keys import generate, public_of

    for _ in range(5000):
        pem = generate("ES256", 2048)
        _, pub = public_of(pem, "ES256")
        if pub.kid.startswith("-"):
            return pub.kid, pem
    raise AssertionError("no '-' kid in 5000 keys")  # (63/64)^5000: never


def test_withdraw_a_generated_kid_that_starts_with_dash(tmp_path):
    state = tmp_path / "state"
    assert _as(state, tmp_path, "keys", "list").returncode == 0  # creates the store
    kid, pem = _dash_key()
    store = _store(state)
    try:
        now = time.time()
        with store.transaction():
            store.add_key(kid, "ES256", pem, now, now)
    finally:
        store.close()
    r = _as(state, tmp_path, "keys", "withdraw", kid)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["withdrawn"] == kid
    states = {k["kid"]: k["state"] for k in json.loads(_as(state, tmp_path, "keys", "list").stdout)}
    assert states.get(kid, "withdrawn") != "active"


@pytest.mark.parametrize("prefix", ["-", "--"])
def test_remove_and_approve_clients_whose_id_starts_with_dash(tmp_path, prefix):
    state = tmp_path / "state"
    assert _as(state, tmp_path, "client", "list").returncode == 0
    ids = [prefix + secrets.token_urlsafe(24)[len(prefix):] for _ in range(2)]
    store = _store(state)
    try:
        with store.transaction():
            for cid, status in zip(ids, ("pending", "active")):
                store.add_client(cid, secret_hash=None, auth_method="none", scope="registration",
                                 grant_types=["client_credentials"], redirect_uris=[], metadata={},
                                 status=status, now=time.time())
    finally:
        store.close()
    r = _as(state, tmp_path, "client", "approve", ids[0])
    assert r.returncode == 0, r.stderr
    r = _as(state, tmp_path, "client", "remove", ids[1])
    assert r.returncode == 0, r.stderr
    listed = {c["client_id"]: c["status"] for c in json.loads(_as(state, tmp_path, "client", "list").stdout)}
    assert listed == {ids[0]: "active"}
    # an unknown id that starts with '-' reaches the command (exit 1), not argparse (exit 2)
    r = _as(state, tmp_path, "client", "remove", prefix + "Unknown_id_0123456789")
    assert r.returncode == 1 and "no client " + prefix + "Unknown_id_0123456789" in r.stderr
