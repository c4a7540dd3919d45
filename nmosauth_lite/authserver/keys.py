"""Signing keys of the authorization server: generation, JWS signing, rotation, withdrawal.

Keys are made and used with pyca/cryptography (the AS needs it; resource servers do
not). RS512 with 2048+ bit RSA is the IS-10 default (TOK-03, TOK-04); ES256 is
optional. kid = RFC 7638 thumbprint. Rotation publishes a new key at once and signs
with it only after `publish_delay` (IS-10 AS-16, default 2 h); a superseded key stays
published until the last token it signed has expired (AS-15); a withdrawn key
disappears from the JWKS and loses its private half at once (AS-15).
"""

import logging

from .. import b64url, jsonshim
from ..jwk import ECKey, RSAKey
from .tokens import MAX_LIFETIME

log = logging.getLogger("nmosauth_lite.authserver.keys")

ALGS = ("RS512", "ES256")
RETENTION = MAX_LIFETIME  # a superseded key verifies tokens for this long after its last signature


def _crypto():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    return hashes, serialization, ec, padding, rsa, utils


def generate(alg, rsa_bits=2048):
    """A new private key as PKCS#8 PEM text."""
    hashes, serialization, ec, padding, rsa, utils = _crypto()
    if alg == "RS512":
        priv = rsa.generate_private_key(65537, rsa_bits)
    elif alg == "ES256":
        priv = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError("unsupported signing alg %s" % alg)
    return priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode("ascii")


def public_of(pem, alg):
    """(private key object, jwk.RSAKey/ECKey with kid = RFC 7638 thumbprint)."""
    hashes, serialization, ec, padding, rsa, utils = _crypto()
    priv = serialization.load_pem_private_key(pem.encode("ascii"), None)
    nums = priv.public_key().public_numbers()
    if alg == "RS512":
        pub = RSAKey(nums.n, nums.e, alg=alg)
    else:
        pub = ECKey("P-256", nums.x, nums.y, alg=alg)
    pub.kid = pub.thumbprint
    return priv, pub


class SigningKey:
    def __init__(self, row):
        self.kid = row["kid"]
        self.alg = row["alg"]
        self.created_at = row["created_at"]
        self.use_from = row["use_from"]
        self.withdrawn_at = row["withdrawn_at"]
        self.private = self.public = None
        if self.withdrawn_at is None:
            self.private, self.public = public_of(row["private_pem"], self.alg)
        self._header = None

    def sign(self, signing_input):
        hashes, serialization, ec, padding, rsa, utils = _crypto()
        if self.alg == "RS512":
            return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA512())
        r, s = utils.decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # RFC 7518 §3.4: R || S

    def encode(self, claims):
        """Compact JWS of `claims` (IS-10 TOK-02: header {"typ":"JWT","alg":..,"kid":..})."""
        if self._header is None:
            self._header = b64url.encode(jsonshim.dumps({"typ": "JWT", "alg": self.alg, "kid": self.kid}).encode())
        si = self._header + "." + b64url.encode(jsonshim.dumps(claims).encode("utf-8"))
        return si + "." + b64url.encode(self.sign(si.encode("ascii")))


class KeyRing:
    """The store's keys with their time-dependent states; reloads when another process changed them."""

    def __init__(self, store, *, alg="RS512", rsa_bits=2048, publish_delay=7200, retention=RETENTION):
        if alg not in ALGS:
            raise ValueError("unsupported signing alg %s" % alg)
        self.retention = retention  # >= the longest token lifetime (IPMX tokens live up to 24 h)
        self.store = store
        self.alg = alg
        self.rsa_bits = rsa_bits
        self.publish_delay = publish_delay
        self._keys = None
        self._version = None

    def keys(self):
        v = self.store.data_version()
        if self._keys is None or v != self._version:
            self._version = v
            old = {k.kid: k for k in self._keys or ()}
            out = []
            for row in self.store.list_keys():
                k = old.get(row["kid"])
                if k is None or k.withdrawn_at != row["withdrawn_at"]:
                    k = SigningKey(row)
                out.append(k)
            self._keys = out
        return self._keys

    def states(self, now):
        """[(key, state)] with state pending, active, retiring, expired or withdrawn."""
        keys = self.keys()  # ordered by use_from, then creation: later entries supersede earlier ones
        current = [i for i, k in enumerate(keys) if k.withdrawn_at is None and k.use_from <= now]
        out = []
        for i, k in enumerate(keys):
            if k.withdrawn_at is not None:
                state = "withdrawn"
            elif k.use_from > now:
                state = "pending"
            elif i == current[-1]:
                state = "active"
            else:
                superseded = min(keys[j].use_from for j in current if j > i)
                state = "retiring" if now < superseded + self.retention else "expired"
            out.append((k, state))
        return out

    def signer(self, now):
        """The key to sign with now; makes one (usable at once) when none is."""
        for k, state in self.states(now):
            if state == "active":
                return k
        return self.ensure(now)

    def published(self, now):
        return [k for k, s in self.states(now) if s in ("pending", "active", "retiring")]

    def jwks(self, now):
        """The JWK Set for jwks_uri (IS-10 AS-12, AS-13: use=sig, alg, kid on every key)."""
        return {"keys": [k.public.to_jwk() for k in self.published(now)]}

    def public_keys(self, now):
        """jwk key objects of every published key: for verifying our own JWTs."""
        return [k.public for k in self.published(now)]

    def add(self, now, use_from, alg=None):
        alg = alg or self.alg
        pem = generate(alg, self.rsa_bits)
        priv, pub = public_of(pem, alg)
        with self.store.transaction():
            self.store.add_key(pub.kid, alg, pem, now, use_from)
            self.store.audit("key.create", now, actor="operator", kid=pub.kid, alg=alg, use_from=use_from)
        self._keys = None
        return pub.kid

    def ensure(self, now):
        """Make sure a key can sign now. A first key, or one after every usable key was
        withdrawn, is used at once: resource servers refetch on an unknown kid (IS-10 RS-07)."""
        for k, state in self.states(now):
            if state == "active":
                return k
        if self.keys():
            log.warning("no usable signing key left: creating one that signs at once")
        kid = self.add(now, now)
        return next(k for k in self.keys() if k.kid == kid)

    def rotate(self, now, delay=None, alg=None):
        """Publish a new key now; it signs after `delay` (default publish_delay). Returns its kid."""
        delay = self.publish_delay if delay is None else delay
        return self.add(now, now + delay, alg)

    def withdraw(self, kid, now):
        """Remove a key from the JWKS and from signing at once (compromise; IS-10 AS-15)."""
        with self.store.transaction():
            done = self.store.withdraw_key(kid, now)
            if done:
                self.store.audit("key.withdraw", now, actor="operator", kid=kid)
        self._keys = None
        if done:
            self.ensure(now)
        return done

    def purge(self, now):
        """Delete keys no token can need any more (expired); returns their kids."""
        gone = [k.kid for k, s in self.states(now) if s == "expired"]
        if gone:
            with self.store.transaction():
                for kid in gone:
                    self.store.delete_key(kid)
                    self.store.audit("key.delete", now, kid=kid)
            self._keys = None
        return gone
