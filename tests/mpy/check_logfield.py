"""logfield.escape / escape_json on the device: control and separator characters never reach a log raw."""

import harness
from nmosauth_lite.logfield import escape, escape_json, is_unsafe


def check_line_breakers_are_escaped():
    harness.eq(escape("a\nb\r\x00\x1b\x7f"), "a\\x0ab\\x0d\\x00\\x1b\\x7f", "C0 and DEL")
    harness.eq(escape("\x85\u2028\u2029\u202e"), "\\x85\\u2028\\u2029\\u202e", "NEL, separators, bidi")
    harness.eq(escape("\U000e0041"), "\\U000e0041", "tag character")


def check_backslash_is_doubled():
    harness.eq(escape("a\\x0a"), "a\\\\x0a", "literal backslash")


def check_plain_text_is_kept():
    harness.eq(escape("client-1 \u00e9"), "client-1 \u00e9", "printable")
    harness.eq(escape(None), "-", "None")
    harness.true(not is_unsafe(" ") and is_unsafe("\t"), "space kept, tab escaped")


def check_cut_is_marked():
    harness.eq(escape("abcdef", 3), "abc\\...(3 more)", "cut")


def check_escape_json():
    harness.eq(escape_json('{"a":"x\x7fy\u2028"}'), '{"a":"x\\u007fy\\u2028"}', "json escapes")
    harness.eq(escape_json('"\U000e0041"'), '"\\udb40\\udc41"', "surrogate pair")
