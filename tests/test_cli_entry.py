"""The entry point's first words: Python < 3.11 refused in one line, a missing optional
package named with the extra that installs it (issue 12 §2), never a traceback."""

import os
import subprocess
import sys

import pytest

from nmosauth_lite import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, *argv, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=str(tmp_path))
    env.pop("STATE_DIRECTORY", None)
    return subprocess.run([sys.executable, "-c", code] + list(argv), capture_output=True, text=True,
                          env=env, timeout=120, cwd=str(tmp_path))


@pytest.mark.parametrize("version", [(3, 10, 12, "final", 0), (3, 8, 0, "final", 0)])
def test_old_python_gets_one_line_from_the_entry_module(version, tmp_path):
    # the real entry module (python -m nmosauth_lite / the console script) on a faked version
    code = ("import sys, runpy; sys.version_info = %r; runpy.run_module('nmosauth_lite', run_name='__main__')"
            % (version,))
    r = _python(code, "verify", "--help", tmp_path=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "nmosauth-lite needs Python 3.11 or newer (this is %d.%d)\n" % version[:2]


def test_the_guard_passes_supported_versions():
    cli.check_python((3, 11, 0))
    cli.check_python((3, 13, 1))
    with pytest.raises(SystemExit) as e:
        cli.check_python((3, 10, 99))
    assert e.value.code == 2


NO_CRYPTO = ("import sys; sys.modules['cryptography'] = None\n"  # as if it were not installed
             "from nmosauth_lite.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("argv", [["demo"], ["as", "serve", "--listen", "127.0.0.1:0"], ["as", "keys", "rotate"],
                                  ["as", "client", "iat"], ["probe", "--issuer-only"]])
def test_without_cryptography_the_as_commands_name_the_extra(argv, tmp_path):
    extra = [] if argv == ["demo"] else ["--state-dir", str(tmp_path / "state")]  # probe, as: a temp state
    r = _python(NO_CRYPTO, *(argv + extra), tmp_path=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    # (an admin command on a new state dir first says it creates the store)
    assert r.stderr.splitlines()[-1] == ("nmosauth-lite %s: needs the 'cryptography' package: "
                                         "pip install 'nmosauth-lite[as]'" % argv[0])
    assert len(r.stderr.splitlines()) == (1 if argv[:2] in (["demo"], ["as", "serve"]) or argv[0] == "probe" else 2)


def test_only_our_optional_packages_become_the_hint():
    assert "nmosauth-lite[crypto]" in cli.missing_extra(ModuleNotFoundError("x", name="cryptography.x509"), "verify")
    assert "nmosauth-lite[fallback]" in cli.missing_extra(ModuleNotFoundError("x", name="ecdsa"), "verify")
    assert cli.missing_extra(ModuleNotFoundError("x", name="cryptographyx"), "as") is None
    assert cli.missing_extra(ModuleNotFoundError("x", name="tomllib"), "as") is None
    assert cli.missing_extra(ModuleNotFoundError("x"), "as") is None
