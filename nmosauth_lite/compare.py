"""String comparisons the core needs: constant-time equality and `*` globs.

MicroPython has no hmac.compare_digest, so the core uses ct_equal everywhere;
its time depends only on the lengths, never on where the inputs differ.
glob_match serves both wildcard audiences and x-nmos path specifiers, where
`*` matches any run of characters and nothing else is special (no fnmatch, no re).
"""


def ct_equal(a, b):
    """True when bytes (or str) a and b are equal; time independent of content."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    diff = len(a) ^ len(b)
    if diff:
        b = a  # still do the loop so timing does not reveal the length mismatch early
    acc = 0
    for x, y in zip(a, b):
        acc |= x ^ y
    return (acc | diff) == 0


def glob_match(parts, text):
    """True when `text` matches the glob whose literal pieces are `parts` (pattern.split("*")).

    The first piece must be a prefix, the last a suffix, and the middle ones must
    appear in order in between; leftmost placement is always safe for `*`-only globs.
    """
    if len(parts) == 1:
        return text == parts[0]  # no `*` at all: a literal
    first = parts[0]
    last = parts[-1]
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    pos = len(first)
    end = len(text) - len(last)
    for mid in parts[1:-1]:
        i = text.find(mid, pos, end)
        if i < 0:
            return False
        pos = i + len(mid)
    return True
