"""A server's TLS trust configuration, built at start-up and again on reload (TR-10-SEC SEC-94).

`ServerTLS.start()` reads the certificate/key pairs, the client CAs and their CRLs (aio/crlfiles.py)
and returns the SSLContext, or raises ConfigError naming the file at fault. `reload(server)` builds
a new one and puts it in `server.ssl`: new connections use it at once, open ones keep the context
their handshake used (SEC-94); a reload that fails logs why and keeps the old one ("until a new
configuration has been successfully validated"). CRLs OpenSSL will act on (expired, not yet valid:
SEC-98) are logged loudly when loaded, and again when a loaded CRL's nextUpdate passes.
"""

import datetime
import logging

from ..errors import ConfigError
from .crlfiles import check_crl_files, problem, uncovered_cas
from .tlsutil import certificate_names, server_context


class ServerTLS:
    """`pairs`: [(cert, key)]; `client_ca`, `client_crl`: lists of files; `client_cert`: none,
    optional or required; `policy`: tlsutil's. `fixed_names`: the certificates' names were read
    once for something else (the ipmx audience, SEC-32): a reload whose certificates name others
    is refused (restart to change them)."""

    def __init__(self, pairs, *, client_ca=None, client_cert="none", client_crl=None, policy="bcp-003-01",
                 fixed_names=False, log=None):
        self.pairs = list(pairs)
        self.client_ca = list(client_ca or ())
        self.client_crl = list(client_crl or ())
        self.client_cert = client_cert
        self.policy = policy
        self.log = log or logging.getLogger("nmosauth_lite.tls")
        self.names = self._names() if fixed_names else None
        self._alarms = []
        self.crls = []  # what check_crl_files said of the CRLs in use

    def _names(self):
        names = []
        try:
            for cert, _key in self.pairs:
                names += [n for n in certificate_names(cert) if n not in names]
        except ValueError as e:
            raise ConfigError(str(e))
        return names

    def build(self, now=None):
        """(SSLContext, CRL reports): everything read and checked again. ConfigError or ValueError."""
        infos = check_crl_files(self.client_crl, self.client_ca, now) if self.client_crl else []
        ctx = server_context(self.pairs, ca_file=self.client_ca or None, client_cert=self.client_cert,
                             policy=self.policy, crl_file=self.client_crl or None)
        if self.names is not None and self._names() != self.names:
            raise ConfigError("the certificates now name %s, not %s: their names are read at start-up "
                              "(the audience): restart to change them" % (", ".join(self._names()), ", ".join(self.names)))
        return ctx, infos

    def start(self, now=None):
        ctx, infos = self.build(now)
        self._use(infos, now)
        return ctx

    def reload(self, server, now=None):
        """SIGHUP: True when `server.ssl` now holds the new context; False (logged) when the old stays."""
        try:
            ctx, infos = self.build(now)
        except (ConfigError, ValueError) as e:
            self.log.error("TLS reload failed, the previous configuration stays in use: %s", e)
            return False
        server.ssl = ctx  # read by every new connection's handshake (aio/connection.py)
        self.log.info("TLS configuration reloaded (%d certificate(s), %d client CA file(s), %d CRL(s)): new "
                      "connections use it", len(self.pairs), len(self.client_ca), len(infos))
        self._use(infos, now)
        return True

    def _use(self, infos, now=None):
        self.crls = infos
        for handle in self._alarms:
            handle.cancel()
        self._alarms = []
        for info in infos:
            line = problem(info)
            if line:
                self.log.error("%s", line)
            elif info["state"] == "unchecked":
                self.log.warning("CRL %s: cryptography is not installed, so its signature and dates are checked "
                                 "by OpenSSL at each handshake only (a bad one refuses that CA's clients)", info["file"])
        for name in (uncovered_cas(infos, self.client_ca) if infos else ()):
            self.log.warning("client CA %s has no CRL among --client-crl: the client certificates it issues "
                             "are refused (unable to get certificate CRL, SEC-98)", name)
        self._schedule(infos, now)

    def _schedule(self, infos, now=None):
        """An error line when a CRL in use passes its nextUpdate (OpenSSL refuses its CA's clients from then)."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        now = datetime.datetime.now(datetime.timezone.utc) if now is None else now
        for info in infos:
            if info["state"] == "valid" and info["next_update"] is not None:
                later = dict(info, state="expired")
                delay = (info["next_update"] - now).total_seconds()
                self._alarms.append(loop.call_later(max(delay, 0) + 0.5, self.log.error, "%s", problem(later)))
