"""`verify`'s cold-start argument reader (issue 13 item 2) never reads a command line differently
from argparse: both come from the one OPTIONS table, and parse_fast answers None (argparse
decides) for anything it does not read exactly as argparse would."""

import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nmosauth_lite import cli
from nmosauth_lite.commands import verify

FLAGS = [o[0] for o in verify.OPTIONS]
WORDS = FLAGS + ["--aud", "--jwks=", "--now=-5", "--strict=1", "--token=-x", "-h", "--help", "--", "--bogus",
                 "x", "-", "-5", "1.5", "nan", "1_0", "", "-x", "a b", "-a b", "node1.example.com"]


def _argparse(argv):
    try:
        ns = cli.build_parser("verify").parse_args(["verify"] + argv)
    except SystemExit:
        return None
    return vars(ns)


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=10))
@example(["--audience", "a", "--token", "-"])
@example(["--audience", "a", "--audience", "b", "--now", "1e3", "--strict", "--token=-"])
@example(["--audience=a", "--method", "POST", "--method", "GET"])
def test_parse_fast_reads_every_line_as_argparse_does_or_leaves_it_to_argparse(argv):
    fast = verify.parse_fast(argv)
    if fast is None:
        return
    ref = _argparse(argv)
    assert ref is not None, "parse_fast accepted a line argparse refuses"
    got = vars(fast)
    assert set(got) == set(ref)
    for k in ref:
        assert _same(got[k], ref[k]), k


def test_usual_lines_take_the_fast_path():
    args = verify.parse_fast(["--jwks", "k.json", "--audience", "node1.example.com", "--now", "5",
                              "--path", "/x-nmos/node/v1.3/self", "--token", "-"])
    assert args is not None and args.audience == ["node1.example.com"] and args.now == 5.0
    assert args._run is verify.run and args.command == "verify"


@pytest.mark.parametrize("argv", [["-h"], ["--audience"], [], ["--now", "soon", "--audience", "a"]])
def test_help_and_errors_still_come_from_argparse(argv):
    assert verify.parse_fast(argv) is None


def test_a_cold_verify_imports_no_argparse(tmp_path):
    # The cost named in issue 13: argparse, gettext and locale before the first decision.
    code = ("import sys; from nmosauth_lite.cli import main\n"
            "sys.argv = ['nmosauth-lite', 'verify', '--jwks', sys.argv[1], '--audience', 'a', '--token', 'x']\n"
            "rc = main(sys.argv[1:])\n"
            "print(sorted(m for m in ('argparse', 'gettext', 'locale') if m in sys.modules))\n")
    jwks = tmp_path / "k.json"
    jwks.write_text('{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",'
                    '"y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}')
    p = subprocess.run([sys.executable, "-S", "-c", code, str(jwks)], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": ":".join(sys.path)})
    assert p.stdout.strip().splitlines()[-1] == "[]", p.stdout + p.stderr
