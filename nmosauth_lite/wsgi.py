"""WSGI middleware: the resource-server guard in front of a WSGI application (Flask...).

`NmosAuthWSGI(app, guard)` decides every request with the Guard (IS-10 RS-22..RS-41)
before the application sees it: denied requests get the guard's answer (NMOS error
JSON, WWW-Authenticate, CORS), CORS pre-flight is answered by the guard, allowed
responses get the CORS headers the application did not set.

Which path is judged (RS-32): PEP 3333 `PATH_INFO` is already percent-decoded, so
`%2F` and `/` look the same there. The raw request target is used when the server
gives it (`RAW_URI`: gunicorn, werkzeug; `REQUEST_URI`: uWSGI, werkzeug, mod_wsgi);
otherwise SCRIPT_NAME + PATH_INFO re-encoded, plus QUERY_STRING (wsgiref). Either
way it is the full path as the client sent it, mount prefix included. WSGI servers
merge repeated headers, so a repeated Authorization header cannot be told apart.

Under the IPMX profile a verified TLS client certificate binds the token's client_id (SEC-44).
WSGI has no standard field for it: the mod_ssl variables are read when the server sets them
(`SSL_CLIENT_VERIFY`, and the PEM in `SSL_CLIENT_CERT`: Apache `SSLOptions +StdEnvVars
+ExportCertData`, or the same names passed by nginx/uWSGI). Without them no binding applies.
"""

import time
import urllib.parse

_PATH_SAFE = "/!$&'()*+,;=:@-._~"  # RFC 3986 pchar minus '%'
_STATUS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           503: "Service Unavailable"}
_SPECIAL = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


def environ_target(environ):
    """The request target the guard judges (see the module docstring)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    # PEP 3333: the bytes of the path, carried as latin-1 code points.
    path = urllib.parse.quote(path.encode("latin-1", "replace"), safe=_PATH_SAFE)
    qs = environ.get("QUERY_STRING")
    return path + "?" + qs if qs else path


def environ_headers(environ):
    """HTTP_* (and CONTENT_*) variables as the guard's lower-case header dict."""
    out = {}
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            out[key[5:].replace("_", "-").lower()] = value
        elif key in _SPECIAL and value:
            out[_SPECIAL[key]] = value
    return out


def environ_client_cert(environ):
    """The verified client certificate's CN and DNS SANs, or None without one (see the module
    docstring). Verified but not exported, failed, or unreadable: () (no client_id matches)."""
    verify = environ.get("SSL_CLIENT_VERIFY")
    if not verify or verify == "NONE":
        return None
    pem = environ.get("SSL_CLIENT_CERT")
    if verify != "SUCCESS" or not pem:
        return ()
    from .aio.tlsutil import pem_cert_names

    try:
        return pem_cert_names(pem, "the client certificate")
    except ValueError:
        return ()


class NmosAuthWSGI:
    """Wrap a WSGI application: `app.wsgi_app = NmosAuthWSGI(app.wsgi_app, Guard(validator))`."""

    def __init__(self, app, guard, clock=time.time):
        self.app = app
        self.guard = guard
        self.clock = clock
        self._cors = guard.cors_headers()

    def __call__(self, environ, start_response):
        verdict = self.guard.check(environ.get("REQUEST_METHOD", "GET"), environ_target(environ),
                                   environ_headers(environ), self.clock(), None, environ_client_cert(environ))
        answer = verdict.answer
        if answer is not None:
            start_response("%d %s" % (answer.status, _STATUS.get(answer.status, "Error")), list(answer.headers))
            return [answer.body]
        cors = self._cors

        def start_with_cors(status, headers, exc_info=None):
            names = set(n.lower() for n, _ in headers)
            extra = [h for h in cors if h[0].lower() not in names]
            return start_response(status, list(headers) + extra, exc_info)
        return self.app(environ, start_with_cors)
