"""`doctor`'s checks of the install itself: the Python, the package's data files, the crypto backends.

Each backend must verify the IS-10 example RS512 token (shipped in nmosauth_lite/data) and a
fresh ES256 signature; a wheel or bundle built without the data files is reported, not a crash.
The rest of `doctor` (configuration, state directory, clock, issuers) is in doctor.py.
"""

import os
import sys

EXAMPLE_NOW = 1548779500  # inside the IS-10 example token's validity
EXAMPLE_AUDIENCE = "node1.example.com"


def python_info(r):
    import platform

    pkg = sys.modules["nmosauth_lite"]
    version = getattr(pkg, "__version__", None)
    path = os.path.dirname(getattr(pkg, "__file__", None) or "") or None
    if version is None:  # imported as a namespace package: __init__.py never ran
        r.warn("python", "nmosauth_lite was imported without its __init__.py (a stale editable install? "
               "reinstall the package)")
        path = list(getattr(pkg, "__path__", []))[:1] or None
        path = path and path[0]
    loader = type(getattr(pkg, "__loader__", None)).__name__
    return {"version": platform.python_version(), "implementation": platform.python_implementation(),
            "executable": sys.executable, "machine": platform.machine(), "package_version": version,
            "package_path": path, "bundle": loader == "zipimporter"}


def data_file(name):
    """A file of nmosauth_lite/data: through the loader (works inside the zipapp), else from __path__."""
    import pkgutil

    try:
        data = pkgutil.get_data("nmosauth_lite", "data/" + name)
    except OSError:
        data = None
    if data is None:  # a namespace-package import has no loader that reads data
        for d in getattr(sys.modules["nmosauth_lite"], "__path__", ()):
            try:
                with open(os.path.join(d, "data", name), "rb") as f:
                    return f.read()
            except OSError:
                continue
    return data


EXAMPLE_FILES = ("is10-example-jwks.json", "is10-example-token.txt")


def _example():
    """(JWKS, token) of the IS-10 example, or None when the install lacks the data files."""
    import json

    jwks, token = (data_file(name) for name in EXAMPLE_FILES)
    if jwks is None or token is None:
        return None
    return json.loads(jwks), token.decode().strip()


def _es256_case():
    """A fresh P-256 key, a signing input and its JWS (R || S) signature, made with whichever
    library is here (ecdsa first: it is what the pure backend uses). None when neither is."""
    import hashlib

    from ..jwk import ECKey

    msg = b"eyJhbGciOiJFUzI1NiJ9.eyJkb2N0b3IiOnRydWV9"
    try:
        import ecdsa
        import ecdsa.util

        sk = ecdsa.SigningKey.generate(curve=ecdsa.NIST256p)
        sig = sk.sign(msg, hashfunc=hashlib.sha256, sigencode=ecdsa.util.sigencode_string)
        point = sk.get_verifying_key().pubkey.point
        return ECKey("P-256", point.x(), point.y()), msg, sig
    except ImportError:
        pass
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    except ImportError:
        return None
    priv = ec.generate_private_key(ec.SECP256R1())
    rr, ss = decode_dss_signature(priv.sign(msg, ec.ECDSA(hashes.SHA256())))
    nums = priv.public_key().public_numbers()
    return ECKey("P-256", nums.x, nums.y), msg, rr.to_bytes(32, "big") + ss.to_bytes(32, "big")


def backends(r):
    from ..crypto import get_backend
    from ..errors import NmosAuthError
    from ..validator import TokenValidator

    example = _example()
    if example is None:  # a wheel built without package data: say so, check the rest
        r.warn("backends", "the package's data files (%s) are missing: reinstall nmosauth-lite"
               % ", ".join(EXAMPLE_FILES), serious=True)
    es = _es256_case()
    out = {}
    for name in ("cryptography", "pure"):
        info = {"available": False, "version": None, "rs512": False, "es256": False}
        out[name] = info
        try:
            backend = get_backend(name)
        except NmosAuthError as e:
            info["error"] = e.message
            continue
        info["available"] = True
        if example is not None:
            v = TokenValidator(jwks=example[0], audience=[EXAMPLE_AUDIENCE], backend=name)
            info["rs512"] = v.check(example[1], "GET", "/x-nmos/query/v1.3/", now=EXAMPLE_NOW).status == 200
        if es is not None:
            try:
                info["es256"] = bool(backend.verify("ES256", es[0], es[1], es[2]))
            except NmosAuthError as e:  # the pure backend without ecdsa
                info["es256_error"] = e.message
    try:
        import cryptography

        out["cryptography"]["version"] = cryptography.__version__
        from cryptography.hazmat.backends.openssl import backend as ossl

        out["cryptography"]["openssl"] = ossl.openssl_version_text()
    except Exception:  # noqa: BLE001 (missing, or an old build without that call: report what we have)
        pass
    try:
        import ecdsa

        out["pure"]["ecdsa"] = getattr(ecdsa, "__version__", "present")
    except ImportError:
        out["pure"]["ecdsa"] = None
    try:
        out["auto"] = get_backend("auto").name
    except NmosAuthError:
        out["auto"] = None
    if not any(out[n]["rs512"] for n in ("cryptography", "pure")):
        r.warn("backends", "no crypto backend verifies RS512 (the IS-10 token algorithm)", serious=True)
    if not any(out[n]["es256"] for n in ("cryptography", "pure")):
        r.warn("backends", "ES256/ES384/ES512 tokens cannot be verified here: install cryptography or ecdsa")
    return out
