"""Per-issuer key state and refresh policy for the resource server (IS-10 RS-01..RS-11).

Owns, without I/O: what is known of one issuer's keys (JWKS, fetch time, ETag,
next refresh, failures), the schedule (hourly plus 0-60 s uniform jitter, RS-02;
randomized exponential back-off with a cap when no server answers, RS-03;
keys kept meanwhile, RS-04), the rate limit on unknown-kid refetches (RS-10),
applying a fresh key set (a key no longer listed is withdrawn at once, which
also kills every cached token it signed), and the on-disk JSON form (a corrupt
or foreign document raises ValueError and is ignored by the caller).
Time comes in as `now`; randomness as `rng()` returning a float in [0, 1).
A profile (profile.py) may change the schedule and add a maximum key age: the IPMX
profile refreshes every 23 h + 0-3600 s (SEC-52), backs off 1, 2, 4 ... 64 s (SEC-55)
and stamps each key with `expires_at`, 36 h after it was obtained (SEC-54).
"""

from . import jwk as _jwk

REFRESH_INTERVAL = 3600  # IS-10 RS-02: at least hourly
REFRESH_JITTER = 60  # IS-10 RS-02: plus a random 0-60 s
BACKOFF_BASE = 5  # first retry after a failed fetch (s), doubled per failure
BACKOFF_CAP = 900  # never wait longer than this while nothing answers
MIN_UNKNOWN_KID_INTERVAL = 30  # at most one on-demand fetch per issuer per this many seconds
MAX_WITHDRAWN_KIDS = 64  # remembered so their tokens get 401 at once, not a refetch
FORMAT = "nmosauth-lite/jwks-cache/1"


class IssuerKeys:
    """What we hold for one trusted issuer."""

    def __init__(self, issuer, algorithms=None, profile=None):
        self.issuer = issuer
        self.algorithms = algorithms
        if profile is None:
            self.refresh, self.jitter, self.max_age = REFRESH_INTERVAL, REFRESH_JITTER, None
            self.backoff, self.random_backoff = (BACKOFF_BASE, BACKOFF_CAP), True
        else:
            self.refresh, self.jitter, self.max_age = profile.key_refresh, profile.key_jitter, profile.key_max_age
            self.backoff, self.random_backoff = profile.key_backoff, profile.key_max_age is None
        self.jwks_uri = None
        self.metadata_form = None  # which issuer.METADATA_FORMS answered last, and where
        self.metadata_url = None
        self.keys = []
        self.jwks = None  # the last accepted JWK Set document
        self.fetched_at = None
        self.etag = None
        self.next_refresh = 0.0  # due at once when nothing is known
        self.failures = 0
        self.last_unknown_fetch = None
        self.last_error = None
        self.withdrawn_kids = set()

    # --- schedule ---------------------------------------------------------------

    def due(self, now):
        return now >= self.next_refresh

    def schedule_refresh(self, now, rng):
        self.next_refresh = now + self.refresh + rng() * self.jitter

    def fetch_failed(self, now, rng, reason):
        """Record a failed fetch (every server tried); keys are kept (RS-04). Returns the delay."""
        self.failures += 1
        self.last_error = reason
        first, cap = self.backoff
        base = first * (1 << min(self.failures - 1, 16))
        if base > cap:
            base = cap
        # RS-03: randomized so instances are not flooded in step; SEC-55: 1, 2, 4 ... 64 s as such
        delay = base * (0.5 + rng()) if self.random_backoff else base
        self.next_refresh = now + delay
        return delay

    # --- maximum key age (SEC-54) ---------------------------------------------------

    def expires_at(self):
        """When the keys held stop being usable; None without a maximum age or keys."""
        if self.max_age is None or self.fetched_at is None:
            return None
        return self.fetched_at + self.max_age

    def _stamp(self):
        t = self.expires_at()
        if t is not None:
            for k in self.keys:
                k.expires_at = t

    def expired(self, now):
        t = self.expires_at()
        return t is not None and now >= t

    def may_fetch_for_unknown_kid(self, now, kid=None):
        """RS-10: a flood of tokens naming unknown kids costs at most one fetch per interval.

        A kid the issuer withdrew is not unknown: refetching will not bring it back.
        """
        if kid is not None and kid in self.withdrawn_kids:
            return False
        last = self.last_unknown_fetch
        return last is None or now - last >= MIN_UNKNOWN_KID_INTERVAL

    def note_unknown_kid_fetch(self, now):
        self.last_unknown_fetch = now

    # --- applying a fetch ---------------------------------------------------------

    def apply(self, jwks_doc, now, rng, etag=None, jwks_uri=None):
        """Adopt a freshly fetched JWK Set. Returns (added, withdrawn) lists of keys.

        Keys that stay (same RFC 7638 thumbprint) keep their objects, so tokens
        they verified stay cached; keys that vanished are marked withdrawn.
        Raises KeyFormatError when the document is not a JWK Set.
        """
        fresh, _skipped = _jwk.parse_jwks(jwks_doc, self.algorithms)
        old = {}
        for k in self.keys:
            old[k.thumbprint] = k
        keys = []
        added = []
        for k in fresh:
            prev = old.pop(k.thumbprint, None)
            if prev is not None and prev.kid == k.kid:
                keys.append(prev)
            else:
                keys.append(k)
                added.append(k)
        withdrawn = []
        for k in old.values():
            k.withdrawn = True
            withdrawn.append(k)
            if k.kid is not None:
                if len(self.withdrawn_kids) >= MAX_WITHDRAWN_KIDS:
                    self.withdrawn_kids = set()
                self.withdrawn_kids.add(k.kid)
        for k in keys:
            self.withdrawn_kids.discard(k.kid)
        self.keys = keys
        self.jwks = jwks_doc
        self.fetched_at = now
        self.etag = etag
        if jwks_uri is not None:
            self.jwks_uri = jwks_uri
        self.failures = 0
        self.last_error = None
        self.schedule_refresh(now, rng)
        self._stamp()
        return added, withdrawn

    def not_modified(self, now, rng):
        """A 304 to our conditional GET: the keys stand, the clock restarts."""
        self.failures = 0
        self.last_error = None
        self.fetched_at = now
        self.schedule_refresh(now, rng)
        self._stamp()

    # --- persistence ----------------------------------------------------------------

    def to_json(self):
        return {
            "format": FORMAT,
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "jwks": self.jwks,
            "fetched_at": self.fetched_at,
            "etag": self.etag,
            "next_refresh": self.next_refresh,
            "metadata_form": self.metadata_form,
            "metadata_url": self.metadata_url,
        }

    def load_json(self, doc):
        """Adopt a persisted document; raises ValueError when it is corrupt or not ours."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a key cache document")
        if doc.get("issuer") != self.issuer:
            raise ValueError("key cache document of another issuer")
        jwks = doc.get("jwks")
        fetched = doc.get("fetched_at")
        nxt = doc.get("next_refresh")
        etag = doc.get("etag")
        uri = doc.get("jwks_uri")
        if not isinstance(fetched, (int, float)) or not isinstance(nxt, (int, float)):
            raise ValueError("key cache times are not numbers")
        if etag is not None and not isinstance(etag, str) or uri is not None and not isinstance(uri, str):
            raise ValueError("key cache etag or jwks_uri is not text")
        try:
            keys, _skipped = _jwk.parse_jwks(jwks, self.algorithms)
        except _jwk.KeyFormatError:
            raise ValueError("key cache holds no JWK Set")
        self.keys = keys
        self.jwks = jwks
        self.fetched_at = fetched
        self.next_refresh = nxt
        self.etag = etag
        self.jwks_uri = uri
        form, murl = doc.get("metadata_form"), doc.get("metadata_url")
        # informational only (older files have neither): kept when text, else forgotten
        self.metadata_form = form if isinstance(form, str) and len(form) <= 64 else None
        self.metadata_url = murl if isinstance(murl, str) and len(murl) <= 2048 else None
        self._stamp()  # keys read back keep the age they had when they were obtained
