"""The firmware bundle (tools/build_bundle.py): one .pyz that runs on a bare Python.

The bundle runs in a fresh venv made with --without-pip (nothing installed: no
cryptography, no ecdsa), so the pure backend and the vendored, pruned ecdsa must carry it;
and with this suite's Python (cryptography installed), where it must use cryptography.
The default build is portable (sources only), within the issue 13 size target, and stripped of
docstrings and comments with every line number kept (tools/strip_source.py): a traceback from a
device names the line of the released source.
"""

import ast
import importlib.util
import io
import json
import os
import subprocess
import sys
import tokenize
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minting import Minter, public_jwk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "nmosauth_lite", "data")
EXAMPLE_ARGS = ["--jwks", os.path.join(DATA, "is10-example-jwks.json"), "--audience", "node1.example.com",
                "--now", "1548779500", "--path", "/x-nmos/connection/v1.1/single/senders"]


MAX_BUNDLE = 300 * 1024  # issue 13 item 4: the firmware bundle's size target


PY313 = "/root/.pyenv/versions/3.13.0/bin/python3.13"  # the other tokenizer (PEP 701), when present


def load_tool(name="build_bundle"):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(out, *extra, env=None):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_bundle.py"), "--out", str(out)]
                       + list(extra), capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "nmosauth-lite.pyz"
    printed = build(out)
    return out, printed


@pytest.fixture(scope="module")
def pyc_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist-pyc") / "nmosauth-lite.pyz"
    return out, build(out, "--compile", "pyc")


@pytest.fixture(scope="module")
def keep_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist-keep") / "nmosauth-lite.pyz"
    return out, build(out, "--keep-docstrings")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A venv with nothing in it, from the interpreter this suite runs on."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    p = subprocess.run([py, "-c", "import cryptography"], capture_output=True, timeout=60)
    assert p.returncode != 0, "the bare venv must not see cryptography"
    p = subprocess.run([py, "-c", "import ecdsa"], capture_output=True, timeout=60)
    assert p.returncode != 0, "the bare venv must not see ecdsa"
    return py


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "STATE_DIRECTORY"))}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run(python, pyz, args, token=None, cwd=None):
    return subprocess.run([python, str(pyz)] + args, input=token, capture_output=True, text=True, timeout=120,
                          env=clean_env(), cwd=cwd)


def test_build_prints_the_size(bundle):
    out, printed = bundle
    assert "%d bytes" % os.path.getsize(out) in printed and "bytecode none (any Python >= 3.11)" in printed
    with open(out, "rb") as f:
        assert f.readline() == b"#!/usr/bin/env python3\n"
    assert os.stat(out).st_mode & 0o111


def test_default_bundle_is_portable_and_within_the_size_target(bundle):
    # issue 13 item 4: <= 300 KiB; .pyc only when asked (it is specific to one Python version)
    out, _ = bundle
    assert os.path.getsize(out) <= MAX_BUNDLE
    assert not [n for n in zipfile.ZipFile(out).namelist() if n.endswith(".pyc")]


def test_size_table_accounts_for_every_byte(bundle, tmp_path):
    out, printed = bundle
    tool = load_tool()
    size = os.path.getsize(out)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    for by_file in (False, True):
        rows = tool.size_table(str(out), by_file)
        assert sum(r[2] for r in rows) == size  # every byte in one row
        assert sum(r[1] for r in rows) == len(names)
        assert all(r[2] >= 0 for r in rows)
    by_file = {r[0]: r for r in tool.size_table(str(out), True)}
    assert set(names) <= set(by_file)
    grouped = {r[0]: r for r in tool.size_table(str(out))}
    assert {"nmosauth_lite/aio/", "nmosauth_lite/validator.py", "ecdsa/keys.py", "six.py"} <= set(grouped)
    # the printed table is the same table, with a total line that matches the file
    for name, n, stored, _raw in grouped.values():
        assert "| %s | %d | %.1f |" % (name, n, stored / 1024) in printed
    assert "| **total** | %d | %.1f |" % (len(names), size / 1024) in printed
    # and the file rows add up to their group
    aio = sum(r[2] for k, r in by_file.items() if k.startswith("nmosauth_lite/aio/"))
    assert aio == grouped["nmosauth_lite/aio/"][2]


def test_board_readme_size_table_is_this_build(bundle):
    # issue 12: one source of truth for the bundle size; the README's table is the build's own output
    out, _ = bundle
    with open(os.path.join(ROOT, "board", "README.md")) as f:
        text = f.read()
    table = text.split("<!-- bundle-size-table -->")[1].split("<!-- /bundle-size-table -->")[0]
    shown = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        shown[cells[0].strip("*")] = float(cells[2]) * 1024
    rows = {r[0]: r[2] for r in load_tool().size_table(str(out), by_package=True)}
    rows["total"] = os.path.getsize(out)
    assert set(shown) == set(rows)
    for name, size in rows.items():
        assert abs(shown[name] - size) <= max(0.1 * size, 1024), (name, shown[name], size)
    assert "KiB" not in text.split("## Firmware bundle")[0]  # no other bundle size above the table


def test_laptop_tools_are_left_out_and_say_so(bundle):
    # issue 13 item 4: what the device never runs stays out (demo and probe sign tokens and need
    # cryptography, which the bundle never carries); asking for them is one line, exit 2
    out, _ = bundle
    names = set(zipfile.ZipFile(out).namelist())
    assert not [n for n in names if n.startswith(load_tool().OFF_DEVICE)]
    assert "nmosauth_lite/commands/verify.py" in names and "nmosauth_lite/commands/protect.py" in names
    for command in ("demo", "probe"):
        p = run(sys.executable, out, [command])
        assert p.returncode == 2 and p.stderr == "nmosauth-lite: '%s' is not part of this build (see --help)\n" % command


def test_contents_are_the_package_and_the_vendored_modules_only(bundle, pyc_bundle):
    out, _ = bundle
    names = set(zipfile.ZipFile(out).namelist())
    assert "__main__.py" in names and "nmosauth_lite/data/build.json" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/") or "/test_" in n]
    assert "ecdsa/__init__.py" in names and "six.py" in names
    assert any(n.startswith("LICENSES/ecdsa-") for n in names) and any(n.startswith("LICENSES/six-") for n in names)
    assert not [n for n in names if n.startswith("cryptography")]
    package = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "nmosauth_lite")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            if not f.endswith(".pyc"):
                package.add(os.path.relpath(os.path.join(dirpath, f), ROOT).replace(os.sep, "/"))
    assert {n for n in package if not n.startswith(load_tool().OFF_DEVICE)} <= names  # all the device runs
    # asked for: our modules carry an unchecked-hash pyc (PEP 552 flags == 1) next to the source
    with zipfile.ZipFile(pyc_bundle[0]) as z:
        pyc = z.read("nmosauth_lite/validator.pyc")
        assert "nmosauth_lite/validator.py" in z.namelist()
    assert int.from_bytes(pyc[4:8], "little") == 1
    info = json.loads(zipfile.ZipFile(pyc_bundle[0]).read("nmosauth_lite/data/build.json"))
    assert info["bytecode"] == "pyc" and set(info["vendored"]) == {"ecdsa", "six"}
    info = json.loads(zipfile.ZipFile(out).read("nmosauth_lite/data/build.json"))
    assert info["bytecode"] == "none" and info["docstrings"] is False


def test_ecdsa_is_pruned_to_p256_p384_and_p521(bundle):
    out, _ = bundle
    tool = load_tool()
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        curves = z.read("ecdsa/curves.py").decode()
        standin = z.read("ecdsa/eddsa.py")
    assert not set(tool.ECDSA_DROP) & names
    assert standin == tool.STANDIN
    tree = ast.parse(curves)
    defined = {n.targets[0].id: n.value for n in tree.body if isinstance(n, ast.Assign)
               and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Call)
               and getattr(n.value.func, "id", None) == "Curve"}
    assert set(defined) == {"NIST256p", "NIST384p", "NIST521p"}  # ES256, ES384, ES512 (RFC 7518 §3.4)
    assert "NIST224p = None" in curves and "Ed25519 = None" in curves


def test_verify_is10_example_without_cryptography(bundle, bare_python, tmp_path):
    out, _ = bundle
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read()
    p = run(bare_python, out, ["verify"] + EXAMPLE_ARGS + ["--token", "-"], token, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200
    p = run(bare_python, out, ["verify", "--backend", "cryptography"] + EXAMPLE_ARGS + ["--token", "-"], token)
    assert p.returncode == 2 and "not installed" in p.stderr


def test_verify_es256_with_the_vendored_ecdsa(bundle, bare_python, tmp_path):
    out, _ = bundle
    m = Minter()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(m.ec256, "ec-256")]}))
    token = m.token("ES256", aud=["node1.example.com"])
    args = ["verify", "--jwks", str(jwks), "--audience", "node1.example.com", "--now", str(m.NOW),
            "--path", "/x-nmos/node/v1.3/self", "--token", "-"]
    p = run(bare_python, out, args, token)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200
    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    p = run(bare_python, out, args, bad)
    assert p.returncode == 1 and json.loads(p.stdout)["status"] == 401


def test_doctor_from_the_bundle_without_cryptography(bundle, bare_python, tmp_path):
    out, _ = bundle
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    p = run(bare_python, out, ["doctor", "--json", "--state-dir", str(state)])
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["python"]["bundle"] is True
    assert doc["backends"]["auto"] == "pure" and doc["backends"]["cryptography"]["available"] is False
    assert doc["backends"]["pure"]["rs512"] and doc["backends"]["pure"]["es256"]
    assert doc["clock"]["build_time_source"] == "bundle build.json"


def test_uses_cryptography_when_the_target_has_it(bundle, tmp_path):
    out, _ = bundle
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    p = run(sys.executable, out, ["doctor", "--json", "--state-dir", str(state)])
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["backends"]["auto"] == "cryptography" and doc["backends"]["cryptography"]["rs512"]
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read()
    p = run(sys.executable, out, ["verify", "--backend", "cryptography"] + EXAMPLE_ARGS + ["--token", "-"], token)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == 200


def test_pyc_build_is_asked_for_and_works(bundle, pyc_bundle, bare_python):
    out, printed = pyc_bundle
    assert "bytecode pyc for Python %d.%d" % sys.version_info[:2] in printed
    assert os.path.getsize(out) > os.path.getsize(bundle[0])
    with open(os.path.join(DATA, "is10-example-token.txt")) as f:
        token = f.read()
    p = run(bare_python, out, ["verify"] + EXAMPLE_ARGS + ["--token", "-"], token)
    assert p.returncode == 0, p.stderr


def has_docstring(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            return True
    return False


def test_default_bundle_has_no_docstrings_and_is_smaller_than_keep_docstrings(bundle, keep_bundle):
    out, printed = bundle
    assert "docstrings and comments stripped (line numbers kept)" in printed
    assert "docstrings kept" in keep_bundle[1]
    assert os.path.getsize(out) < os.path.getsize(keep_bundle[0])
    with zipfile.ZipFile(keep_bundle[0]) as z:
        assert z.read("nmosauth_lite/validator.py") == open(os.path.join(ROOT, "nmosauth_lite", "validator.py"),
                                                             "rb").read()
    with zipfile.ZipFile(out) as z:
        sources = [n for n in z.namelist() if n.endswith(".py") and n != "__main__.py"]
        assert len(sources) > 60
        with_doc = [n for n in sources if has_docstring(z.read(n)) and not z.read(n) == load_tool().STANDIN]
    assert with_doc == []


@pytest.mark.parametrize("variant", ["bundle", "keep_bundle"])
@pytest.mark.parametrize("alg", ["RS512", "ES256", "ES384", "ES512"])
def test_verify_without_cryptography(variant, alg, request, bare_python, tmp_path):
    # the pure backend (pow() for RS512, the pruned vendored ecdsa for ES*): accepts the good
    # token and refuses a tampered signature and a tampered payload (IS-10 RS-07 / RFC 7515 §5.2)
    out, _ = request.getfixturevalue(variant)
    m = Minter()
    key = {"RS512": (m.rsa, "rsa-1"), "ES256": (m.ec256, "ec-256"), "ES384": (m.ec384, "ec-384"),
           "ES512": (m.ec521, "ec-521")}[alg]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(key[0], key[1])]}))
    token = m.token(alg, aud=["node1.example.com"])
    args = ["verify", "--jwks", str(jwks), "--audience", "node1.example.com", "--now", str(m.NOW),
            "--path", "/x-nmos/node/v1.3/self", "--backend", "pure", "--token", "-"]
    p = run(bare_python, out, args, token)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200
    head, body, sig = token.split(".")
    for bad in (".".join((head, body, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB"))),
                ".".join((head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig))):
        p = run(bare_python, out, args, bad)
        assert p.returncode == 1 and json.loads(p.stdout)["status"] == 401, p.stderr


def test_builds_are_reproducible(tmp_path):
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    build(tmp_path / "a.pyz", env=env)
    build(tmp_path / "b.pyz", env=env)
    assert (tmp_path / "a.pyz").read_bytes() == (tmp_path / "b.pyz").read_bytes()


# --- docstrings and comments stripped, line numbers kept (tools/strip_source.py) ---

def our_sources(names):
    return sorted(n for n in names if n.startswith("nmosauth_lite/") and n.endswith(".py"))


def test_every_bundled_module_of_ours_keeps_its_line_numbers(bundle):
    out, _ = bundle
    strip = load_tool("strip_source")
    with zipfile.ZipFile(out) as z:
        names = our_sources(z.namelist())
        assert len(names) > 60
        for name in names:
            with open(os.path.join(ROOT, name), "rb") as f:
                source = f.read().decode()
            bundled = z.read(name).decode()
            assert bundled.count("\n") == source.count("\n"), name
            strip.check(source, bundled, name)  # same AST modulo docstrings, every node where it was
            # line by line: blank, the source's code with its comment dropped, or a docstring's `...`
            for i, (b, s) in enumerate(zip(bundled.split("\n"), source.split("\n")), 1):
                assert b == "" or s.startswith(b) or b.endswith("..."), (name, i, b, s)
        with open(os.path.join(ROOT, "nmosauth_lite", "jws.py"), "rb") as f:
            assert len(z.read("nmosauth_lite/jws.py")) < len(f.read())


FRAMES = r'''
import json, sys, traceback
from nmosauth_lite import jws
out = []
for token in ("x", "e30.e30.!!", "eyJhbGciOiJSUzUxMiJ9.@@.AA"):
    try:
        jws.parse(token)
    except Exception as e:
        out.append([[f.filename.replace("\\", "/").split("nmosauth_lite/")[-1], f.lineno, f.name, f.line]
                    for f in traceback.extract_tb(e.__traceback__) if "nmosauth_lite" in f.filename])
print(json.dumps(out))
'''


def test_traceback_from_the_bundle_names_the_source_line(bundle):
    # the point of keeping line numbers: a field report's traceback points at the released source
    out, _ = bundle
    seen = {}
    for where in (str(out), ROOT):
        env = dict(clean_env(), PYTHONPATH=where)
        p = subprocess.run([sys.executable, "-c", FRAMES], capture_output=True, text=True, timeout=60, env=env,
                           cwd=os.path.dirname(str(out)))
        assert p.returncode == 0, p.stderr
        seen[where] = json.loads(p.stdout)
    from_bundle, from_source = seen[str(out)], seen[ROOT]
    assert len(from_bundle) == 3 and all(len(tb) >= 2 for tb in from_bundle)
    assert any(f[0] == "b64url.py" for tb in from_bundle for f in tb)  # a second module, deeper in
    assert [[f[:3] for f in tb] for tb in from_bundle] == [[f[:3] for f in tb] for tb in from_source]
    for tb_b, tb_s in zip(from_bundle, from_source):
        for fb, fs in zip(tb_b, tb_s):
            assert fb[3] and fs[3].startswith(fb[3]), (fb, fs)  # zipimport's line is the same code


STRIP_ALL = r'''
import hashlib, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tools"))
import strip_source
h = hashlib.sha256()
top = os.path.join(sys.argv[1], "nmosauth_lite")
for dirpath, dirnames, filenames in sorted(os.walk(top)):
    dirnames.sort()
    for name in sorted(filenames):
        if name.endswith(".py"):
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(strip_source.strip_source(f.read(), name))
print(sys.version_info[:2], h.hexdigest())
'''


def test_the_311_and_313_tokenizers_strip_the_package_alike():
    # PEP 701: from 3.12 an f-string is FSTRING_START/MIDDLE/END tokens, a '#' in it text, not a comment;
    # the bundle is built on the lane's Python, so both must give the same bytes (and pass check())
    if not os.path.exists(PY313):
        pytest.skip("no Python 3.13 at %s" % PY313)
    digests = set()
    for python in (sys.executable, PY313):
        p = subprocess.run([python, "-c", STRIP_ALL, ROOT], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        digests.add(p.stdout.split(")")[1].strip())
    assert len(digests) == 1


def test_cookie_shebang_hash_in_strings_and_pragmas_are_handled():
    strip = load_tool("strip_source")
    src = ('#!/usr/bin/env python3\n# -*- coding: latin-1 -*-\n"""Module doc."""\n'
           'S = "caf\xe9 # not a comment"  # noqa: E501\n'
           "T = '''two  \n# lines, trailing spaces kept  \n'''   \n"
           'U = f"{S!r:>{40}} # {len(S)}"  # type: ignore\n'
           'def f(x):  # pragma: no cover\n    """Doc\n\n    more."""\n\n'
           '    return x + 1  # comment\n\n\ndef g(): "doc"; return 2\n').encode("latin-1")
    out = strip.strip_source(src, "t.py")
    text = out.decode("latin-1")
    lines = text.split("\n")
    assert lines[0] == "#!/usr/bin/env python3" and lines[1] == "# -*- coding: latin-1 -*-"
    assert lines[2] == "" and lines[3] == 'S = "caf\xe9 # not a comment"'
    assert lines[4] == "T = '''two  " and lines[5] == "# lines, trailing spaces kept  " and lines[6] == "'''"
    assert lines[7] == 'U = f"{S!r:>{40}} # {len(S)}"'
    assert lines[8] == "def f(x):" and lines[9:12] == ["", "", ""]
    assert lines[13] == "    return x + 1" and lines[16] == "def g(): ...  ; return 2"
    assert "noqa" not in text and "pragma" not in text and "type: ignore" not in text
    a, b = {}, {}
    exec(compile(src, "t.py", "exec"), a)
    exec(compile(out, "t.py", "exec"), b)
    assert [a[k] for k in "STU"] == [b[k] for k in "STU"] and b["f"](1) == 2 and b["g"]() == 2
    assert b.get("__doc__") is None and b["f"].__doc__ is None and b["g"].__doc__ is None
    assert b["f"].__code__.co_firstlineno == a["f"].__code__.co_firstlineno == 9


def test_check_refuses_a_moved_line_or_a_different_program():
    strip = load_tool("strip_source")
    src = 'def f():\n    """doc"""\n    return 1\n'
    strip.check(src, "def f():\n\n    return 1\n")
    for bad in ("def f():\n    return 1\n\n",  # renumbered (ast.unparse does this)
                "def f():\n\n    return 2\n",  # another program
                "def f():\n\n  return 1\n",  # a column moved
                "def f(:\n\n    return 1\n"):  # does not parse
        with pytest.raises(strip.NotStrippable):
            strip.check(src, bad)
    with pytest.raises(strip.NotStrippable):  # a module that does not parse stops the build, plainly
        strip.strip_source(b"def f(:\n    pass\n", "broken.py")


text_bits = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\\"'\u2028\u2029"
                                           "\x85\x0c"), max_size=12)


@st.composite
def modules(draw):
    """A module with the shapes the stripper must get right: docstrings alone, first, on the header
    line, multi-line; comments alone and after code; '#' and trailing spaces inside strings and
    f-strings; continuations. Every function ends in `raise` so a traceback line can be compared."""
    out = []
    if draw(st.booleans()):
        out.append('"""%s\n%s"""' % (draw(text_bits), draw(text_bits)))
    for i in range(draw(st.integers(1, 6))):
        doc, com, val = draw(text_bits), draw(text_bits), draw(text_bits)
        shape = draw(st.sampled_from(["alone", "first", "header", "header_more", "multi", "none", "class",
                                      "async", "two_strings"]))
        body = ["    s%d = '%s # %s'  # %s" % (i, val, com, com), "    raise ValueError(%d)  # %s" % (i, com)]
        if draw(st.booleans()):
            body.insert(0, "    t = f\"{%d + 1:>{%d}} # {'%s'}\"   # %s" % (i, i + 1, val, com))
        if draw(st.booleans()):
            body.insert(0, "    u = '''%s  \n# %s   \n'''" % (val, com))
        if draw(st.booleans()):
            body.insert(0, "    v = (1 +  # %s\n         2) + \\\n        3" % com)
        head = "def f%d():" % i
        if shape == "alone":
            out += [head, '    """%s"""' % doc, "# %s" % com, "f%d_ = None" % i]
            continue
        if shape == "header":
            out += [head + ' "%s"' % doc]
            continue
        if shape == "header_more":
            out += [head + ' "%s"; raise ValueError(%d)' % (doc, i)]
            continue
        if shape == "first":
            out += [head, '    """%s"""   ' % doc] + body
        elif shape == "multi":
            out += [head, '    """%s' % doc, "", "    %s  " % doc, '    """  # %s' % com] + body
        elif shape == "class":
            out += ["class C%d:" % i, '    """%s"""' % doc, "", "    def m(self, s=None):",
                    '        """%s"""' % doc, "        # %s" % com] + ["    " + b for b in body]
            out += ["def f%d():" % i, "    C%d().m()" % i]
        elif shape == "async":
            out += ["async def f%d():" % i, "    '%s'" % doc] + body
        elif shape == "two_strings":
            out += [head, '    """%s"""' % doc, '    """%s"""' % val] + body
        else:
            out += [head] + body
        out.append("")
    return "\n".join(out) + "\n"


def tracebacks(source):
    """{function: line of its raise} for every plain function `fN` of the module."""
    ns = {}
    exec(compile(source, "<m>", "exec"), ns)
    lines = {}
    for name, fn in sorted(ns.items()):
        if name.startswith("f") and callable(fn) and not name.endswith("_") and hasattr(fn, "__code__") \
                and not fn.__code__.co_flags & 0x80:  # not a coroutine function
            try:
                fn()
            except ValueError as e:
                tb = e.__traceback__
                while tb.tb_next:
                    tb = tb.tb_next
                lines[name] = tb.tb_lineno
    return lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules())
def test_stripping_generated_modules_keeps_lines_and_program(source):
    strip = load_tool("strip_source")
    out = strip.strip_text(source)
    strip.check(source, out)  # parses, same AST modulo docstrings, every node where it was
    assert out.count("\n") == source.count("\n")
    for line, was in zip(out.split("\n"), source.split("\n")):  # no trailing blanks but inside a string
        assert line == line.rstrip() or line == was
    assert not [t for t in tokenize.generate_tokens(io.StringIO(out).readline) if t.type == tokenize.COMMENT]
    assert tracebacks(out) == tracebacks(source)  # the traceback names the same line
    a, b = {}, {}
    exec(compile(source, "<m>", "exec"), a)
    exec(compile(out, "<m>", "exec"), b)
    assert b.get("__doc__") is None or b["__doc__"] == a["__doc__"]
    for name in a:
        if name.startswith("f") and hasattr(a[name], "__code__"):
            assert b[name].__code__.co_firstlineno == a[name].__code__.co_firstlineno


PEP701 = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
import strip_source
src = """X = 1
A = f"{"#"} {X}"  # a comment
B = f\"\"\"{
    X  # a comment inside the field (3.12+)
    + 1
} # not a comment, two trailing spaces kept:  
\"\"\"
C = f'{f'{X:#x}'}'  # nested, same quotes
def f():
    f"docstring? no: an f-string is never one"
    return f"{X!r:>{X + 3}}#"
"""
out = strip_source.strip_text(src)
strip_source.check(src, out)
a, b = {}, {}
exec(src, a)
exec(out, b)
print(json.dumps([out, [a[k] for k in "ABC"] + [a["f"]()], [b[k] for k in "ABC"] + [b["f"]()]]))
'''


def test_pep701_f_strings_strip_on_313():
    # 3.12+ tokenizes f-strings into parts (PEP 701): '#' inside is text, a comment in a field is a comment
    if not os.path.exists(PY313):
        pytest.skip("no Python 3.13 at %s" % PY313)
    p = subprocess.run([PY313, "-c", PEP701, os.path.join(ROOT, "tools")], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    out, before, after = json.loads(p.stdout)
    assert before == after == ["# 1", "2 # not a comment, two trailing spaces kept:  \n", "0x1", "   1#"]
    assert "# a comment" not in out and "nested" not in out  # and check() passed in the child: lines kept
    # inside a multi-line f-string the stripper keeps line ends as they are (conservative): only the comment goes
    assert out.split("\n")[3] == "    X  " and out.split("\n")[9] == '    f"docstring? no: an f-string is never one"'
