"""Token minting without `cryptography`: the pure lane's stand-in for tests/minting.py.

Same API (Minter, b64, uint, public_jwk, sign_raw, encode_token) so the suite's
validation, HTTP and client tests run unchanged in an environment without
cryptography. RSA: RSASSA-PKCS1-v1_5 signing (RFC 8017 §8.2.1, §9.2) written here
with pow() and CRT over the test-only key's private numbers, read from its PKCS#8
DER by a minimal parser; the other RSA keys come from `openssl genpkey`. EC: the
`ecdsa` package (installed in the lane as the pure backend's ES dependency).
Independent of the code under test; tests/pure/test_pure_fixtures.py checks in the
main lane that it signs byte-for-byte like pyca/cryptography.
"""

import binascii
import hashlib
import os
import subprocess
import sys

import ecdsa
import ecdsa.util

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: minting_common
from minting_common import MinterBase, assemble, b64, uint  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
TEST_KEY = os.path.join(TESTS, "vectors", "nmos", "test-only-rs512-private-key.pem")

# RFC 8017 §9.2 note 1: DER of DigestInfo for each hash, up to the digest itself
_DIGEST_INFO = {
    "256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_HASH = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
_CURVES = {"P-256": (ecdsa.NIST256p, 32), "P-384": (ecdsa.NIST384p, 48), "P-521": (ecdsa.NIST521p, 66)}


# --- keys ------------------------------------------------------------------------------------
def _der(data, pos):
    """One DER TLV at `pos`: (tag, value, next position). Definite lengths only (DER)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + length], pos + length


def _der_items(data):
    out, pos = [], 0
    while pos < len(data):
        tag, value, pos = _der(data, pos)
        out.append((tag, value))
    return out


class RSAKey:
    """An RSA private key as numbers; signs with CRT."""

    def __init__(self, n, e, d, p, q):
        self.n, self.e, self.d, self.p, self.q = n, e, d, p, q
        self.dp, self.dq, self.qinv = d % (p - 1), d % (q - 1), pow(q, -1, p)
        self.size = (n.bit_length() + 7) // 8

    @classmethod
    def from_der(cls, der):
        """PKCS#8 PrivateKeyInfo (RFC 5208) or a bare PKCS#1 RSAPrivateKey (RFC 8017 A.1.2)."""
        tag, body, _ = _der(der, 0)
        items = _der_items(body)
        if tag != 0x30 or len(items) < 3:
            raise ValueError("not a private key")
        if items[1][0] == 0x30:  # version, AlgorithmIdentifier, OCTET STRING: PKCS#8
            if items[2][0] != 0x04:
                raise ValueError("not a PKCS#8 PrivateKeyInfo")
            return cls.from_der(items[2][1])
        ints = [int.from_bytes(v, "big") for t, v in items if t == 0x02]
        _version, n, e, d, p, q = ints[:6]
        key = cls(n, e, d, p, q)
        if pow(pow(2, e, n), d, n) != 2:
            raise ValueError("RSA private numbers do not fit together")
        return key

    @classmethod
    def from_pem_file(cls, path):
        with open(path, "rb") as f:
            text = f.read().decode()
        body = text.split("-----BEGIN PRIVATE KEY-----")[1].split("-----END PRIVATE KEY-----")[0]
        return cls.from_der(binascii.a2b_base64("".join(body.split())))

    @classmethod
    def generate(cls, bits=2048):
        der = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                              "-outform", "DER"], capture_output=True, check=True, timeout=60).stdout
        return cls.from_der(der)

    def sign_pkcs1v15(self, message, hash_bits):
        t = _DIGEST_INFO[hash_bits] + _HASH[hash_bits](message).digest()
        em = b"\x00\x01" + b"\xff" * (self.size - len(t) - 3) + b"\x00" + t
        m = int.from_bytes(em, "big")
        s1, s2 = pow(m, self.dp, self.p), pow(m, self.dq, self.q)
        s = s2 + self.q * ((self.qinv * (s1 - s2)) % self.p)
        if pow(s, self.e, self.n) != m:  # fault check: never hand out a broken signature
            raise ValueError("RSA signature self-check failed")
        return s.to_bytes(self.size, "big")


class ECKey:
    def __init__(self, crv):
        curve, self.size = _CURVES[crv]
        self.crv = crv
        self.sk = ecdsa.SigningKey.generate(curve=curve)

    @property
    def point(self):
        return self.sk.get_verifying_key().pubkey.point


# --- the tests/minting.py API ----------------------------------------------------------------
def public_jwk(priv, kid=None, alg=None):
    if isinstance(priv, RSAKey):
        d = {"kty": "RSA", "n": uint(priv.n), "e": uint(priv.e)}
    else:
        pt = priv.point
        d = {"kty": "EC", "crv": priv.crv, "x": uint(pt.x(), priv.size), "y": uint(pt.y(), priv.size)}
    if kid:
        d["kid"] = kid
    if alg:
        d["alg"] = alg
    d["use"] = "sig"
    return d


def sign_raw(priv, alg, signing_input):
    bits = alg[2:]
    if alg.startswith("RS"):
        return priv.sign_pkcs1v15(signing_input, bits)
    # RFC 7518 §3.4: R || S, each the curve's size
    return priv.sk.sign(signing_input, hashfunc=_HASH[bits], sigencode=ecdsa.util.sigencode_string)


def encode_token(header, claims, priv, alg=None):
    alg = alg or header["alg"]
    return assemble(header, claims, lambda si: sign_raw(priv, alg, si))


class Minter(MinterBase):
    """MinterBase with pure-Python (and ecdsa) keys."""

    sign_raw = staticmethod(sign_raw)

    def __init__(self):
        self.rsa = RSAKey.from_pem_file(TEST_KEY)
        self.rsa2 = RSAKey.generate()
        self.ec256 = ECKey("P-256")
        self.ec384 = ECKey("P-384")
        self.ec521 = ECKey("P-521")
        self.attacker = RSAKey.generate()
        self._index(public_jwk)
