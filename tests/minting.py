"""Test-only token minting with pyca/cryptography: our own signer, independent of the code under test."""

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from minting_common import MinterBase, assemble, b64, uint  # noqa: F401 (b64 is used by tests via minting)

HERE = os.path.dirname(os.path.abspath(__file__))
_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def public_jwk(priv, kid=None, alg=None):
    pub = priv.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        d = {"kty": "RSA", "n": uint(nums.n), "e": uint(nums.e)}
    else:
        nums = pub.public_numbers()
        size = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[pub.curve.key_size]
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
    return assemble(header, claims, lambda si: sign_raw(priv, alg, si))


class Minter(MinterBase):
    """MinterBase with pyca/cryptography keys."""

    sign_raw = staticmethod(sign_raw)

    def __init__(self):
        with open(os.path.join(HERE, "vectors", "nmos", "test-only-rs512-private-key.pem"), "rb") as f:
            self.rsa = serialization.load_pem_private_key(f.read(), None)
        self.rsa2 = rsa.generate_private_key(65537, 2048)
        self.ec256 = ec.generate_private_key(ec.SECP256R1())
        self.ec384 = ec.generate_private_key(ec.SECP384R1())
        self.ec521 = ec.generate_private_key(ec.SECP521R1())
        self.attacker = rsa.generate_private_key(65537, 2048)
        self._index(public_jwk)
