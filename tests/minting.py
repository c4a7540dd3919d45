"""Test-only token minting with pyca/cryptography: our own signer, independent of the code under test."""

import base64
import json
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(v, size=None):
    size = size or (v.bit_length() + 7) // 8
    return b64(v.to_bytes(size, "big"))


def public_jwk(priv, kid=None, alg=None):
    pub = priv.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        d = {"kty": "RSA", "n": uint(nums.n), "e": uint(nums.e)}
    else:
        nums = pub.public_numbers()
        size = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384"}[pub.curve.key_size]
        d = {"kty": "EC", "crv": crv, "x": uint(nums.x, size), "y": uint(nums.y, size)}
    if kid:
        d["kid"] = kid
    if alg:
        d["alg"] = alg
    d["use"] = "sig"
    return d


def sign_raw(priv, alg, signing_input):
    h = _HASH[alg[2:]]()
    if alg.startswith("RS"):
        return priv.sign(signing_input, padding.PKCS1v15(), h)
    der = priv.sign(signing_input, ec.ECDSA(h))
    r, s = decode_dss_signature(der)
    size = (priv.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def encode_token(header, claims, priv, alg=None):
    alg = alg or header["alg"]
    h = b64(json.dumps(header, separators=(",", ":")))
    p = b64(json.dumps(claims, separators=(",", ":")))
    si = (h + "." + p).encode()
    return h + "." + p + "." + b64(sign_raw(priv, alg, si))


class Minter:
    """Keys and a default IS-10 claim set for node1.example.com at now=1700000100."""

    NOW = 1700000100
    ISS = "https://auth.example.com"

    def __init__(self):
        with open(os.path.join(HERE, "vectors", "nmos", "test-only-rs512-private-key.pem"), "rb") as f:
            self.rsa = serialization.load_pem_private_key(f.read(), None)
        self.rsa2 = rsa.generate_private_key(65537, 2048)
        self.ec256 = ec.generate_private_key(ec.SECP256R1())
        self.ec384 = ec.generate_private_key(ec.SECP384R1())
        self.attacker = rsa.generate_private_key(65537, 2048)
        self.jwks = {
            "keys": [
                public_jwk(self.rsa, "rsa-1"),
                public_jwk(self.rsa2, "rsa-2"),
                public_jwk(self.ec256, "ec-256"),
                public_jwk(self.ec384, "ec-384"),
            ]
        }
        self.key_by_alg = {
            "RS256": (self.rsa, "rsa-1"),
            "RS384": (self.rsa, "rsa-1"),
            "RS512": (self.rsa, "rsa-1"),
            "ES256": (self.ec256, "ec-256"),
            "ES384": (self.ec384, "ec-384"),
        }

    def claims(self, **over):
        c = {
            "iss": self.ISS,
            "sub": "tester@example.com",
            "aud": ["https://*.example.com"],
            "iat": self.NOW - 100,
            "exp": self.NOW + 500,
            "client_id": "test-client-0123456789abcdef",
            "scope": "registration query node connection",
            "x-nmos-registration": {"read": ["*"], "write": ["*"]},
            "x-nmos-query": {"read": ["*"], "write": ["subscriptions"]},
            "x-nmos-node": {"read": ["*"]},
            "x-nmos-connection": {"read": ["*"], "write": ["single/*"]},
            "jti": "4f0e3c1a-0000-4000-8000-000000000001",
        }
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def token(self, alg="RS512", claims=None, header=None, key=None, kid=True, **over):
        priv, default_kid = self.key_by_alg[alg]
        if key is not None:
            priv = key
        h = {"alg": alg, "typ": "JWT"}
        if kid is True:
            h["kid"] = default_kid
        elif kid:
            h["kid"] = kid
        if header:
            h.update(header)
        return encode_token(h, claims if claims is not None else self.claims(**over), priv, alg)
