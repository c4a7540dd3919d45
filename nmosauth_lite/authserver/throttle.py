"""Back-off for failed logins and failed client authentication (issue 11 §3; RFC 6749 §10.10, §5.2).

A key (e.g. a user name with the source address it was tried from) gets `free`
failures, then must wait a delay that doubles with every further failure up to
`max_delay`; a success forgets the key, and so does `forget_after` seconds of quiet.
Keys are chosen by the callers so that failures from one source never hold back
another: a correct password from an address that has not failed is never refused.
In memory and bounded (MAX_TRACKED keys; the stalest are dropped first). LoginPolicy puts
the sign-in rules together, counted per address group (aio.admission, issue 23).
"""

DEFAULT_FREE = 3  # failures answered at once before any delay (typing mistakes)
DEFAULT_BASE_DELAY = 1.0  # seconds after the first failure past `free`, doubled per failure
DEFAULT_MAX_DELAY = 300.0
DEFAULT_FORGET_AFTER = 3600.0
MAX_TRACKED = 8192


class Backoff:
    """`retry_after(key, now)` -> 0 or seconds to wait; `failed(key, now)`; `succeeded(key)`."""

    def __init__(self, *, free=DEFAULT_FREE, base_delay=DEFAULT_BASE_DELAY, max_delay=DEFAULT_MAX_DELAY,
                 forget_after=DEFAULT_FORGET_AFTER, max_tracked=MAX_TRACKED):
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = max(forget_after, max_delay)
        self.max_tracked = max_tracked
        self._entries = {}  # key -> [failures, last failure time]

    def delay(self, failures):
        """Seconds to wait after `failures` failures."""
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * (2 ** min(over - 1, 30)))

    def retry_after(self, key, now):
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        if now - entry[1] >= self.forget_after:
            del self._entries[key]
            return 0.0
        wait = entry[1] + self.delay(entry[0]) - now
        return wait if wait > 0 else 0.0

    def failed(self, key, now):
        entry = self._entries.get(key)
        if entry is None or now - entry[1] >= self.forget_after:
            if len(self._entries) >= self.max_tracked:
                self._shed(now)
            self._entries[key] = [1, now]
        else:
            entry[0] += 1
            entry[1] = now

    def succeeded(self, key):
        self._entries.pop(key, None)

    def failures(self, key):
        entry = self._entries.get(key)
        return 0 if entry is None else entry[0]

    def _shed(self, now):
        live = {k: v for k, v in self._entries.items() if now - v[1] < self.forget_after}
        if len(live) >= self.max_tracked:  # still full: keep the most recent half
            keep = sorted(live.items(), key=lambda kv: kv[1][1])[len(live) // 2:]
            live = dict(keep)
        self._entries = live


SOURCE_FREE_FAILURES = 20  # one address group trying many user names: a looser, per-group back-off
USER_FREE_FAILURES = 10  # failures on one user name from all strangers' groups together before a user-wide delay
MAX_CHECKS_PER_GROUP = 2  # password checks (scrypt, ~50 ms of a thread) one address group may have running
MAX_KNOWN = 8192


class LoginPolicy:
    """Whose password is judged now (issue 11 §3, issue 23). Keys are (user name, address group).

    Guessing must not scale with addresses: failures from groups that never signed this user in
    add up, per user name, to one user-wide back-off. It never locks the user out: a group where
    the user has signed in before, and a group that has not failed for this user name yet, are
    judged on their own record only. Each group has at most MAX_CHECKS_PER_GROUP checks running.
    """

    def __init__(self):
        self.pairs = Backoff()
        self.groups = Backoff(free=SOURCE_FREE_FAILURES)
        self.users = Backoff(free=USER_FREE_FAILURES)
        self._known = {}  # (user, group) -> when it last signed in
        self._running = {}  # group -> checks running

    def retry_after(self, user, group, now):
        key = (user, group)
        wait = max(self.pairs.retry_after(key, now), self.groups.retry_after(group, now))
        if key not in self._known and self.pairs.failures(key):
            wait = max(wait, self.users.retry_after(user, now))
        return wait

    def begin(self, group):
        """False when the group already has its share of checks running."""
        n = self._running.get(group, 0)
        if n >= MAX_CHECKS_PER_GROUP:
            return False
        self._running[group] = n + 1
        return True

    def end(self, group):
        n = self._running.get(group, 0) - 1
        if n > 0:
            self._running[group] = n
        else:
            self._running.pop(group, None)

    def failed(self, user, group, now):
        key = (user, group)
        self.pairs.failed(key, now)
        self.groups.failed(group, now)
        if key not in self._known:
            self.users.failed(user, now)

    def succeeded(self, user, group, now):
        self.pairs.succeeded((user, group))
        if len(self._known) >= MAX_KNOWN:
            self._known = dict(sorted(self._known.items(), key=lambda kv: kv[1])[MAX_KNOWN // 2:])
        self._known[(user, group)] = now
