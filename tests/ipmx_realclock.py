"""The IPMX verdict corpus (tests/ipmx_corpus.py) for servers that read the real clock (a protect
process, an aiohttp server): each case's token with its NumericDates moved so that the real clock
plays the case's NOW + offset.

A case one second inside or outside the 30-minute tolerance (SEC-17, SEC-20) would then depend on
how fast a loaded machine answers. The edge itself is decided with an injected clock in
tests/test_ipmx.py (validator, guard, ASGI); for a real clock those cases keep their verdict with a
minute to spare: lateness only makes an `exp` more expired and an `nbf` more reached.
"""

import time

import ipmx_corpus as C
from minting import encode_token

KIDS = {"RS256": "rsa-1", "RS384": "rsa-1", "RS512": "rsa-1", "ES256": "ec-256", "ES384": "ec-384", "ES512": "ec-521"}
REAL_CLOCK_MARGIN = {"expired-within-tolerance": -60, "nbf-beyond-tolerance": -60}


def shifted_token(m, claims_changes, header_changes, node_offset, cid=None):
    """The case's token, signed by Minter `m`, for a server whose real clock plays NOW + node_offset."""
    shift = int(time.time()) - (C.NOW + node_offset + REAL_CLOCK_MARGIN.get(cid, 0))
    claims = C.claims_for(claims_changes)
    for k in ("exp", "nbf", "iat"):
        if type(claims.get(k)) in (int, float):
            claims[k] = claims[k] + shift
    alg = header_changes.get("alg", "ES256")
    return encode_token(C.header_for(header_changes, KIDS[alg]), claims, m.key_by_alg[alg][0], alg)
