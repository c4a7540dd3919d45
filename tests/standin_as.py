"""A real HTTPS authorization-server stand-in for key-store tests, with controllable faults.

Serves RFC 8414 metadata and a JWK Set (with ETag / 304) from a thread, over TLS
with a test CA. `mode` switches faults: "ok", "500", "garbage", "oversize",
"slow", "wrong-issuer", "no-jwks-uri". Counters record every hit. `forms` says where the
metadata is served (issuer.METADATA_FORMS: "rfc8414" by default, "issuer-appended",
"openid-configuration"); `form_hits` counts requests at each of those places.
"""

import hashlib
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nmosauth_lite.aio.tlsutil import make_test_pki


class StandinAS:
    def __init__(self, tmpdir, dns_names=("localhost",), ip_addresses=("127.0.0.1",), path=""):
        self.pki = make_test_pki(os.path.join(tmpdir, "pki-%s" % dns_names[0]), dns_names=dns_names, ip_addresses=ip_addresses)
        self.jwks = {"keys": []}
        self.mode = "ok"
        self.slow_seconds = 3.0
        self.hits = {"metadata": 0, "jwks": 0, "304": 0}
        self.path = path
        self.forms = ("rfc8414",)
        self.form_hits = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body, ctype="application/json", headers=()):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                mode = outer.mode
                form = outer.form_at(self.path)
                if form is not None:
                    with outer.lock:
                        outer.form_hits[form] = outer.form_hits.get(form, 0) + 1
                if mode == "slow":
                    time.sleep(outer.slow_seconds)
                if mode == "500":
                    return self._send(500, b'{"error":"boom"}')
                if form is not None and form in outer.forms:
                    with outer.lock:
                        outer.hits["metadata"] += 1
                    if mode == "garbage":
                        return self._send(200, b"<html>not json")
                    meta = {"issuer": outer.issuer, "jwks_uri": outer.base + "/jwks",
                            "token_endpoint": outer.base + "/token", "grant_types_supported": ["client_credentials"]}
                    if mode == "wrong-issuer":
                        meta["issuer"] = "https://evil.example.com"
                    if mode == "no-jwks-uri":
                        del meta["jwks_uri"]
                    return self._send(200, json.dumps(meta).encode())
                if self.path == "/jwks":
                    with outer.lock:
                        outer.hits["jwks"] += 1
                    if mode == "garbage":
                        return self._send(200, b"{not json")
                    if mode == "oversize":
                        return self._send(200, b'{"keys":[' + b" " * (1 << 20) + b"]}")
                    body = json.dumps(outer.jwks).encode()
                    etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
                    if self.headers.get("If-None-Match") == etag:
                        with outer.lock:
                            outer.hits["304"] += 1
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    return self._send(200, body, headers=[("ETag", etag)])
                self._send(404, b'{"error":"not found"}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.cert, self.pki.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = "https://%s:%d" % (dns_names[0], self.port)
        self.issuer = self.base + path
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def form_at(self, path):
        """Which metadata place `path` is (None: not one)."""
        # rfc8414 last: without an issuer path it and issuer-appended are one URL (rfc8414's)
        return {self.path + "/.well-known/oauth-authorization-server": "issuer-appended",
                self.path + "/.well-known/openid-configuration": "openid-configuration",
                "/.well-known/oauth-authorization-server" + self.path: "rfc8414"}.get(path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
