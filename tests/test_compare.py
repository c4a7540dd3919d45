"""compare.py: constant-time equality and the `*` glob shared by audiences and path specifiers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.compare import ct_equal, glob_match


def test_ct_equal():
    assert ct_equal(b"abc", b"abc") and ct_equal("abc", "abc") and ct_equal(b"", b"")
    assert not ct_equal(b"abc", b"abd") and not ct_equal(b"abc", b"ab") and not ct_equal(b"", b"x")


@pytest.mark.parametrize("pattern, text, want", [
    ("*", "", True), ("*", "a/b", True), ("a*", "a", True), ("*a", "ba", True), ("a*b", "ab", True),
    ("a*b", "a/x/b", True), ("a*b", "ba", False), ("a*b*c", "abc", True), ("a*b*c", "acb", False),
    ("ab*ba", "aba", False),  # prefix and suffix must not overlap
    ("*.example.com", "example.com", False), ("*.example.com", "a.b.example.com", True),
])
def test_glob_match(pattern, text, want):
    assert glob_match(pattern.split("*"), text) is want


def _reference(pattern, text):
    """A plain recursive matcher: `*` is any run of characters, everything else literal."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(_reference(pattern[1:], text[i:]) for i in range(len(text) + 1))
    return bool(text) and text[0] == pattern[0] and _reference(pattern[1:], text[1:])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab*/", max_size=8), st.text(alphabet="ab/", max_size=10))
def test_glob_match_agrees_with_a_reference_matcher(pattern, text):
    assert glob_match(pattern.split("*"), text) is _reference(pattern, text)
