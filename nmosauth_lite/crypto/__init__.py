"""Crypto backends behind one small contract, chosen lazily.

A backend object has `name` and `verify(alg, key, signing_input, signature)`,
which returns True or False and never raises for a bad signature (jws decides
what a False means). `key` is a jwk.RSAKey or jwk.ECKey that already fits `alg`.
Backends: "cryptography" (pyca/OpenSSL, the fast path) and "pure" (RSA through
pow(), ES256/ES384/ES512 through the `ecdsa` package when installed). "auto"
picks cryptography when importable. Nothing is imported until first use.
"""

from ..errors import BackendUnavailableError, ConfigError

BACKENDS = ("auto", "cryptography", "pure")
_cache = {}


def get_backend(name="auto"):
    """Return the (shared) backend instance for `name`; raise ConfigError if unknown or unavailable."""
    b = _cache.get(name)
    if b is not None:
        return b
    if name == "auto":
        try:
            b = get_backend("cryptography")
        except BackendUnavailableError:
            b = get_backend("pure")
    elif name == "cryptography":
        try:
            from . import pyca
        except ImportError:
            raise BackendUnavailableError("backend 'cryptography': the cryptography package is not installed")
        b = pyca.Backend()
    elif name == "pure":
        from . import pure

        b = pure.Backend()
    else:
        raise ConfigError("unknown backend '%s' (choose auto, cryptography or pure)" % str(name)[:32])
    _cache[name] = b
    return b


def available():
    """Names of the backends that can be built here (no side effects beyond imports)."""
    out = []
    for name in ("cryptography", "pure"):
        try:
            get_backend(name)
            out.append(name)
        except ConfigError:
            pass
    return out
