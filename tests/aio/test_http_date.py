"""aio/server.http_date: the Date header without the email package (RFC 9110 §5.6.7)."""

import email.utils

from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.aio.server import http_date


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4102444800))
def test_matches_email_utils(t):
    assert http_date(t).decode() == email.utils.formatdate(t, usegmt=True)
