"""One JSON surface, `loads` and `dumps`, on CPython and MicroPython.

On MicroPython the built-in `json` (or `ujson`) is used; on CPython always the
stdlib `json`, even when PyPI's `ujson` is installed, because its number and
error handling differ. Both interpreters accept exactly RFC 8259 JSON: CPython's
NaN/Infinity extensions are refused, and on MicroPython, whose parser lets
missing commas, trailing commas and bad escapes through, a linear grammar check
(with a nesting cap) runs first. Every defect becomes ValueError.
"""

try:
    import json as _json
except ImportError:  # pragma: no cover - MicroPython builds without json
    import ujson as _json

MAX_DEPTH = 64  # JWTs, JWKS and metadata nest 3-4 levels

_CPYTHON = hasattr(_json, "JSONDecodeError")


def _reject_constant(name):
    raise ValueError("JSON: %s is not JSON" % name)  # RFC 8259 §6: no NaN or Infinity


if _CPYTHON:
    _decoder = _json.JSONDecoder(parse_constant=_reject_constant)
    _scan = _decoder.scan_once  # the C scanner; decode() adds two regex passes around it

    def _loads(text):
        # Fast path for the common case (no surrounding whitespace): the C scanner
        # alone, then the same end-of-text rule json.loads applies.
        if text and text[0] in "{[":
            try:
                obj, end = _scan(text, 0)
            except StopIteration:
                raise ValueError("JSON: no value")
            if end == len(text):
                return obj
        return _decoder.decode(text)
    _encoder = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
    _dumps = _encoder.encode
else:  # pragma: no cover - MicroPython

    def _loads(text):
        check_grammar(text)
        return _json.loads(text)

    def _dumps(obj):
        return _json.dumps(obj, separators=(",", ":"))


_WS = " \t\n\r"
_ESCAPES = '"\\/bfnrtu'
_HEXDIGITS = "0123456789abcdefABCDEF"
_DIGITS = "0123456789"


def _number(t, i, n):
    if t[i] == "-":
        i += 1
    if i >= n or t[i] not in _DIGITS:
        raise ValueError("JSON: bad number")
    if t[i] == "0":
        i += 1
    else:
        while i < n and t[i] in _DIGITS:
            i += 1
    if i < n and t[i] == ".":
        i += 1
        if i >= n or t[i] not in _DIGITS:
            raise ValueError("JSON: bad number")
        while i < n and t[i] in _DIGITS:
            i += 1
    if i < n and t[i] in "eE":
        i += 1
        if i < n and t[i] in "+-":
            i += 1
        if i >= n or t[i] not in _DIGITS:
            raise ValueError("JSON: bad number")
        while i < n and t[i] in _DIGITS:
            i += 1
    return i


def _string(t, i, n):
    i += 1  # opening quote
    while True:
        if i >= n:
            raise ValueError("JSON: unterminated string")
        c = t[i]
        if c == '"':
            return i + 1
        if c < " ":
            raise ValueError("JSON: control character in string")
        if c == "\\":
            if i + 1 >= n or t[i + 1] not in _ESCAPES:
                raise ValueError("JSON: bad escape")
            if t[i + 1] == "u":
                h = t[i + 2 : i + 6]
                if len(h) != 4 or not all(x in _HEXDIGITS for x in h):
                    raise ValueError("JSON: bad \\u escape")
                i += 6
                continue
            i += 2
            continue
        i += 1


def check_grammar(t):
    """Raise ValueError unless `t` is exactly one RFC 8259 value (nesting <= MAX_DEPTH)."""
    n = len(t)
    stack = []  # "{" or "["
    i = 0
    expect = "value"  # value | key | colon | comma_or_end
    while True:
        while i < n and t[i] in _WS:
            i += 1
        if i >= n:
            if expect == "comma_or_end" and not stack:
                return
            raise ValueError("JSON: unexpected end")
        c = t[i]
        if expect == "comma_or_end":
            if not stack:
                raise ValueError("JSON: trailing data")
            if c == ",":
                expect = "key" if stack[-1] == "{" else "value"
                i += 1
                continue
            if (c == "}" and stack[-1] == "{") or (c == "]" and stack[-1] == "["):
                stack.pop()
                i += 1
                continue
            raise ValueError("JSON: expected , or end of container")
        if expect == "colon":
            if c != ":":
                raise ValueError("JSON: expected :")
            expect = "value"
            i += 1
            continue
        if expect == "key":
            if c != '"':
                raise ValueError("JSON: expected a member name")
            i = _string(t, i, n)
            expect = "colon"
            continue
        # a value
        if c == "{" or c == "[":
            if len(stack) >= MAX_DEPTH:
                raise ValueError("JSON: nested too deeply")
            stack.append(c)
            i += 1
            j = i
            while j < n and t[j] in _WS:
                j += 1
            if j < n and t[j] == ("}" if c == "{" else "]"):
                stack.pop()
                i = j + 1
                expect = "comma_or_end"
            else:
                expect = "key" if c == "{" else "value"
            continue
        if c == '"':
            i = _string(t, i, n)
        elif c == "-" or c in _DIGITS:
            i = _number(t, i, n)
        elif t.startswith("true", i):
            i += 4
        elif t.startswith("false", i):
            i += 5
        elif t.startswith("null", i):
            i += 4
        else:
            raise ValueError("JSON: unexpected character")
        expect = "comma_or_end"


def loads(text):
    """Parse JSON text (str or bytes). Raises ValueError on any defect."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeError:
            raise ValueError("JSON text is not UTF-8")
    try:
        return _loads(text)
    except ValueError:
        raise
    except Exception as e:  # RecursionError, MicroPython's RuntimeError, ...
        raise ValueError("JSON: " + type(e).__name__)


def object_or_none(raw):
    """Fast path: the dict that UTF-8 `raw` holds when it is exactly one JSON object, else None
    (then `loads` says why). On CPython: the C scanner alone, no intermediate copies."""
    try:
        if _CPYTHON:
            text = raw.decode("utf-8")
            if text[0] != "{":
                return None
            obj, end = _scan(text, 0)
            if end != len(text):
                return None
        else:  # pragma: no cover - MicroPython
            obj = loads(raw)
    except Exception:  # any defect: the caller's full path reports it
        return None
    return obj if type(obj) is dict else None


def loads_as(text, error_cls, what):
    """Parse JSON; on any defect raise `error_cls(what + ": bad JSON")`."""
    try:
        return loads(text)
    except ValueError:
        raise error_cls(what + ": bad JSON")


def dumps(obj):
    """Compact JSON text (no spaces), ASCII-only on CPython."""
    return _dumps(obj)
