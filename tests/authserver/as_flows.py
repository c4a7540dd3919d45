"""Authorization code flow helpers shared by the authorization, interop and restart tests.

A "browser" here is requests without redirects: open the authorization URL, read the
login form, post user name and password, and read the 302 back to the client.
"""

import base64
import hashlib
import html.parser
import secrets
import urllib.parse

from as_support import token_form

CB = "https://controller.example.com/callback"


class _Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.action = None
        self.inputs = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.inputs[a["name"]] = a.get("value", "")


def parse_form(text):
    p = _Form()
    p.feed(text)
    return p


def pkce(method="S256"):
    verifier = secrets.token_urlsafe(48)
    if method == "plain":
        return verifier, verifier
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(http, srv, **params):
    url = srv.metadata["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)
    return http.get(url, allow_redirects=False, timeout=10)


def submit(http, srv, page, **fields):
    form = parse_form(page.text)
    data = dict(form.inputs, **fields)
    return http.post(urllib.parse.urljoin(srv.metadata["authorization_endpoint"], form.action), data=data,
                     allow_redirects=False, timeout=10)


def redirect_params(resp):
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])  # AS-10: never 307
    loc = resp.headers["location"]
    assert loc.startswith(CB) or loc.startswith("http://127.0.0.1:9999/cb")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def login(http, srv, user, client, scope="query connection", method="S256", state="st-1", password=None, **extra):
    verifier, challenge = pkce(method)
    page = authorize(http, srv, response_type="code", client_id=client["client_id"], redirect_uri=CB, scope=scope,
                      state=state, code_challenge=challenge, code_challenge_method=method, **extra)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    resp = submit(http, srv, page, username=user[0], password=password or user[1], action="approve")
    return redirect_params(resp), verifier


def exchange(http, srv, client, code, verifier, auth=None, redirect_uri=CB):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client["client_id"]}
    if verifier is not None:
        form["code_verifier"] = verifier
    return token_form(http, srv, form, auth)


def refresh(http, srv, client, rt, **extra):
    return token_form(http, srv, dict({"grant_type": "refresh_token", "refresh_token": rt,
                                       "client_id": client["client_id"]}, **extra))
