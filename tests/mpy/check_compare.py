"""compare.ct_equal: the constant-time equality the core uses instead of hmac.compare_digest."""

import harness
from nmosauth_lite.compare import ct_equal


def check_equal_bytes():
    harness.true(ct_equal(b"", b""), "empty")
    harness.true(ct_equal(b"\x00\xffabc", b"\x00\xffabc"), "same bytes")
    harness.true(ct_equal(bytes(range(256)), bytes(range(256))), "256 bytes")


def check_unequal_same_length():
    harness.true(not ct_equal(b"abc", b"abd"), "last byte")
    harness.true(not ct_equal(b"\x00bc", b"\x01bc"), "first byte")
    harness.true(not ct_equal(b"\x80", b"\x00"), "high bit")


def check_unequal_lengths():
    harness.true(not ct_equal(b"abc", b"abcd"), "prefix")
    harness.true(not ct_equal(b"abcd", b"abc"), "longer first")
    harness.true(not ct_equal(b"", b"a"), "empty vs one")
    harness.true(not ct_equal(b"a", b""), "one vs empty")


def check_str_and_bytes_mix():
    harness.true(ct_equal("secret", b"secret"), "str vs bytes")
    harness.true(ct_equal("secret", "secret"), "str vs str")
    harness.true(not ct_equal("secret", b"Secret"), "case differs")


def check_returns_a_bool():
    harness.eq(ct_equal(b"a", b"a"), True, "equal")
    harness.eq(ct_equal(b"a", b"b"), False, "unequal")
