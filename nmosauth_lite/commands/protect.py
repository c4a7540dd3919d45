"""`nmosauth-lite protect`: put IS-10 in front of an existing NMOS Node, unchanged.

Listens with TLS, checks every request with the resource-server guard and forwards
the allowed ones to the upstream Node (nmosauth_lite.aio.proxy). Keys come from a
JWKS file, or from trusted issuers (RFC 8414 metadata) kept in the state directory
and refreshed in the background (IS-10 RS-01..RS-10). Settings come from flags or
from the `[protect]` table of a TOML file (flags win). Prints one JSON line on stdout
once listening; logs and audit lines go to stderr (or an audit file). With --issuer,
every issuer's keys are fetched (bounded by --startup-timeout) before systemd hears READY.
SIGTERM or SIGINT: graceful shutdown, exit 0. The settings (their table, flags, TOML and
checks) are in protect_settings.py.
"""

import sys

from ..aio.address import format_listen, parse_listen
from ..aio.sdnotify import notify
from ..errors import ConfigError
from . import issuers
from .protect_settings import (  # noqa: F401 (the settings' names stay importable from here)
    CLIENT_CERT_MODES, DEFAULT_HSTS_MAX_AGE, DEFAULT_MAX_BODY, SETTINGS, TLS_GROUPS, add_arguments, load_settings,
)
from .protect_settings import read_config as _read_config  # noqa: F401

HELP = "authorizing reverse proxy: check IS-10 tokens, forward allowed requests to a Node"

SHUTDOWN_GRACE = 10.0
DISCOVERY_INTERVAL = 60  # --discover: DNS-SD is asked again this often (records' TTLs bound it too)


def enforce_text(apis):
    """The `enforce` setting as written back: "on", "off" or "node,connection"."""
    return "on" if apis is None else (",".join(apis) if apis else "off")


def observe_warning(apis):
    """The loud line for observe mode (issue 19 §4): start-up log, doctor."""
    if not apis:
        return ("OBSERVE MODE (--enforce off): THE NODE IS NOT PROTECTED: refusals are audited as "
                "would_deny and forwarded.")
    return ("OBSERVE MODE for every API but %s: the others are NOT PROTECTED: their refusals are audited "
            "as would_deny and forwarded." % ", ".join(apis))


class AuditLog:
    """The guard's audit callable: one JSON line per decision (IS-10 RS-41; the record
    names the token by a short hash only). `target`: "-" (stderr), a file path, or "off"."""

    def __init__(self, target="-"):
        from ..jsonshim import dumps
        from ..logfield import escape_json

        self._dumps = dumps
        self._escape = escape_json
        self._own = False
        if target in (None, "off"):
            self.stream = None
        elif target == "-":
            self.stream = sys.stderr
        else:
            try:
                import os

                fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self.stream = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
            except OSError as e:
                raise ConfigError("cannot open audit file %s: %s" % (target, e.strerror or e))
            self._own = True

    @property
    def callback(self):
        return None if self.stream is None else self

    def __call__(self, record):
        try:
            self.stream.write(self._escape(self._dumps(record)) + "\n")  # one line per record, always
        except (OSError, ValueError) as e:  # a full disk must not take the proxy down
            import logging

            logging.getLogger("nmosauth_lite.protect").error("audit write failed: %s", e)

    def close(self):
        if self._own:
            self.stream.close()


def _profile_options(cfg):
    """TokenValidator keywords for the ipmx profile: the names come from protect's own certificate
    (SEC-32: the listener that receives the request)."""
    if cfg["profile"] != "ipmx":
        return {}
    from ..aio.tlsutil import certificate_names

    names = []
    try:
        for cert in cfg["cert"]:  # an RSA and an ECDSA certificate: the names of both (SEC-32)
            names += [n for n in certificate_names(cert) if n not in names]
    except ValueError as e:
        raise ConfigError(str(e))
    return {"profile": "ipmx", "oaim": cfg["oaim"], "instance_id": cfg["instance_id"], "cert_names": names,
            "grant_policy": cfg["grant_policy"], "guest_paths": cfg["guest_paths"], "ncp_scopes": cfg["ncp_scopes"]}


def _validator(cfg):
    from ..jws import DEFAULT_ALGORITHMS, IS10_STRICT_ALGORITHMS
    from ..profile import get_profile
    from ..validator import TokenValidator

    popts = _profile_options(cfg)
    algorithms = IS10_STRICT_ALGORITHMS if cfg["strict"] else (get_profile(cfg["profile"]).algorithms if popts
                                                               else DEFAULT_ALGORITHMS)
    leeway = cfg["leeway"]  # None: the profile's (is-10 0 s, ipmx 1800 s)
    store = None
    if cfg["jwks"]:
        from .verify import load_jwks

        v = TokenValidator(jwks=load_jwks(cfg["jwks"]), audience=cfg["audience"] or (), issuers=cfg["issuer"],
                           leeway=leeway, backend=cfg["backend"], algorithms=algorithms,
                           claims_location=cfg["claims_location"], api_aliases=cfg["api_aliases"], **popts)
    else:
        from ..aio.files import default_state_dir

        store = issuers.key_store(cfg["issuer"], cfg["reach"], state_dir=cfg["state_dir"] or default_state_dir(),
                                  ca_file=cfg["ca"], algorithms=algorithms, profile=cfg["profile"])
        v = TokenValidator(keys=store, audience=cfg["audience"] or (), leeway=leeway, backend=cfg["backend"],
                           algorithms=algorithms, claims_location=cfg["claims_location"],
                           api_aliases=cfg["api_aliases"], **popts)
    v.backend  # resolve now: an unavailable backend is a configuration error
    return v, store


def run(args):
    import asyncio
    import logging

    cfg = load_settings(args)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_serve(cfg))


async def _serve(cfg):
    import asyncio
    import json
    import logging
    import signal
    import ssl

    from ..aio.admission import Grouping
    from ..aio.proxy import AuthProxy
    from ..aio.server import HTTPServer
    from ..aio.tlspolicy import check_groups
    from ..aio.tlsutil import server_context
    from ..guard import Guard

    log = logging.getLogger("nmosauth_lite.protect")
    ipmx = cfg["profile"] == "ipmx"
    try:  # ConfigError naming the file at fault
        ctx = server_context(list(zip(cfg["cert"], cfg["key"])), ca_file=cfg["client_ca"],
                             client_cert=cfg["client_cert"], policy="ipmx" if ipmx else "bcp-003-01")
    except ValueError as e:
        raise ConfigError(str(e))
    if ipmx:  # SEC-82, SEC-85: probed on a twin without client certificates (the probe presents none)
        warning = check_groups(server_context(list(zip(cfg["cert"], cfg["key"])), policy="ipmx"), cfg["tls_groups"])
        if warning:
            log.warning("%s", warning)
    validator, store = _validator(cfg)
    audit = AuditLog(cfg["audit"])
    # --- metrics hook (issue 14, aio/metrics.py): wraps validator, audit callback and handler
    metrics = None
    if cfg["metrics"]:
        from ..aio.metrics import ProxyMetrics, start_listener

        metrics = ProxyMetrics(cfg["profile"])
        validator = metrics.validator(validator)
    guard = Guard(validator, audit=metrics.audit(audit.callback) if metrics else audit.callback,
                  cors_origin=cfg["cors_origin"], ws_expiry=cfg["ws_expiry"], ws_grace=cfg["ws_grace"],
                  enforce=cfg["enforced_apis"])
    try:
        proxy = AuthProxy(guard, cfg["upstream"], ca_file=cfg["ca"], keep_host=cfg["keep_host"],
                          strip_authorization=cfg["strip_authorization"], timeout=cfg["upstream_timeout"],
                          trusted_proxies=cfg["trusted_proxies"], keys=store, key_wait=cfg["key_wait"])
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("cannot load --ca: %s" % (getattr(e, "strerror", None) or e))
    server = HTTPServer(metrics.handler(proxy) if metrics else proxy, ssl=ctx, max_connections=cfg["max_connections"],
                        head_timeout=cfg["head_timeout"], idle_timeout=cfg["idle_timeout"], max_body=cfg["max_body"],
                        max_per_address=cfg["max_per_address"] or None, handshake_timeout=cfg["handshake_timeout"],
                        body_timeout=cfg["body_timeout"], min_body_rate=cfg["min_body_rate"],
                        hsts_max_age=cfg["hsts_max_age"], grouping=Grouping(cfg["address_group"]))
    if store is not None:
        store.begin_startup()  # requests before the keys are in may wait (key_wait); prime() ends it
    try:
        await server.start(cfg["host"], cfg["port"])
    except OSError as e:
        raise ConfigError("cannot listen on %s: %s" % (cfg["listen"], e.strerror or e))
    metrics_server = None
    if metrics is not None:  # metrics hook
        server.on_reject = metrics.rejected
        metrics.watch(server, store)
        metrics_server = await start_listener(metrics.registry, cfg["metrics"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listen = format_listen(cfg["host"], server.port)
    ready = {"listen": listen, "upstream": cfg["upstream"], "enforce": enforce_text(cfg["enforced_apis"])}
    if metrics_server is not None:  # metrics hook
        ready["metrics"] = "%s:%d" % (parse_listen(cfg["metrics"])[0], metrics_server.port)
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    following = None
    if cfg["reach"].discover:
        # issue 22: what DNS-SD advertises is trusted before priming (bounded), then followed
        found, cache = await issuers.trust_discovered(store, cfg["reach"], cfg["startup_timeout"])
        if not found:
            log.warning("--discover: no usable authorization server advertised yet; still looking every %d s",
                        DISCOVERY_INTERVAL)
        following = asyncio.ensure_future(store.follow_discovery(cache, DISCOVERY_INTERVAL))
    if store is not None:
        # Issue 12 §1: keys first, then READY (bounded: an AS that is down delays us, never blocks
        # us); requests arriving meanwhile wait up to key_wait for the fetch (RS-07 503 after).
        priming = asyncio.ensure_future(store.prime(cfg["startup_timeout"]))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait((priming, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not priming.done():
            priming.cancel()
        await asyncio.gather(priming, stopping, return_exceptions=True)
    refresher = asyncio.ensure_future(store.run()) if store is not None else None
    notify("READY=1")  # systemd Type=notify (board/systemd); a no-op elsewhere
    log.info("protecting %s on %s (audience %s)", cfg["upstream"], listen,
             ", ".join(cfg["audience"] or ()) or "the certificate's names, profile ipmx")
    if cfg["enforced_apis"] is not None:
        log.warning("%s", observe_warning(cfg["enforced_apis"]))
    try:
        await stop.wait()
        log.info("shutting down")
        notify("STOPPING=1")
    finally:
        await server.shutdown(SHUTDOWN_GRACE)
        if metrics_server is not None:  # metrics hook
            await metrics_server.shutdown(1.0)
        await proxy.close()
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        if refresher is not None:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            await store.close()
        audit.close()
    return 0
