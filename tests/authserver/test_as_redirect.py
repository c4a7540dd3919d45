"""Issue 11 §3: registered redirect URIs are exact, absolute, without whitespace or fragment (RFC 6749 §3.1.2)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from as_support import as_pki, as_server, http  # noqa: F401 (fixtures)
from nmosauth_lite.authserver.protocol import OAuthError
from nmosauth_lite.authserver.registration import check_redirect_uri

GOOD = ["https://controller.example.com/cb", "https://c.example.com:8443/a/b?x=1&y=%20",
        "http://127.0.0.1:9999/cb", "http://[::1]:8080/cb", "https://h.example/p;q=1~_.-!$'()*+,@"]
# Whitespace and control characters of every kind, and non-ASCII (an IRI is not a URI).
BAD_CHARS = st.one_of(st.sampled_from(" \t\n\r\x0b\x0c\x00\x1b\x7f\x85\xa0\u2028\u2029\u3000\ufeff\u200b"),
                      st.characters(max_codepoint=0x20), st.characters(min_codepoint=0x7f))


@pytest.mark.parametrize("uri", GOOD)
def test_exact_absolute_uris_are_accepted(uri):
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize("uri", [" https://controller.example.com/cb", "https://controller.example.com/cb ",
                                 "\thttps://c.example.com/cb", "https://c.example.com/cb#frag",
                                 "https://c.example.com/c b", "/relative/cb", "cb", "ftp://c.example.com/cb",
                                 "https:///nohost", "http://c.example.com/cb", ""])
def test_surrounding_whitespace_fragments_and_relative_uris_are_refused(uri):
    with pytest.raises(OAuthError) as e:
        check_redirect_uri(uri)
    assert e.value.error == "invalid_redirect_uri"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(GOOD), BAD_CHARS, st.integers(min_value=0, max_value=200))
def test_any_whitespace_or_control_character_anywhere_is_refused(uri, bad, pos):
    pos = pos % (len(uri) + 1)
    with pytest.raises(OAuthError) as e:
        check_redirect_uri(uri[:pos] + bad + uri[pos:])
    assert e.value.error == "invalid_redirect_uri"


def test_registration_with_a_leading_space_is_refused(as_server, http):
    body = {"client_name": "c", "scope": "query", "grant_types": ["authorization_code"],
            "redirect_uris": [" https://controller.example.com/cb"]}
    resp = http.post(as_server.metadata["registration_endpoint"], data=json.dumps(body), timeout=10,
                     headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_redirect_uri"
