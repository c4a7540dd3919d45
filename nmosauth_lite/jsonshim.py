"""One JSON surface, `loads` and `dumps`, on CPython and MicroPython.

On MicroPython the built-in `json` (or `ujson`) is used; on CPython always the
stdlib `json`, even when PyPI's `ujson` is installed, because its number and
error handling differ. Foreign exceptions are translated at this boundary: bad
JSON raises ValueError-derived errors of the caller's choosing via `loads_as`.
"""

try:
    import json as _json
except ImportError:  # pragma: no cover - MicroPython builds without json
    import ujson as _json

_CPYTHON = hasattr(_json, "JSONDecodeError")
if _CPYTHON:
    _decoder = _json.JSONDecoder()
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
    _loads = _json.loads

    def _dumps(obj):
        return _json.dumps(obj, separators=(",", ":"))


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


def loads_as(text, error_cls, what):
    """Parse JSON; on any defect raise `error_cls(what + ": bad JSON")`."""
    try:
        return loads(text)
    except ValueError:
        raise error_cls(what + ": bad JSON")


def dumps(obj):
    """Compact JSON text (no spaces), ASCII-only on CPython."""
    return _dumps(obj)
