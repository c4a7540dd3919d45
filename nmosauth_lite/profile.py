"""Deployment profiles: IS-10 (default) and the IPMX device profile, as data.

A Profile names every knob where "NMOS With Control Plane Security" (IPMX,
cited as TR-10-SEC) differs from IS-10 / BCP-003-02 (digest §8): algorithm
list, `typ` rule, required claims, `iat`/`nbf` handling, clock tolerance,
where the x-nmos-* claims live, token carriage, public paths, key refresh
interval/jitter/back-off/maximum age, on-demand key fetch, the status while no
keys are held, and which permission evaluator decides. The validator, guard and
key store read these values; the permission model is chosen once per validator.
Profiles are immutable (assignment raises). MicroPython-safe: no imports.
"""

PATHS = "paths"  # IS-10 x-nmos-* path specifiers (permissions.py)
AUD_INDEX = "aud-index"  # IPMX ["*"] / [""] / signed aud-index arrays (ipmx.py; SEC-38..SEC-41)

HEADER_OR_WS_QUERY = "header+ws-query"  # IS-10 RS-37, RS-38: access_token on WebSocket upgrades too
HEADER_ONLY = "header"  # SEC-11: the Authorization header only

MAX_IPMX_TOLERANCE = 1800  # SEC-20: a Node's clock is within 30 minutes of the AS's


FIELDS = (
    "name", "algorithms", "typ_required", "accepted_typ", "required_claims", "iat", "nbf",
    "default_tolerance", "max_tolerance", "claims_location", "token_carriage", "public_paths",
    "key_refresh", "key_jitter", "key_backoff", "key_max_age", "on_demand_fetch", "no_keys_status",
    "permission_model",
)


class Profile:
    """One named set of knobs. Read-only: every knob is a property without a setter (an
    instance __dict__ cannot be frozen on MicroPython)."""

    def __init__(self, name, **knobs):
        knobs["name"] = name
        for k in knobs:
            if k not in FIELDS:
                raise ValueError("unknown profile knob %r" % k)
        self._v = tuple(knobs[f] for f in FIELDS)  # KeyError: a knob left out

    def __repr__(self):
        return "Profile(%r)" % self.name


def _knob(i):
    return property(lambda self: self._v[i])


for _i in range(len(FIELDS)):
    setattr(Profile, FIELDS[_i], _knob(_i))


IS10 = Profile(
    "is-10",
    algorithms=("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"),  # project default, RS-12
    typ_required=False,  # RS-18: absent typ accepted
    accepted_typ=("jwt", "at+jwt", "application/jwt", "application/at+jwt"),
    required_claims=("iss", "sub", "aud", "exp"),  # + client_id or azp (RS-17)
    iat="check",  # RS-13: an iat later than now is refused
    nbf="check",  # RS-14
    default_tolerance=0,  # RS-19: the operator sets a few seconds if needed
    max_tolerance=300,
    claims_location="top",  # TOK-20
    token_carriage=HEADER_OR_WS_QUERY,
    public_paths=("/", "/x-nmos"),  # RS-31
    key_refresh=3600,  # RS-02: hourly
    key_jitter=60,  # RS-02: + U(0, 60) s
    key_backoff=(5, 900),  # RS-03: randomized exponential, first and longest (s)
    key_max_age=None,  # RS-04: keys are kept while no server answers
    on_demand_fetch=True,  # RS-06, RS-10: one rate-limited fetch for an unknown kid
    no_keys_status=503,  # RS-07: 503 + Retry-After while fetching
    permission_model=PATHS,
)

IPMX = Profile(
    "ipmx",
    algorithms=("RS256", "RS512", "ES256", "ES512"),  # SEC-14, SEC-15: exactly these, all supported
    typ_required=True,  # SEC-13
    accepted_typ=("jwt", "at+jwt", "application/at+jwt"),  # SEC-13 (case-insensitive: our choice, digest A17)
    required_claims=("iss", "aud", "sub", "exp", "scope", "client_id"),  # SEC-16, no azp substitute
    iat="ignore",  # SEC-18: present or not, any value, ignored
    nbf="check",  # SEC-17 "MAY be ignored": we still honour it, with the tolerance (fail closed)
    default_tolerance=MAX_IPMX_TOLERANCE,  # SEC-19, SEC-20 prose: exp "accounting for" 30 min (digest A3)
    max_tolerance=MAX_IPMX_TOLERANCE,
    claims_location="either",  # SEC-23: ext or top level; duplicates must be identical
    token_carriage=HEADER_ONLY,  # SEC-11
    public_paths=(),  # SEC-37: `/` and `/x-nmos` need the `node` scope
    key_refresh=23 * 3600,  # SEC-52: every 23 h
    key_jitter=3600,  # SEC-52: + U(0, 3600) s
    key_backoff=(1, 64),  # SEC-55: exponential, 1 to 64 s
    key_max_age=36 * 3600,  # SEC-54: refused 36 h after they were obtained
    on_demand_fetch=False,  # SEC-57: never fetch keys because of a token's iss
    no_keys_status=401,  # SEC-48, SEC-53: fail closed (digest A15: 401 with WWW-Authenticate)
    permission_model=AUD_INDEX,
)

PROFILES = {"is-10": IS10, "ipmx": IPMX}
NAMES = ("is-10", "ipmx")


def get_profile(profile):
    """A Profile from its name ("is-10", "ipmx") or itself. Raises ValueError."""
    if isinstance(profile, Profile):
        return profile
    p = PROFILES.get(profile) if isinstance(profile, str) else None
    if p is None:
        raise ValueError("unknown profile %r (choose is-10 or ipmx)" % (str(profile)[:32],))
    return p
