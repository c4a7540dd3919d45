"""The client's own signing key for private_key_jwt (RFC 7523 §2.2, IS-10 CL-15, CL-16).

A dedicated key (never the TLS key): ES256 (P-256) by default for small devices, or RSA
(RS256/RS384/RS512, 2048 bits). kid = its RFC 7638 thumbprint. `sign_jwt` makes the
client assertion; `jwks()` is the public JWK Set the client must serve at its registered
`jwks_uri`, which `JWKSServer` (or `add_jwks_route` on a Node's own server) does.
Needs `cryptography`; its absence is reported as a ConfigError naming the package.
"""

from ... import b64url, oauth
from ...errors import BackendUnavailableError, ConfigError
from ...jwk import ECKey, RSAKey
from ..web import Response, Router
from ..server import HTTPServer

ALGS = ("ES256", "ES384", "RS256", "RS384", "RS512")
DEFAULT_ALG = "ES256"
DEFAULT_JWKS_PATH = "/x-nmos/auth-client/jwks"
RSA_BITS = 2048  # IS-10 TOK-04 minimum; a device signs one assertion per token request


def _crypto():
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    except ImportError:
        raise BackendUnavailableError("private_key_jwt needs the 'cryptography' package "
                                      "(pip install cryptography), or use client_secret_basic")
    return hashes, serialization, ec, padding, rsa, utils


class ClientKey:
    def __init__(self, private, alg):
        if alg not in ALGS:
            raise ConfigError("assertion alg must be one of " + " ".join(ALGS))
        hashes, serialization, ec, padding, rsa, utils = _crypto()
        self.private = private
        self.alg = alg
        nums = private.public_key().public_numbers()
        if alg.startswith("RS"):
            if not isinstance(private, rsa.RSAPrivateKey):
                raise ConfigError("stored signing key is not RSA but alg is " + alg)
            self.public = RSAKey(nums.n, nums.e, alg=alg)
        else:
            crv = "P-256" if alg == "ES256" else "P-384"
            if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.key_size != int(crv[2:]):
                raise ConfigError("stored signing key does not fit alg " + alg)
            self.public = ECKey(crv, nums.x, nums.y, alg=alg)
        self.kid = self.public.kid = self.public.thumbprint  # RFC 7638

    @classmethod
    def generate(cls, alg=DEFAULT_ALG):
        hashes, serialization, ec, padding, rsa, utils = _crypto()
        if alg.startswith("RS"):
            return cls(rsa.generate_private_key(65537, RSA_BITS), alg)
        if alg not in ALGS:
            raise ConfigError("assertion alg must be one of " + " ".join(ALGS))
        return cls(ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1()), alg)

    @classmethod
    def from_pem(cls, pem, alg):
        hashes, serialization, ec, padding, rsa, utils = _crypto()
        try:
            return cls(serialization.load_pem_private_key(pem.encode("ascii"), None), alg)
        except (ValueError, TypeError) as e:
            raise ConfigError("stored signing key is unusable: %s" % e)

    def pem(self):
        hashes, serialization, ec, padding, rsa, utils = _crypto()
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode("ascii")

    def jwks(self):
        return {"keys": [self.public.to_jwk()]}

    def sign_jwt(self, claims):
        hashes, serialization, ec, padding, rsa, utils = _crypto()
        si = oauth.jws_signing_input({"alg": self.alg, "typ": "JWT", "kid": self.kid}, claims)
        h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[self.alg[2:]]
        if self.alg.startswith("RS"):
            sig = self.private.sign(si, padding.PKCS1v15(), h)
        else:
            r, s = utils.decode_dss_signature(self.private.sign(si, ec.ECDSA(h)))
            size = self.public.size
            sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")  # RFC 7518 §3.4: R || S
        return si.decode("ascii") + "." + b64url.encode(sig)


def add_jwks_route(router, key, path=DEFAULT_JWKS_PATH):
    """Serve `key`'s public JWK Set at `path` (None: at every path) on a Router (IS-10 CL-16)."""
    def handler(request):
        body = Response(200, _jwks_bytes(key), [("cache-control", "max-age=300"),
                                                ("access-control-allow-origin", "*")],
                        content_type="application/json")
        return body
    router.add("GET", path or "/", handler, prefix=path is None)
    return router


def _jwks_bytes(key):
    from ...jsonshim import dumps

    return dumps(key.jwks()).encode("utf-8")


class JWKSServer:
    """A small HTTPS server of its own for the JWK Set, when the Node has none to share.
    `path` None serves the set at every path (it is public; handy when only the URI is known)."""

    def __init__(self, key, ssl_context, path=DEFAULT_JWKS_PATH):
        self.path = path
        self.server = HTTPServer(add_jwks_route(Router(), key, path), ssl=ssl_context)

    async def start(self, host, port):
        await self.server.start(host, port)
        return self

    @property
    def port(self):
        return self.server.port

    async def close(self):
        await self.server.shutdown(2.0)
