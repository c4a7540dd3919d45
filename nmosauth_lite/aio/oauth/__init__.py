"""The OAuth client side of IS-10 for Nodes and controllers, on asyncio.

    selector = ServerSelector(discovery=DiscoveryCache(domains=[...]), ca_file=..., role="node")
    client = OAuthClient(selector, CredentialStore(state_dir, key_file), name=oauth.client_name(
        "ACME", "Encoder-1", "SN123"), scope="registration")
    async with TokenManager(client) as manager:
        registry = BearerClient(manager, HTTPClient(ca_file=...))
        await registry.post_json(url, resource)

Modules: servers (selection, metadata, failover), credentials + secretbox (persisted,
sealed registrations), signing (private_key_jwt key and JWKS), client (registration,
grants, revocation), redirect (loopback listener), manager (TokenManager, BearerClient).
"""

from .client import AuthorizationRequired, OAuthClient
from .credentials import CredentialStore
from .manager import BearerClient, TokenManager, TokenUnavailableError
from .servers import Candidate, NoServerError, ServerSelector, Unavailable
from .signing import ClientKey, JWKSServer, add_jwks_route

__all__ = ["AuthorizationRequired", "BearerClient", "Candidate", "ClientKey", "CredentialStore", "JWKSServer",
           "NoServerError", "OAuthClient", "ServerSelector", "TokenManager", "TokenUnavailableError",
           "Unavailable", "add_jwks_route"]
