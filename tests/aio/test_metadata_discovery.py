"""Metadata discovery for a configured issuer (issue 20 §2): RFC 8414 first, then the segment appended
to the issuer, then OpenID Connect's openid-configuration; the issuer must match in every case.

Real HTTPS stand-in (tests/standin_as.py) for the key store, the client's ServerSelector and the
`jwks` CLI; aio/metadata.find_metadata's rules on hostile answers with a scripted GET (a transport
that returns exactly the bytes under test, as httpcore's tests do).
"""

import asyncio
import json
import logging
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minting import Minter, public_jwk
from standin_as import StandinAS
from nmosauth_lite import TokenValidator, issuer
from nmosauth_lite.aio.keystore import KeyStore
from nmosauth_lite.aio.metadata import find_metadata, ordered
from nmosauth_lite.aio.oauth.servers import ServerSelector, Unavailable
from nmosauth_lite.errors import NmosAuthError, RemoteError

AUD = "node1.example.com"
PATH = "/x-nmos/node/v1.3/self"
FORMS = issuer.METADATA_FORMS


@pytest.fixture(scope="module")
def m():
    return Minter()


@pytest.fixture
def standin(tmp_path, m):
    s = StandinAS(str(tmp_path), path="/realms/nmos")
    s.jwks = {"keys": [public_jwk(m.rsa, "rsa-1")]}
    yield s
    s.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def refresh_store(standin, state_dir):
    async def go():
        store = KeyStore([standin.issuer], state_dir=str(state_dir), ca_file=standin.pki.ca_cert)
        try:
            errs = await store.refresh()
            return store, errs, store.status()
        finally:
            await store.close()

    return run(go())


@pytest.mark.parametrize("form", FORMS)
def test_key_store_finds_metadata_in_each_place_and_says_which(standin, tmp_path, m, form, caplog):
    # RFC 8414 §3.1; Keycloak's <issuer>/.well-known/...; OIDC Discovery 1.0 §4
    standin.forms = (form,)
    with caplog.at_level(logging.INFO, logger="nmosauth_lite.metadata"):
        store, errs, status = refresh_store(standin, tmp_path / "state")
    assert errs == {standin.issuer: None}
    assert status[0]["metadata_form"] == form and status[0]["kids"] == ["rsa-1"]
    # tried in order, stopping at the first place that has it
    tried = FORMS[:FORMS.index(form) + 1]
    assert set(standin.form_hits) == set(tried) and all(standin.form_hits[f] == 1 for f in tried)
    logged = [r.getMessage() for r in caplog.records if "metadata from" in r.getMessage()]
    assert logged == ["issuer %s: metadata from %s (%s form)" % (standin.issuer, status[0]["metadata_url"], form)]
    tok = m.token("RS512", claims=m.claims(iss=standin.issuer, aud=[AUD]))
    assert TokenValidator(keys=store, audience=[AUD]).check(tok, "GET", PATH, now=m.NOW).status == 200


def test_rfc8414_form_wins_when_a_server_answers_everywhere(standin, tmp_path):
    standin.forms = FORMS
    _, errs, status = refresh_store(standin, tmp_path / "state")
    assert errs == {standin.issuer: None} and status[0]["metadata_form"] == "rfc8414"
    assert standin.form_hits == {"rfc8414": 1}
    assert status[0]["metadata_url"] == "%s/.well-known/oauth-authorization-server/realms/nmos" % standin.base


@pytest.mark.parametrize("form", FORMS)
def test_metadata_naming_another_issuer_is_refused_in_every_form(standin, tmp_path, form):
    # RFC 8414 §3.3 / OIDC Discovery §4.3: the issuer in the document equals the configured one
    standin.forms = (form,)
    standin.mode = "wrong-issuer"
    store, errs, status = refresh_store(standin, tmp_path / "state")
    assert errs[standin.issuer] and "no metadata" in errs[standin.issuer]
    assert status[0]["kids"] == [] and status[0]["metadata_form"] is None
    assert standin.hits["jwks"] == 0  # no key was fetched on the word of a wrong document


def test_server_error_ends_the_search_at_once(standin, tmp_path):
    standin.forms = ("openid-configuration",)
    standin.mode = "500"
    _, errs, _ = refresh_store(standin, tmp_path / "state")
    assert "HTTP 500" in errs[standin.issuer]
    assert standin.form_hits == {"rfc8414": 1}  # 5xx: the server is in trouble, not "not here"


def test_jwks_show_reports_the_form_that_answered(standin, tmp_path):
    standin.forms = ("openid-configuration",)
    state = str(tmp_path / "state")
    cmd = [sys.executable, "-m", "nmosauth_lite", "jwks"]
    p = subprocess.run(cmd + ["refresh", "--issuer", standin.issuer, "--ca", standin.pki.ca_cert, "--state-dir", state],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["metadata_form"] == "openid-configuration"
    p = subprocess.run(cmd + ["show", "--state-dir", state], capture_output=True, text=True, timeout=60)
    shown = json.loads(p.stdout)[0]
    assert shown["metadata_form"] == "openid-configuration"
    assert shown["metadata_url"] == standin.issuer + "/.well-known/openid-configuration"


def test_client_selector_uses_the_same_discovery_and_tries_the_known_place_first(standin, caplog):
    standin.forms = ("issuer-appended",)

    async def go():
        sel = ServerSelector(issuers=[standin.issuer], ca_file=standin.pki.ca_cert, role="node",
                             auth_method="client_secret_basic", register=False, metadata_ttl=0)
        try:
            c = (await sel.candidates())[0]
            doc = await sel.metadata(c)
            first = dict(standin.form_hits)
            await sel.metadata(c)  # ttl 0: fetched again, from the place that answered
            return doc, c.answered, first, dict(standin.form_hits)
        finally:
            await sel.close()

    with caplog.at_level(logging.INFO, logger="nmosauth_lite.metadata"):
        doc, answered, first, second = run(go())
    assert doc["issuer"] == standin.issuer
    assert answered == ("issuer-appended", standin.issuer + "/.well-known/oauth-authorization-server")
    assert first == {"rfc8414": 1, "issuer-appended": 1}
    assert second == {"rfc8414": 1, "issuer-appended": 2}
    assert sum("metadata from" in r.getMessage() for r in caplog.records) == 1  # logged when found, not each time


def test_client_selector_refuses_a_wrong_issuer_everywhere(standin):
    standin.forms = FORMS
    standin.mode = "wrong-issuer"

    async def go():
        sel = ServerSelector(issuers=[standin.issuer], ca_file=standin.pki.ca_cert, register=False)
        try:
            with pytest.raises(Unavailable) as e:
                await sel.metadata((await sel.candidates())[0])
            return e.value.message
        finally:
            await sel.close()

    assert "no metadata" in run(go())
    assert standin.form_hits == {f: 1 for f in FORMS}


# --- the rules of find_metadata, on hostile answers --------------------------------------------

ISS = "https://as.example.com/realms/nmos"
GOOD = json.dumps({"issuer": ISS, "jwks_uri": "https://as.example.com/jwks"}).encode()


class Answer:
    def __init__(self, status, body):
        self.status = status
        self.body = body


def scripted(answers):
    """A GET that answers from `answers` (url -> (status, body); absent: 404) and records the URLs asked."""
    asked = []

    async def get(url):
        asked.append(url)
        status, body = answers.get(url, (404, b"{}"))
        return Answer(status, body)

    return get, asked


HOSTILE = [
    b"", b"null", b"[]", b'"text"', b"{", b"\xff\xfe", b'{"issuer": 5, "jwks_uri": "https://a/j"}',
    json.dumps({"issuer": ISS + "/", "jwks_uri": "https://a/j"}).encode(),  # not exactly the issuer
    json.dumps({"issuer": ISS.upper(), "jwks_uri": "https://a/j"}).encode(),
    json.dumps({"issuer": ISS, "jwks_uri": "http://a/j"}).encode(),  # jwks_uri must be https
    json.dumps({"issuer": ISS, "jwks_uri": "https://a/j", "token_endpoint": ["x"]}).encode(),
    b'{"issuer": "' + b"a" * (issuer.MAX_METADATA_BYTES + 1) + b'"}',
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_documents_in_every_place_end_in_remote_error(body):
    urls = issuer.metadata_urls(ISS)
    get, asked = scripted({u: (200, body) for _, u in urls})
    with pytest.raises(RemoteError) as e:
        run(find_metadata(get, ISS, urls))
    assert asked == [u for _, u in urls] and "no metadata" in e.value.message


def test_a_hostile_answer_in_one_place_does_not_hide_the_next():
    urls = issuer.metadata_urls(ISS)
    get, asked = scripted({urls[0][1]: (200, HOSTILE[7]), urls[2][1]: (200, GOOD)})
    found = run(find_metadata(get, ISS, urls))
    assert (found.form, found.url, found.doc["issuer"]) == ("openid-configuration", urls[2][1], ISS)
    assert len(asked) == 3


def test_ordered_puts_the_known_place_first_and_keeps_the_rest():
    urls = issuer.metadata_urls(ISS)
    assert ordered(urls, urls[2][1]) == [urls[2], urls[0], urls[1]]
    assert ordered(urls, None) == urls and ordered(urls, "https://elsewhere/") == urls


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([200, 200, 301, 404, 410, 500, 503]),
                          st.one_of(st.just(GOOD), st.binary(max_size=64),
                                    st.dictionaries(st.sampled_from(["issuer", "jwks_uri", "x"]),
                                                    st.one_of(st.text(max_size=40), st.just(ISS), st.integers()),
                                                    max_size=3).map(lambda d: json.dumps(d).encode()))),
                min_size=3, max_size=3))
def test_find_metadata_returns_a_checked_document_or_raises_our_error(script):
    urls = issuer.metadata_urls(ISS)
    get, asked = scripted({u: a for (_, u), a in zip(urls, script)})
    try:
        found = run(find_metadata(get, ISS, urls))
    except NmosAuthError:
        assert all(s != 200 or b != GOOD for s, b in script[:len(asked)])
        return
    assert found.doc["issuer"] == ISS and found.url == asked[-1]
    assert all(s < 500 for s, _ in script[:len(asked)])
