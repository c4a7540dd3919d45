"""`nmosauth-lite as serve`: state directory, TLS material, store, keys, HTTPS server, shutdown.

With no configuration the server makes what it needs in the state directory (0700):
the SQLite store (0600) with a first signing key, and a local CA with a server
certificate for its host name (keys 0600; for labs: production sites configure
tls.cert_file/key_file from their own CA, BCP-003-01). When listening it prints one
JSON line {"issuer", "ca_file", "listen"} on stdout; logs go to stderr. SIGTERM and
SIGINT stop it: no new connections, requests in flight finish, the store is closed.
"""

import asyncio
import datetime
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import time

from ..aio.certfiles import validity
from ..aio.sdnotify import notify
from ..errors import ConfigError
from .config import LAB_WARNING
from .app import AuthServerApp
from .keys import KeyRing
from .store import Store

log = logging.getLogger("nmosauth_lite.authserver")

PKI_DAYS = 825  # local CA and server certificate validity
RENEW_BEFORE = 30 * 86400  # a certificate closer than this to its end is made again
HOUSEKEEPING_INTERVAL = 600.0
AUDIT_RETENTION = 90 * 86400
SHUTDOWN_GRACE = 5.0


def prepare_state_dir(path):
    from ..aio.files import ensure_private_dir

    ensure_private_dir(path)
    st = os.stat(path)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, 0o700)  # holds private keys: owner only
    return path


def open_store(config):
    prepare_state_dir(config.state_dir)
    return Store(config.db_path)


def open_keyring(config, store):
    return KeyRing(store, alg=config.token_alg, rsa_bits=config.rsa_bits, publish_delay=config.publish_delay,
                   retention=max(3600, config.token_lifetime))


def _names_for(config):
    dns = [config.host] if not _is_ip(config.host) else []
    if "localhost" not in dns:
        dns.append("localhost")
    ips = ["127.0.0.1", "::1"]
    for h in (config.host, config.listen_host):
        if _is_ip(h) and h not in ips and h not in ("0.0.0.0", "::"):
            ips.append(h)
    return dns, ips


def _is_ip(h):
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        return False


def _cert_usable(path, dns, ips):
    from cryptography import x509

    try:
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return False
    if validity(cert)[1].timestamp() - time.time() < RENEW_BEFORE:  # cryptography 38 and later
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ip = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return set(dns) <= have_dns and {str(ipaddress.ip_address(a)) for a in ips} <= have_ip


def ensure_tls(config):
    """([(cert_file, key_file)], ca_file): configured files, or a local CA made on first start."""
    if config.cert_files:
        return list(zip(config.cert_files, config.key_files)), config.ca_file
    from ..aio.tlsutil import TestPKI, make_test_pki

    from ..aio.files import ensure_private_dir

    d = ensure_private_dir(config.tls_dir)
    pki = TestPKI(d)
    dns, ips = _names_for(config)
    if not _cert_usable(pki.cert, dns, ips):
        if os.path.exists(pki.ca_cert):
            log.warning("making a new local CA and server certificate for %s: clients must trust the new %s",
                        ", ".join(dns + ips), pki.ca_cert)
        pki = make_test_pki(d, dns_names=dns, ip_addresses=ips, client_name="nmosauth-lite-unused", days=PKI_DAYS)
    return [(pki.cert, pki.key)], pki.ca_cert


def _bind(host, port):
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(512)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise ConfigError("cannot listen on %s:%d: %s" % (host, port, e.strerror or e))
    return sock


class Running:
    """A started server: `issuer`, `port`, `ca_file`, `app`, `store`; `await stop()`."""

    def __init__(self, server, app, store, issuer, port, ca_file, listen):
        self.server = server
        self.app = app
        self.store = store
        self.issuer = issuer
        self.port = port
        self.ca_file = ca_file
        self.listen = listen
        self._housekeeping = None

    def ready_line(self):
        return json.dumps({"issuer": self.issuer, "ca_file": self.ca_file, "listen": self.listen})

    async def stop(self):
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            self._housekeeping = None
        await self.server.shutdown(SHUTDOWN_GRACE)
        await self.app.close()
        self.store.close()


async def start(config, *, clock=time.time):
    """Bring the server up and return a Running (no signal handling: for tests and `serve`)."""
    from ..aio.server import HTTPServer
    from ..aio.tlsutil import server_context

    pairs, ca_file = ensure_tls(config)
    ssl_ctx = server_context(pairs, cert_flag="tls.cert_file (--cert)",  # ConfigError naming the file at fault
                             key_flag="tls.key_file (--key)")
    store = open_store(config)
    try:
        keyring = open_keyring(config, store)
        now = clock()
        keyring.ensure(now)
        store.purge(now, now - AUDIT_RETENTION, now - config.pending_lifetime)
        keyring.purge(now)
        sock = _bind(config.listen_host, config.listen_port)
    except BaseException:
        store.close()
        raise
    port = sock.getsockname()[1]
    issuer = config.issuer(port)
    aud = config.token_audience()
    if config.audience is None and not any(a.startswith("*.") for a in aud):
        log.warning("tokens carry aud %s (this host only: it has no domain); Nodes elsewhere refuse them "
                    "with 403: set tokens.audience", json.dumps(aud))
    if config.lab:
        log.warning(LAB_WARNING)
    _check_clients(config, store, aud)
    store.put_meta("issuer", issuer)  # what `as token` signs as when not told (the port may have been 0)
    store.put_meta("audience", json.dumps(config.token_audience()))
    app = AuthServerApp(config, store, keyring, issuer=issuer, clock=clock)
    server = HTTPServer(app, ssl=ssl_ctx, server_header="nmosauth-lite", hsts_max_age=config.hsts_max_age,
                        grouping=app.grouping)
    await server.start(sock=sock)
    host = config.listen_host
    listen = ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)
    running = Running(server, app, store, issuer, port, os.path.abspath(ca_file) if ca_file else None, listen)
    running._housekeeping = asyncio.get_running_loop().create_task(
        _housekeeping(store, keyring, clock, config.pending_lifetime))
    log.info("authorization server %s listening on %s", issuer, listen)
    return running


def _check_clients(config, store, aud):
    """Say at start which clients' own audience or permissions (issue 21) no longer fit this
    configuration: the token endpoint refuses them until corrected (clientaccess.token_access)."""
    from ..logfield import escape
    from .clientaccess import token_access

    for c in store.list_clients():
        if c["permissions"] is not None and config.profile != "ipmx":
            log.info("client %s: its own permissions count under the ipmx profile only; its tokens carry "
                     "tokens.permissions", escape(c["client_id"]))
        try:
            token_access(c, config, aud)
        except ValueError as e:
            log.warning("client %s gets no token until corrected: %s", escape(c["client_id"]), e)


async def _housekeeping(store, keyring, clock, pending_lifetime):
    while True:
        await asyncio.sleep(HOUSEKEEPING_INTERVAL)
        try:
            now = clock()
            store.purge(now, now - AUDIT_RETENTION, now - pending_lifetime)
            for kid in keyring.purge(now):
                log.info("signing key %s deleted: no token it signed is still valid", kid)
        except Exception:
            log.exception("housekeeping failed")


async def serve(config, out=None, metrics=None):
    """Run until SIGTERM/SIGINT. Prints the ready line on `out` (stdout). Returns an exit code.
    `metrics`: HOST:PORT of a separate Prometheus listener (aio/metrics.py), or None."""
    out = out or sys.stdout
    running = await start(config)
    metrics_server = None
    if metrics:  # metrics hook (issue 14)
        from ..aio.metrics import start_for_as

        try:
            metrics_server = await start_for_as(running, metrics)
        except BaseException:
            await running.stop()
            raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    line = running.ready_line()
    if metrics_server is not None:  # metrics hook: where to scrape
        line = json.dumps(dict(json.loads(line), metrics="%s:%d" % (metrics.rpartition(":")[0], metrics_server.port)))
    out.write(line + "\n")
    out.flush()
    notify("READY=1")  # systemd Type=notify (board/systemd); a no-op elsewhere
    try:
        await stop.wait()
    finally:
        notify("STOPPING=1")
        log.info("shutting down")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if metrics_server is not None:  # metrics hook
            await metrics_server.shutdown(1.0)
        await running.stop()
    return 0


def utcnow_text(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
