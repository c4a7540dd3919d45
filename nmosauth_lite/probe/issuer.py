"""The probe's own short-lived issuer: RS512 keys, RFC 8414 metadata and JWKS over TLS.

A Node under test must trust it like any authorization server (IS-10 RS-06, RS-42): its
issuer URL, its CA (a local one made in the state directory by the authorization server's
TLS helper), or its JWKS file, or the DNS-SD records `as zone` would print (DS-01..DS-10,
pri 100: development only, DS-09). Key "a" is kept in the state directory so the Node's
cached keys stay good from one run to the next; key "b" is made for the run and published
only when the unseen-key check starts (RS-06, RS-07); key "c" is never published (forgeries).
"""

import os
import secrets
import time

from .. import b64url, jsonshim
from ..issuer import WELL_KNOWN

KEY_FILE = "issuer-key.pem"
JWKS_FILE = "jwks.json"
SUBDIR = "probe"
TOKEN_LIFETIME = 300  # seconds: the probe's tokens live for the run only


class _TLSConfig:
    """What authserver.service.ensure_tls reads from a Config: reuse its local-CA logic."""

    cert_files = key_files = ()
    ca_file = None

    def __init__(self, directory, host, listen_host):
        self.tls_dir = directory
        self.host = host
        self.listen_host = listen_host


def _signing_key(pem):
    from ..authserver.keys import SigningKey, public_of

    _priv, pub = public_of(pem, "RS512")
    return SigningKey({"kid": pub.kid, "alg": "RS512", "created_at": 0, "use_from": 0, "withdrawn_at": None,
                       "private_pem": pem})


def _load_or_make_key(path):
    from ..aio.files import atomic_write, read_limited
    from ..authserver.keys import generate

    try:
        return _signing_key(read_limited(path, 65536).decode("ascii"))
    except (OSError, ValueError, UnicodeDecodeError):
        pem = generate("RS512")  # absent or unreadable: a new one (the Node refetches on first sight)
        atomic_write(path, pem.encode("ascii"), 0o600)
        return _signing_key(pem)


class Minter:
    """`mint(**claims)` -> a token signed with the published key; none/forged/unseen variants."""

    def __init__(self, issuer, audience, keys, clock=time.time):
        self.issuer = issuer
        self.audience = audience
        self.keys = keys  # {"a", "b", "c"} -> SigningKey
        self.now = int(clock())

    def claims(self, over):
        aud = self.audience if "://" in self.audience else "https://" + self.audience
        c = {"iss": self.issuer, "sub": "nmosauth-lite-probe", "aud": [aud], "iat": self.now - 10,
             "exp": self.now + TOKEN_LIFETIME, "client_id": "nmosauth-lite-probe",
             "jti": secrets.token_hex(16)}
        c.update(over)
        return c

    def __call__(self, **over):
        return self.keys["a"].encode(self.claims(over))

    def unseen(self, **over):
        return self.keys["b"].encode(self.claims(over))

    def forged(self, **over):
        """The published key's header (kid "a"), signed by a key nobody published."""
        return self._assemble({"typ": "JWT", "alg": "RS512", "kid": self.keys["a"].kid}, over,
                              self.keys["c"].sign)

    def none(self, **over):
        return self._assemble({"typ": "JWT", "alg": "none", "kid": self.keys["a"].kid}, over, lambda si: b"")

    def _assemble(self, header, over, sign):
        si = b64url.encode(jsonshim.dumps(header).encode()) + "." + \
            b64url.encode(jsonshim.dumps(self.claims(over)).encode())
        return si + "." + b64url.encode(sign(si.encode("ascii")))


class ProbeIssuer:
    """`await ProbeIssuer(state_dir, host=..., listen=(addr, port)).start()`; url, ca_file, jwks_file,
    minter(audience), publish_unseen(), zone(domain), `await stop()`."""

    def __init__(self, state_dir, host=None, listen=("127.0.0.1", 0)):
        self.dir = os.path.join(state_dir, SUBDIR)
        self.listen_host, self.listen_port = listen
        wildcard = self.listen_host in ("0.0.0.0", "::", "")
        self.host = host or ("localhost" if wildcard else self.listen_host)
        self.server = None
        self.url = self.ca_file = None
        self.jwks_file = os.path.join(self.dir, JWKS_FILE)
        self.keys = {}
        self.published = ["a"]

    async def start(self):
        from ..aio.files import ensure_private_dir
        from ..aio.server import HTTPServer
        from ..aio.tlsutil import server_context
        from ..authserver.keys import generate
        from ..authserver.service import ensure_tls

        ensure_private_dir(self.dir)
        os.chmod(self.dir, 0o700)
        pairs, ca = ensure_tls(_TLSConfig(os.path.join(self.dir, "tls"), self.host, self.listen_host))
        self.ca_file = os.path.abspath(ca)
        self.keys = {"a": _load_or_make_key(os.path.join(self.dir, KEY_FILE)),
                     "b": _signing_key(generate("RS512")), "c": _signing_key(generate("RS512"))}
        self.server = HTTPServer(self._handle, ssl=server_context(pairs), server_header="nmosauth-lite-probe")
        await self.server.start(self.listen_host, self.listen_port)
        name = "[%s]" % self.host if ":" in self.host else self.host
        self.url = "https://%s:%d" % (name, self.server.port)
        self._write_jwks()
        return self

    async def stop(self):
        if self.server is not None:
            await self.server.shutdown(2.0)
            self.server = None

    @property
    def port(self):
        return self.server.port

    def minter(self, audience):
        return Minter(self.url, audience, self.keys)

    def jwks(self):
        return {"keys": [self.keys[k].public.to_jwk() for k in self.published]}

    def publish_unseen(self):
        """Publish key b (the Node has not seen it): the unseen-key check follows."""
        if "b" not in self.published:
            self.published.append("b")

    def metadata(self):
        return {"issuer": self.url, "jwks_uri": self.url + "/jwks", "token_endpoint": self.url + "/token",
                "response_types_supported": ["code"], "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]}

    def _write_jwks(self):
        from ..aio.files import atomic_write

        atomic_write(self.jwks_file, (jsonshim.dumps(self.jwks()) + "\n").encode(), 0o644)

    def _handle(self, request):
        from ..aio.web import Response, json_response

        cors = [("access-control-allow-origin", "*")]
        if request.method == "OPTIONS":
            return Response(200, b"", cors + [("access-control-allow-methods", "GET, POST, OPTIONS"),
                                             ("access-control-allow-headers", "Authorization, Content-Type")])
        if request.method in ("GET", "HEAD") and request.path == WELL_KNOWN:
            return json_response(self.metadata(), headers=cors)
        if request.method in ("GET", "HEAD") and request.path == "/jwks":
            return json_response(self.jwks(), headers=cors + [("cache-control", "no-cache")])
        if request.path == "/token":  # RFC 6749 §5.2: this issuer signs only the probe's own tokens
            return json_response({"error": "unauthorized_client",
                                  "error_description": "the probe's issuer grants no tokens"}, 400,
                                 cors + [("cache-control", "no-store")])
        return json_response({"code": 404, "error": "not found", "debug": None}, 404, cors)

    def zone(self, domain=None, address=None):
        """BIND lines advertising this issuer by unicast DNS-SD, or None when the host is not a DNS name."""
        from ..authserver.zone import ZoneRecords, primary_address

        host = self.host
        if domain is None:
            if "." not in host or host.replace(".", "").isdigit() or ":" in host:
                return None
            domain = host.split(".", 1)[1]
        if address is None:
            wildcard = self.listen_host in ("0.0.0.0", "::", "")
            address = primary_address() if wildcard else self.listen_host
        try:
            rec = ZoneRecords(domain=domain, host=host, port=self.port, addresses=[address] if address else [],
                              issuer_path="", pri=100, instance="nmosauth-lite-probe")
        except ValueError:
            return None
        return rec.bind()

    def trust_text(self, domain=None):
        """How the Node must trust this issuer (printed before the checks)."""
        lines = ["probe issuer %s (RS512, kid %s)" % (self.url, self.keys["a"].kid[:16]),
                 "  trust it on the Node with one of:",
                 "    issuer URL      %s   (keys fetched via %s)" % (self.url, self.url + WELL_KNOWN),
                 "    CA certificate  %s" % self.ca_file,
                 "    JWKS file       %s   (a static JWKS cannot learn the unseen key: that check warns)"
                 % self.jwks_file,
                 "    e.g. nmosauth-lite protect ... --issuer %s --ca %s" % (self.url, self.ca_file)]
        zone = self.zone(domain)
        if zone:
            lines.append("    DNS-SD (BIND zone lines, pri 100 = development, IS-10 DS-09):")
            lines.extend("      " + z for z in zone.rstrip("\n").split("\n"))
        return "\n".join(lines) + "\n"
