"""The documentation holds together (issue 22 §9): the README keeps its two commands first, has a table of
contents linking every page of docs/, links only to files that exist, never sends a reader to the
project's internal notes, keeps the figures block `make bench` rewrites, and every Python example in
the README and docs/ runs as printed (those marked for the walkthrough's lab run in
tests/test_walkthrough.py)."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, os.path.join(ROOT, "tools"))
LAB_EXAMPLE = "<!-- example: runs in the walkthrough's lab"
SERVER_EXAMPLE = "<!-- example: a server, run by "  # serves until stopped: its own test runs it


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def pages():
    return [os.path.join(ROOT, "README.md")] + sorted(os.path.join(DOCS, n) for n in os.listdir(DOCS)
                                                      if n.endswith(".md"))


def python_blocks():
    """(page, index, code, marked for the lab) of every ```python block."""
    out = []
    for page in pages():
        text = read(page)
        for i, m in enumerate(re.finditer(r"(?:(<!--[^\n]*-->)\n)?```python\n(.*?)```", text, re.S)):
            out.append((os.path.relpath(page, ROOT), i, m.group(2), bool(m.group(1) and LAB_EXAMPLE in m.group(1))))
    return out


def test_readme_opens_with_make_run_and_make_test_then_contents_and_walkthrough():
    text = read(os.path.join(ROOT, "README.md"))
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()] == ["make run", "make test"]
    assert text.index("## What this is") < text.index("## Contents") < text.index("## Protect your Node in ten minutes")
    assert "about 10 minutes" in first_block  # make test's duration, said where it is run


def test_every_docs_page_is_linked_from_the_readme():
    text = read(os.path.join(ROOT, "README.md"))
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)(?:#[^)]*)?\)", text))
    missing = ["docs/" + n for n in os.listdir(DOCS) if n.endswith(".md") and "docs/" + n not in linked]
    assert not missing, "link these from the README's contents (the More list): %s" % missing


def test_one_page_per_role():
    for role in ("resource-server", "client", "authorization-server", "device-image", "operations"):
        assert os.path.exists(os.path.join(DOCS, role + ".md")), role


@pytest.mark.parametrize("page", pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_point_at_files_that_exist_and_never_at_internal_notes(page):
    text = read(page)
    assert "../shared" not in text and "shared/spec" not in text and "shared/design" not in text
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith("#") or target.startswith("mailto:"):
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(page), target.split("#")[0]))
        assert os.path.exists(path), "%s links to missing %s" % (os.path.relpath(page, ROOT), target)


def test_the_figures_block_stays_under_benchmarks_and_make_bench_rewrites_only_it(tmp_path):
    from figures import README_BEGIN, README_END, update_readme

    text = read(os.path.join(ROOT, "README.md"))
    bench = text.index("## Benchmarks")
    a, b = text.index(README_BEGIN), text.index(README_END)
    assert bench < a < b and "\n## " not in text[bench + 3:a]
    copy = tmp_path / "README.md"
    copy.write_text(text)

    class Table:
        def markdown(self):
            return "| a | b |\n|---|---|\n| 1 | 2 |"

    assert update_readme(Table(), "Measured now.", path=str(copy))
    new = copy.read_text()
    assert new[:a] == text[:a] and new.endswith(text[b + len(README_END):])
    assert "Measured now." in new and "| 1 | 2 |" in new


def test_examples_marked_for_the_lab_are_the_ones_the_walkthrough_test_runs():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_walkthrough import lab_examples

    marked = [(page, code) for page, _i, code, lab in python_blocks() if lab]
    assert sorted(marked) == sorted(lab_examples()) and marked


def server_blocks():
    """Code of the ```python blocks marked SERVER_EXAMPLE (each one's test serves it and stops it)."""
    out = []
    for page in pages():
        out += re.findall(re.escape(SERVER_EXAMPLE) + r"[^\n]*-->\n```python\n(.*?)```", read(page), re.S)
    return out


def test_examples_marked_as_servers_are_the_ones_their_test_runs():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_readme_aiohttp import readme_block

    assert server_blocks() == [readme_block()]


@pytest.mark.parametrize("page,index,code", [b[:3] for b in python_blocks() if not b[3] and b[2] not in server_blocks()],
                         ids=lambda v: str(v) if isinstance(v, (str, int)) else "code")
def test_every_python_example_runs_as_printed(tmp_path, page, index, code):
    path = tmp_path / "example.py"
    path.write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"}
    env["HOME"] = str(tmp_path)
    r = subprocess.run([sys.executable, str(path)], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, (page, index, r.stdout, r.stderr)
