"""Log-field escaping: a value a client can influence never forges or splits a log line.

`escape(value)` writes a backslash as `\\\\` and every unsafe character as `\\xNN`,
`\\uNNNN` or `\\UNNNNNNNN`, so the result holds no control character (C0, DEL, C1 incl.
NEL), no line or paragraph separator (U+2028/U+2029), no Unicode format character
(bidi overrides, zero-width, BOM, tags) and no lone surrogate, and distinct inputs stay
distinct (the escaping is reversible). `escape_json(text)` makes a JSON document's
text log-safe the same way with JSON's own `\\uNNNN` escapes (the value is unchanged).
MicroPython-safe: no imports, string operations only.
"""

MAX_FIELD = 512  # characters of one field written to a log; the rest is cut and marked

# Inclusive ranges of unsafe code points: Unicode general categories Cc, Cf, Zl, Zp, Cs
# (Unicode 15.1), widened to whole format blocks so later Unicode versions stay covered.
_UNSAFE = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F), (0xD800, 0xDFFF), (0xFEFF, 0xFEFF),
    (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
_HEX = "0123456789abcdef"


def is_unsafe(c):
    """True for a character that must not appear raw in a log line."""
    o = ord(c)
    if 0x20 <= o < 0x7F:
        return False
    for lo, hi in _UNSAFE:
        if o < lo:
            return False
        if o <= hi:
            return True
    return False


def _hex(o, width):
    out = ""
    for _ in range(width):
        out = _HEX[o & 15] + out
        o >>= 4
    return out


def escape(value, limit=MAX_FIELD):
    """`value` (any object; None is "-") as one log-safe, unambiguous string."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else str(value)
    cut = len(text) - limit if limit is not None and len(text) > limit else 0
    if cut:
        text = text[:limit]
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif not is_unsafe(c):
            out.append(c)
        else:
            o = ord(c)
            if o <= 0xFF:
                out.append("\\x" + _hex(o, 2))
            elif o <= 0xFFFF:
                out.append("\\u" + _hex(o, 4))
            else:
                out.append("\\U" + _hex(o, 8))
    if cut:
        out.append("\\...(%d more)" % cut)  # "\." is no escape above: a cut is never ambiguous
    return "".join(out)


def escape_json(text):
    """Compact JSON text (no whitespace between tokens, so unsafe characters are only
    inside strings) with each unsafe character written as a JSON \\uNNNN escape: the
    document's value is unchanged (DEL, for one, is legal raw JSON)."""
    out = []
    for c in text:
        if not is_unsafe(c):
            out.append(c)
            continue
        o = ord(c)
        if o > 0xFFFF:  # RFC 8259 §7: a UTF-16 surrogate pair
            o -= 0x10000
            out.append("\\u" + _hex(0xD800 + (o >> 10), 4) + "\\u" + _hex(0xDC00 + (o & 0x3FF), 4))
        else:
            out.append("\\u" + _hex(o, 4))
    return "".join(out)
