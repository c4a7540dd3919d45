"""A Node's registration response_types (RFC 7591 §2; issue 12 §1): chosen from the AS metadata
(["none"] only when listed in response_types_supported, else []), and one retry with the other
form when a strict AS refuses it (invalid_redirect_uri, or invalid_client_metadata about
response types). The peer is a real HTTPS server on loopback whose rules we set per test."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_support import make_pki, run
from nmosauth_lite import oauth
from nmosauth_lite.aio.oauth import CredentialStore, OAuthClient, ServerSelector
from nmosauth_lite.aio.server import HTTPServer
from nmosauth_lite.aio.tlsutil import server_context
from nmosauth_lite.aio.web import json_response

NAME = "ACME Encoder-9 SN-RT"


class StrictAS:
    """RFC 8414 metadata + RFC 7591 registration. `refuse(types)` -> None (accept) or (error, description)."""

    def __init__(self, pki, supported, refuse):
        self.pki, self.supported, self.refuse = pki, supported, refuse
        self.bodies = []

    async def _handle(self, request):
        if request.path == "/.well-known/oauth-authorization-server":
            i = self.issuer
            return json_response({"issuer": i, "token_endpoint": i + "/token", "registration_endpoint": i + "/reg",
                                  "jwks_uri": i + "/jwks", "response_types_supported": self.supported,
                                  "grant_types_supported": ["client_credentials"]})
        if request.path == "/reg" and request.method == "POST":
            body = json.loads(await request.read(65536))
            self.bodies.append(body)
            refusal = self.refuse(body.get("response_types"))
            if refusal is not None:
                return json_response({"error": refusal[0], "error_description": refusal[1]}, 400)
            return json_response(dict(body, client_id="c-%d" % len(self.bodies), client_secret="s3cret"), 201)
        return json_response({"error": "not_found"}, 404)

    async def start(self):
        self.server = HTTPServer(self._handle, ssl=server_context(self.pki.cert, self.pki.key))
        await self.server.start("127.0.0.1", 0)
        self.issuer = "https://localhost:%d" % self.server.port
        return self

    async def close(self):
        await self.server.shutdown(1.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("rt-pki")))


def _register(tmp_path, pki, supported, refuse):
    async def go():
        s = await StrictAS(pki, supported, refuse).start()
        sel = ServerSelector(issuers=[s.issuer], ca_file=pki.ca_cert)
        client = OAuthClient(sel, CredentialStore(str(tmp_path / "node"), str(tmp_path / "keys" / "k")), name=NAME,
                             scope="registration")
        try:
            rec = await sel.run(client.registration, 10)
            return s.bodies, rec, None
        except oauth.OAuthError as e:
            return s.bodies, None, e
        finally:
            await sel.close()
            await s.close()
    return run(go(), 60)


def _needs_redirect(types):  # what an OpenID-certified AS does with "none" and no redirect_uris
    return ("invalid_redirect_uri", "redirect_uris is mandatory property") if types else None


def test_metadata_without_none_gets_an_empty_list_first_time(tmp_path, pki):
    # The old client sent ["none"] here and got 400 invalid_redirect_uri.
    bodies, rec, err = _register(tmp_path, pki, ["code"], _needs_redirect)
    assert err is None and rec["client_id"] == "c-1"
    assert [b["response_types"] for b in bodies] == [[]]


def test_metadata_listing_none_gets_none_as_in_the_is10_example(tmp_path, pki):
    bodies, rec, err = _register(tmp_path, pki, ["code", "none"], lambda t: None)
    assert err is None and [b["response_types"] for b in bodies] == [["none"]]


def test_a_refused_none_is_retried_once_with_the_empty_list(tmp_path, pki):
    # The AS lists "none" but still wants redirect URIs for it (oidc-provider's default set does).
    bodies, rec, err = _register(tmp_path, pki, ["code", "none"], _needs_redirect)
    assert err is None and rec["client_id"] == "c-2"
    assert [b["response_types"] for b in bodies] == [["none"], []]


def test_a_refused_empty_list_is_retried_once_with_none(tmp_path, pki):
    refuse = (lambda t: None if t else ("invalid_client_metadata", "response_types must not be empty"))
    bodies, rec, err = _register(tmp_path, pki, ["code"], refuse)
    assert err is None and [b["response_types"] for b in bodies] == [[], ["none"]]


def test_both_forms_refused_names_the_server_and_both_refusals(tmp_path, pki):
    refuse = (lambda t: ("invalid_client_metadata", "response_types %s not allowed" % json.dumps(t)))
    bodies, rec, err = _register(tmp_path, pki, ["code"], refuse)
    assert len(bodies) == 2 and rec is None  # once, never a loop
    msg = err.message
    assert bodies and "https://localhost:" in msg and NAME in msg
    assert "response_types [] (" in msg and 'with ["none"] (' in msg and err.status == 400
    assert err.error == "invalid_client_metadata"


def test_another_refusal_is_not_retried_and_names_the_server(tmp_path, pki):
    bodies, rec, err = _register(tmp_path, pki, ["code"], lambda t: ("invalid_client_metadata", "scope unknown"))
    assert len(bodies) == 1 and err.error == "invalid_client_metadata" and "https://localhost:" in err.message


# --- sans-I/O rules, over generated inputs -------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=8),
                 st.lists(st.sampled_from(["code", "none", "token", "id_token", "code id_token", "x"]), max_size=5)))
def test_node_response_types_follow_the_metadata(supported):
    got = oauth.node_response_types({"response_types_supported": supported})
    assert got == (["none"] if isinstance(supported, list) and "none" in supported else [])
    body = oauth.build_registration(NAME, "registration", "client_credentials", "client_secret_basic",
                                    response_types=got)
    assert body["response_types"] == got and "redirect_uris" not in body
    assert oauth.other_response_types(got) == ([] if got else ["none"])


@settings(max_examples=300, deadline=None)
@given(st.integers(200, 599), st.one_of(st.none(), st.sampled_from(
    ["invalid_redirect_uri", "invalid_client_metadata", "invalid_token", "access_denied"])), st.text(max_size=40))
def test_only_response_type_refusals_are_retried(status, error, desc):
    e = oauth.oauth_error("x", status=status, error=error, description=desc)
    want = status == 400 and (error == "invalid_redirect_uri" or (
        error == "invalid_client_metadata" and ("response" in desc.lower() or "redirect" in desc.lower())))
    assert oauth.is_response_types_refusal(e) is want


def test_build_registration_keeps_the_is10_example_by_default_and_refuses_other_forms():
    assert oauth.build_registration(NAME, "registration", "client_credentials",
                                    "client_secret_basic")["response_types"] == ["none"]
    with pytest.raises(oauth.ConfigError):
        oauth.build_registration(NAME, "registration", "client_credentials", "client_secret_basic",
                                 response_types=["code"])
