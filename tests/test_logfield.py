"""logfield: no log line a client can influence contains a raw control or separator character.

Property tests over generated text (hypothesis): the escaped field never holds a character
of Unicode category Cc, Cf, Zl, Zp or Cs, never splits under str.splitlines, and decodes
back to the input (so the escaping is unambiguous). Issue 11 §3, log forging.
"""

import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite import logfield

_BAD_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
FORGERS = ["\r", "\n", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u200b",
           "\ufeff", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\ud800", "\U000e0041"]

# Text that leans on the dangerous characters, plus any code point at all (lone surrogates too).
_text = st.text(alphabet=st.one_of(st.sampled_from(FORGERS + ["\\", "x", "u", "U", "0", "a", " ", "."]),
                                   st.characters(min_codepoint=0, max_codepoint=0x10FFFF)), max_size=60)


def unescape(text):
    """The inverse of logfield.escape (for fields that were not cut)."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        kind = text[i + 1]
        if kind == "\\":
            out.append("\\")
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}[kind]
        out.append(chr(int(text[i + 2:i + 2 + width], 16)))
        i += 2 + width
    return "".join(out)


def _is_log_safe(line):
    return all(unicodedata.category(c) not in _BAD_CATEGORIES for c in line) and len(line.splitlines()) <= 1


@settings(max_examples=400, deadline=None)
@given(_text)
def test_escaped_field_is_one_clean_line_and_reversible(s):
    out = logfield.escape(s, limit=None)
    assert _is_log_safe(out)
    assert unescape(out) == s  # injective: two inputs never give the same field


@settings(max_examples=200, deadline=None)
@given(_text, _text)
def test_distinct_inputs_never_collide(a, b):
    if a != b:
        assert logfield.escape(a, limit=None) != logfield.escape(b, limit=None)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text, _text, max_size=4))
def test_escape_json_keeps_the_value_and_is_log_safe(d):
    text = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
    out = logfield.escape_json(text)
    assert _is_log_safe(out)
    assert json.loads(out) == json.loads(text)


def test_every_code_point_of_a_bad_category_is_unsafe():
    # The table in logfield is fixed (MicroPython has no unicodedata): it must cover this Python's Unicode.
    missing = [hex(i) for i in range(0x110000)
               if unicodedata.category(chr(i)) in _BAD_CATEGORIES and not logfield.is_unsafe(chr(i))]
    assert missing == []


def test_known_forgeries_are_escaped():
    assert logfield.escape("bob\naudit authorize.approve actor=admin") == "bob\\x0aaudit authorize.approve actor=admin"
    assert logfield.escape("a\r\x00\x1b[31m\x7f\u2028\u2029") == "a\\x0d\\x00\\x1b[31m\\x7f\\u2028\\u2029"
    assert logfield.escape("back\\x0a") == "back\\\\x0a"  # a literal backslash-x is not a newline
    assert logfield.escape(None) == "-" and logfield.escape(42) == "42"
    assert logfield.escape("élan ü") == "élan ü"  # ordinary letters stay readable


def test_long_fields_are_cut_and_marked():
    out = logfield.escape("a" * 600)
    assert out.startswith("a" * logfield.MAX_FIELD) and out.endswith("\\...(88 more)")
    assert logfield.escape("b" * 600, limit=10) == "b" * 10 + "\\...(590 more)"
