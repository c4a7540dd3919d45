"""Repeated warnings, rate-limited: one line per cause per interval, then a count (issue 22 item 7).

A Node whose authorization server is down retries with back-off, and each failure is worth
knowing once, not forty times in ten seconds. `RateLimitedLog.warning(key, msg, *args)` logs
the first line of a `key` at once, holds back the repeats inside `interval` seconds, and the
next line it lets through says how many were held back. Keys are bounded (MAX_KEYS, oldest
dropped first): a flood of distinct causes cannot grow memory.
"""

import time

DEFAULT_INTERVAL = 60.0  # seconds between two lines of one cause
MAX_KEYS = 256  # causes remembered at once


class RateLimitedLog:
    def __init__(self, logger, interval=DEFAULT_INTERVAL, clock=time.monotonic):
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._seen = {}  # key -> [time of the last line, lines held back since]

    def warning(self, key, msg, *args):
        """Log `msg % args` unless a line of `key` went out less than `interval` s ago.
        Returns True when the line was logged."""
        now = self.clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        held = entry[1] if entry is not None else 0
        if entry is None and len(self._seen) >= MAX_KEYS:
            self._seen.pop(next(iter(self._seen)))  # the oldest cause (dicts keep insertion order)
        self._seen.pop(key, None)
        self._seen[key] = [now, 0]
        if held:
            msg += " (%d similar line%s held back in the last %.0f s)"
            args = args + (held, "" if held == 1 else "s", self.interval)
        self.logger.warning(msg, *args)
        return True

    def forget(self, key):
        """The cause is over (e.g. a fetch worked): its next failure is logged at once."""
        self._seen.pop(key, None)
