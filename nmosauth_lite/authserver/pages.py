"""HTML of the authorization endpoint: one login + consent form, and an error page.

Plain HTML with inline CSS (no scripts), every value escaped, served with headers that
forbid framing (clickjacking, RFC 6749 §10.13) and caching. The form posts back to the
authorization endpoint with an opaque request id; the request itself stays server-side.
"""

import html

SECURITY_HEADERS = [
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("pragma", "no-cache"),
    ("x-frame-options", "DENY"),
    # No form-action: browsers apply it to the redirect that follows the form post.
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
]

_STYLE = """body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;
box-shadow:0 1px 4px #0002}h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
ul{padding-left:1.2rem}code{background:#eef;padding:0 .2rem}.err{color:#a00;font-weight:600}
.buttons{margin-top:1.2rem;display:flex;gap:.8rem}button{padding:.5rem 1.2rem;font-size:1rem}
small{color:#555}"""


def _page(title, body):
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<title>%s</title><style>%s</style></head><body><main>%s</main></body></html>\n"
            % (html.escape(title), _STYLE, body)).encode("utf-8")


def login_page(*, action, request_id, client_name, scopes, redirect_host, username="", error=None):
    e = html.escape
    items = "".join("<li><code>%s</code></li>" % e(s) for s in scopes)
    err = '<p class="err" role="alert">%s</p>' % e(error) if error else ""
    body = (
        "<h1>Sign in to authorize</h1>"
        "<p><strong>%s</strong> asks for access to these NMOS APIs:</p><ul>%s</ul>"
        "<p><small>You will be sent back to <code>%s</code>.</small></p>%s"
        '<form method="post" action="%s" autocomplete="off">'
        '<input type="hidden" name="request_id" value="%s">'
        '<label for="u">User name</label><input id="u" type="text" name="username" value="%s" required autofocus>'
        '<label for="p">Password</label><input id="p" type="password" name="password">'
        '<div class="buttons"><button type="submit" name="action" value="approve">Sign in and allow</button>'
        '<button type="submit" name="action" value="deny" formnovalidate>Deny</button></div></form>'
    ) % (e(client_name), items, e(redirect_host), err, e(action), e(request_id), e(username))
    return _page("Authorize %s" % client_name, body)


def error_page(message):
    body = "<h1>Authorization request refused</h1><p class=\"err\">%s</p>" % html.escape(message)
    return _page("Authorization error", body)
