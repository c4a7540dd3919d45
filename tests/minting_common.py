"""The cryptography-free half of the test minters: claim defaults, headers, JWS assembly.

tests/minting.py (pyca/cryptography keys) and tests/pure/pure_minting.py (the pure lane's
own signer) differ only in key material and `sign_raw`; both subclass MinterBase.
"""

import base64
import json


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(v, size=None):
    size = size or (v.bit_length() + 7) // 8
    return b64(v.to_bytes(size, "big"))


def assemble(header, claims, sign):
    """Compact JWS of `claims` under `header`, signed by `sign(signing_input) -> bytes`."""
    h = b64(json.dumps(header, separators=(",", ":")))
    p = b64(json.dumps(claims, separators=(",", ":")))
    return h + "." + p + "." + b64(sign((h + "." + p).encode()))


class MinterBase:
    """Keys and a default IS-10 claim set for node1.example.com at now=1700000100.

    Subclasses set rsa, rsa2, ec256, ec384, ec521, attacker and call _index(public_jwk), and
    provide sign_raw(priv, alg, signing_input).
    """

    NOW = 1700000100
    ISS = "https://auth.example.com"

    def _index(self, public_jwk):
        self.jwks = {"keys": [public_jwk(self.rsa, "rsa-1"), public_jwk(self.rsa2, "rsa-2"),
                              public_jwk(self.ec256, "ec-256"), public_jwk(self.ec384, "ec-384"),
                              public_jwk(self.ec521, "ec-521")]}
        self.key_by_alg = {
            "RS256": (self.rsa, "rsa-1"),
            "RS384": (self.rsa, "rsa-1"),
            "RS512": (self.rsa, "rsa-1"),
            "ES256": (self.ec256, "ec-256"),
            "ES384": (self.ec384, "ec-384"),
            "ES512": (self.ec521, "ec-521"),
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
        c = claims if claims is not None else self.claims(**over)
        return assemble(h, c, lambda si: self.sign_raw(priv, alg, si))
