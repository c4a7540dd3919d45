"""Constant-time comparison for secrets and MACs.

MicroPython has no hmac.compare_digest, so the core uses this helper everywhere.
Time depends only on the lengths, never on where the inputs differ.
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
