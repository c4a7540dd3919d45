"""jsonshim: loads/dumps on the interpreter's own json, foreign errors become ValueError."""

import harness
from nmosauth_lite import jsonshim
from nmosauth_lite.errors import MalformedTokenError


def check_loads_str_and_bytes():
    harness.eq(jsonshim.loads('{"a":[1,2.5,"x",true,null]}'), {"a": [1, 2.5, "x", True, None]}, "str")
    harness.eq(jsonshim.loads(b'{"a":1}'), {"a": 1}, "bytes")
    harness.eq(jsonshim.loads(bytearray(b"[1]")), [1], "bytearray")
    harness.eq(jsonshim.loads('"\\u00e9"'), "\u00e9", "unicode escape")
    harness.eq(jsonshim.loads("1700000000.5"), 1700000000.5, "fractional number")


def check_big_integers_survive():
    harness.eq(jsonshim.loads("123456789012345678901234567890"), 123456789012345678901234567890, "bigint")


def check_bad_json_raises_value_error():
    for bad in ("{", "{bad}", "[1,", "", "tru", "nul", '{"a":1}x', '{"a":1}}', "1 2"):
        harness.raises(ValueError, jsonshim.loads, bad)


def check_rejects_json_grammar_errors_micropython_tolerates():
    # RFC 8259 grammar errors that MicroPython 1.27's json.loads accepts silently
    # (missing ':' or ',', trailing commas, unknown escapes, leading zeros).
    for bad in ('{"a" 1}', "[1 2]", '{"a":1,}', "[1,]", '"\\x"', "01"):
        harness.raises(ValueError, jsonshim.loads, bad)


def check_bad_utf8_raises_value_error():
    harness.raises(ValueError, jsonshim.loads, b'"\xff\xfe"')


def check_deep_nesting_is_a_value_error_or_a_value_never_a_crash():
    # CPython's decoder recurses (RecursionError -> ValueError here); MicroPython's is
    # iterative and returns the nested value. Either is safe; anything else is a bug.
    depth = 20000
    try:
        v = jsonshim.loads("[" * depth + "]" * depth)
    except ValueError:
        return
    harness.true(isinstance(v, list), "nested list")


def check_loads_as_raises_the_callers_error():
    e = harness.raises(MalformedTokenError, jsonshim.loads_as, "{", MalformedTokenError, "claims set")
    harness.eq(e.message, "claims set: bad JSON", "message")
    harness.eq(jsonshim.loads_as('{"k":"v"}', MalformedTokenError, "x"), {"k": "v"}, "good JSON")


def check_dumps_is_compact_and_round_trips():
    obj = {"kid": "k1", "keys": [1, 2, {"x": None}], "b": False}
    text = jsonshim.dumps(obj)
    harness.true(" " not in text, "no spaces in " + text)
    harness.eq(jsonshim.loads(text), obj, "round trip")
    harness.eq(jsonshim.dumps([1, "a"]), '[1,"a"]', "list")
