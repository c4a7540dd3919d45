"""Prometheus metrics for `attach --metrics` (issue 19 §1), on protect's writer and listener.

Every label is a fixed enum, never a path, host or client value: request outcomes (status
class of the Registry's answer, or why attach answered itself), Registry response time by
outcome, 401-then-retry and failover counts, token refreshes, refused connections.
"""

import time

from .metrics import REJECT_CAUSES, Registry, closed

# What attach did with a request: the Registry's status class, or its own answer's reason.
OUTCOMES = ("2xx", "3xx", "4xx", "5xx", "other", "refused", "too_large", "no_token", "no_registry",
            "retry_later", "timeout", "unreachable")
REGISTRY_OUTCOMES = ("answered", "failed")


class AttachMetrics:
    """Hooks: `outcome(name)`, `registry_time(outcome, s)`, `token_retry()`, `failover()` from the
    proxy; `rejected(cause)` as the server's on_reject; `watch(server, manager)` for gauges."""

    def __init__(self):
        r = self.registry = Registry()
        self.requests = r.counter("nmosauth_attach_requests", "Node requests by outcome (Registry status class, "
                                  "or why attach answered itself)", ("outcome",))
        self.latency = r.histogram("nmosauth_attach_registry_response_seconds",
                                   "Time from sending to the Registry to its whole answer", ("outcome",))
        self.retries = r.counter("nmosauth_attach_token_retries", "401 from the Registry answered by one fresh "
                                 "token and one retry")
        self.failovers = r.counter("nmosauth_attach_failovers", "Requests sent on to a next Registry")
        self.rejects = r.counter("nmosauth_rejected_connections", "Connections refused before a handler ran, "
                                 "by cause", ("cause",))
        self._server = None
        self._manager = None
        r.gauge("nmosauth_open_connections", "Node connections open now", collect=self._connections)
        r.gauge("nmosauth_attach_tokens_obtained", "Access tokens obtained since start", collect=self._tokens)
        r.gauge("nmosauth_attach_token_seconds_left", "Seconds the current access token has left",
                collect=self._left)

    def outcome(self, name):
        self.requests.inc(closed(name, OUTCOMES))

    def registry_time(self, outcome, seconds):
        self.latency.observe(outcome if outcome in REGISTRY_OUTCOMES else "failed", value=seconds)

    def token_retry(self):
        self.retries.inc()

    def failover(self):
        self.failovers.inc()

    def rejected(self, cause):
        self.rejects.inc(closed(cause, REJECT_CAUSES))

    def watch(self, server, manager):
        self._server = server
        self._manager = manager

    def _connections(self):
        return {(): self._server.connection_count if self._server is not None else 0}

    def _tokens(self):
        return {(): self._manager.refreshes if self._manager is not None else 0}

    def _left(self):
        t = self._manager.tokens if self._manager is not None else None
        return {(): max(0.0, t["expires_at"] - time.time()) if t else 0}
