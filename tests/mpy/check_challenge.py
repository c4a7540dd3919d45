"""challenge: what resource servers answer a client, on MicroPython and CPython (harness checks).

Listed in lane.txt; under pytest it runs via tests/test_mpy_checks_cpython.py.
"""

import harness
from nmosauth_lite import challenge


def check_www_authenticate():
    p = challenge.parse_www_authenticate('Bearer realm="r",error=invalid_token,error_description="bad, sig"')
    harness.eq(p, {"realm": "r", "error": "invalid_token", "error_description": "bad, sig"}, "guard format")
    harness.eq(challenge.parse_www_authenticate('Basic realm="x"'), None, "no bearer")
    harness.eq(challenge.resource_error(403, 'Bearer error="insufficient_scope"'), "scope", "403")
    harness.eq(challenge.read_quoted('"a\\"b" x', 0), ('a"b', 6), "quoted-pair")
    harness.eq(challenge.read_quoted('"open', 0), ("open", -1), "not closed")


def check_retry_after():
    harness.eq(challenge.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7, "HTTP-date")
    harness.eq(challenge.parse_retry_after("5", 0), 5, "seconds")
    harness.eq(challenge.parse_retry_after("later", 0), None, "junk")
