"""nmosauth-lite: the AMWA NMOS IS-10 / BCP-003-02 authorization stack, small and fast.

The stable entry point for resource servers is TokenValidator:

    from nmosauth_lite import TokenValidator
    v = TokenValidator(jwks=jwks_dict, audience=["node-1.example.com"])
    d = v.check(token, method="GET", path="/x-nmos/node/v1.3/self")
    d.status, d.error, d.www_authenticate, d.reason, d.claims
"""

from .errors import NmosAuthError
from .validator import Decision, StaticKeys, TokenValidator

__version__ = "0.1.0"
__all__ = ["Decision", "NmosAuthError", "StaticKeys", "TokenValidator", "__version__"]
