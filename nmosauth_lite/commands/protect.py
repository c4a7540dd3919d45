"""`nmosauth-lite protect`: put IS-10 in front of an existing NMOS Node, unchanged.

Listens with TLS, checks every request with the resource-server guard and forwards
the allowed ones to the upstream Node (nmosauth_lite.aio.proxy). Keys come from a
JWKS file, or from trusted issuers (RFC 8414 metadata) kept in the state directory
and refreshed in the background (IS-10 RS-01..RS-10). Settings come from flags or
from the `[protect]` table of a TOML file (flags win). Prints one JSON line on stdout
once listening; logs and audit lines go to stderr (or an audit file). With --issuer,
every issuer's keys are fetched (bounded by --startup-timeout) before systemd hears READY.
SIGTERM or SIGINT: graceful shutdown, exit 0.
"""

import sys

from ..aio.address import format_listen, parse_listen
from ..aio.sdnotify import notify
from ..errors import ConfigError
from . import issuers

HELP = "authorizing reverse proxy: check IS-10 tokens, forward allowed requests to a Node"

DEFAULT_MAX_BODY = 16 * 1024 * 1024  # request bodies streamed through (NMOS bodies are KiB)
SHUTDOWN_GRACE = 10.0
DISCOVERY_INTERVAL = 60  # --discover: DNS-SD is asked again this often (records' TTLs bound it too)
DEFAULT_HSTS_MAX_AGE = 31536000  # BCP-003-01: HSTS with max-age=31536000 recommended in production

# setting -> (type, default); the TOML keys are these names, the flags --name-with-dashes
SETTINGS = {
    "listen": (str, None), "upstream": (str, None), "audience": (list, None), "jwks": (str, None),
    "issuer": (list, None), "cert": (list, None), "key": (list, None), "ca": (str, None),
    "state_dir": (str, None), "strict": (bool, False), "leeway": (float, None), "audit": (str, "-"),
    "max_connections": (int, 512), "backend": (str, "auto"), "keep_host": (bool, False),
    "strip_authorization": (bool, False), "cors_origin": (str, "*"), "head_timeout": (float, 10.0),
    "idle_timeout": (float, 30.0), "upstream_timeout": (float, 30.0), "max_body": (int, DEFAULT_MAX_BODY),
    "metrics": (str, None),
    # issue 11: forwarded headers and slow clients; issue 12: a cold start
    "trusted_proxies": (list, []), "max_per_address": (int, 0), "handshake_timeout": (float, 5.0),
    "body_timeout": (float, 30.0), "min_body_rate": (int, 512), "key_wait": (float, 2.0),
    "startup_timeout": (float, 10.0),
    # issue 23: clients are counted per address group (IPv4 /32 or /24; IPv6 always /64)
    "address_group": (int, 32),
    # issue 20: tokens from other servers, other API names, WebSockets that outlive their token
    # (claims_location None: the profile's, "top" for is-10, "either" for ipmx)
    "claims_location": (str, None), "api_aliases": (dict, {}), "ws_expiry": (str, "close"),
    "ws_grace": (float, 5.0),
    # issue 19: observe mode; HSTS
    "enforce": (str, "on"), "hsts_max_age": (int, DEFAULT_HSTS_MAX_AGE),
    # issue 21: the IPMX device profile (docs/ipmx.md)
    "profile": (str, "is-10"), "oaim": (int, 0), "instance_id": (str, None), "grant_policy": (str, "both"),
    "guest_paths": (list, []), "ncp_scopes": (list, ["nc", "control"]),
    # issue 22: finding the issuer on a device (commands/issuers.py)
    "discover": (bool, False), "domain": (list, None), "nameserver": (list, None), "connect": (list, None),
    # issue 21: client certificates (mTLS; under ipmx the client_id binding, SEC-44) and the
    # key-exchange groups check (SEC-82, SEC-85; client_cert None: optional with a client CA under ipmx)
    "client_ca": (list, None), "client_cert": (str, None), "tls_groups": (str, "warn"),
    "client_crl": (list, None),  # CRLs for client certificates (SEC-93 NESTCRL, SEC-98; aio/crlfiles.py)
}
CLIENT_CERT_MODES = ("none", "optional", "required")
TLS_GROUPS = ("warn", "require")


def add_arguments(p):
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on with TLS ([v6]:port for IPv6)")
    p.add_argument("--upstream", metavar="URL", help="the protected Node's base URL (http or https)")
    p.add_argument("--audience", action="append", metavar="HOST", help="this Node's host name (repeatable)")
    p.add_argument("--jwks", metavar="FILE", help="JWK Set of the trusted issuer(s); or use --issuer")
    p.add_argument("--issuer", action="append", metavar="URL",
                   help="trusted issuer (repeatable); without --jwks its keys are fetched and kept in --state-dir")
    p.add_argument("--cert", action="append", metavar="FILE",
                   help="TLS certificate chain (PEM); repeat with --key for a second one (RSA and ECDSA, BCP-003-01)")
    p.add_argument("--key", action="append", metavar="FILE", help="TLS private key (PEM) of the --cert in the same place")
    p.add_argument("--ca", metavar="FILE", help="extra CA certificates for authorization servers and an https upstream")
    p.add_argument("--config", metavar="FILE", help="TOML file ([protect] table) holding any of these settings")
    p.add_argument("--state-dir", metavar="DIR", help="where fetched issuer keys are persisted")
    p.add_argument("--strict", action="store_true", default=None, help="IS-10 strict profile: RS512 only")
    p.add_argument("--leeway", type=float, metavar="S", help="clock skew allowed on exp/iat/nbf (default 0; ipmx 1800)")
    p.add_argument("--audit", metavar="FILE|-|off", help="audit JSON lines: - for stderr (default), a file, or off")
    p.add_argument("--max-connections", type=int, metavar="N", help="concurrent client connections (default 512)")
    p.add_argument("--backend", help="crypto backend: auto, cryptography or pure")
    p.add_argument("--keep-host", action="store_true", default=None, help="forward the client's Host, not the upstream's")
    p.add_argument("--strip-authorization", action="store_true", default=None,
                   help="do not forward the Authorization header upstream")
    p.add_argument("--cors-origin", metavar="ORIGIN", help="Access-Control-Allow-Origin value (default *)")
    p.add_argument("--head-timeout", type=float, metavar="S", help="client must send a request head within this (default 10)")
    p.add_argument("--idle-timeout", type=float, metavar="S", help="idle keep-alive connections close after this (default 30)")
    p.add_argument("--upstream-timeout", type=float, metavar="S", help="wait this long for the upstream: 504 after (default 30)")
    p.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body forwarded (default 16 MiB)")
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics on this separate listener (off by default)")
    p.add_argument("--trusted-proxy", dest="trusted_proxies", action="append", metavar="ADDR[/BITS]",
                   help="a proxy in front of protect whose X-Forwarded-*/Forwarded values are kept (repeatable); "
                        "from anyone else they are replaced")
    p.add_argument("--max-per-address", type=int, metavar="N",
                   help="connections one client address may hold (default max(4, max-connections/8))")
    p.add_argument("--handshake-timeout", type=float, metavar="S", help="TLS handshake must end within this (default 5)")
    p.add_argument("--body-timeout", type=float, metavar="S", help="a request body must arrive within this (default 30)")
    p.add_argument("--address-group", type=int, choices=(24, 32), metavar="24|32",
                   help="count IPv4 clients per address (32, default) or per /24 network; IPv6 per /64")
    p.add_argument("--min-body-rate", type=int, metavar="BYTES/S",
                   help="slower request bodies are cut with 408 after 2 s (default 512; 0: off)")
    p.add_argument("--key-wait", type=float, metavar="S",
                   help="at start-up, a request waits this long for its issuer's keys before 503 (default 2)")
    p.add_argument("--claims-location", metavar="top|ext|either",
                   help="where tokens carry the x-nmos-* claims: top level (IS-10, default), under ext "
                        "(Ory Hydra), or either (a claim in both places: 401)")
    p.add_argument("--api-alias", dest="api_aliases", action="append", metavar="ALIAS=API",
                   help="a claim/scope name the authorization server uses for an NMOS API, e.g. nc=ncp (repeatable)")
    p.add_argument("--ws-expiry", metavar="close|keep",
                   help="an open WebSocket whose token expires: close it with code 1008 (default) or keep it")
    p.add_argument("--ws-grace", type=float, metavar="S",
                   help="with --ws-expiry close: seconds past exp + leeway before the close (default 5)")
    p.add_argument("--enforce", metavar="on|off|API,...",
                   help="on (default); off: observe mode, requests decided and audited, then forwarded (the Node "
                        "is NOT protected); node,connection: enforce those APIs only")
    p.add_argument("--hsts-max-age", type=int, metavar="S",
                   help="Strict-Transport-Security max-age on every answer (default 31536000, BCP-003-01; 0: off)")
    p.add_argument("--startup-timeout", type=float, metavar="S",
                   help="with --issuer or --discover: wait this long at start-up for the issuers' keys (default 10)")
    p.add_argument("--profile", choices=("is-10", "ipmx"), help="is-10 (default) or ipmx (docs/ipmx.md)")
    p.add_argument("--oaim", type=int, choices=(0, 1, 2),
                   help="ipmx: audience mode: 0 serial number (default), 1 certificate names, 2 either")
    p.add_argument("--instance-id", metavar="ID", help="ipmx: this Node's BCP-002-02 instance id (serial number)")
    p.add_argument("--grant-policy", choices=("both", "client_credentials", "authorization_code"),
                   help="ipmx: which grants' tokens are accepted (default both)")
    p.add_argument("--guest-path", dest="guest_paths", action="append", metavar="PATH",
                   help="ipmx: a read-only WebSocket endpoint (repeatable; PREFIX* allowed); other upgrades are read-write")
    p.add_argument("--ncp-scope", dest="ncp_scopes", action="append", metavar="NAME",
                   help="ipmx: a scope name admitting IS-12 (/x-nmos/ncp) requests (repeatable; default nc and control)")
    issuers.add_arguments(p)
    p.add_argument("--client-ca", dest="client_ca", action="append", metavar="FILE",
                   help="CA certificates (PEM) that sign client certificates (repeatable); enables mTLS")
    p.add_argument("--client-cert", choices=CLIENT_CERT_MODES,
                   help="ask clients for a certificate: none (default), optional (default under ipmx with "
                        "--client-ca) or required; under ipmx a token's client_id must name it (SEC-44)")
    p.add_argument("--client-crl", dest="client_crl", action="append", metavar="FILE",
                   help="a CRL (PEM or DER) from a --client-ca: revoked client certificates are refused (repeatable; "
                        "re-read on SIGHUP)")
    p.add_argument("--tls-groups", choices=TLS_GROUPS,
                   help="ipmx: when OpenSSL accepts key-exchange groups TR-10-SEC forbids: warn (default) or "
                        "require (refuse to start); see docs/ipmx.md")


def load_settings(args):
    """Defaults < the config file < flags. Raises ConfigError for anything unusable."""
    cfg = dict((name, default) for name, (_t, default) in SETTINGS.items())
    if args.config:
        cfg.update(_read_config(args.config))
    for name in SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            if name == "api_aliases":  # flags: ALIAS=API strings, added to the file's table
                from .verify import parse_alias_args

                value = dict(cfg["api_aliases"] or {}, **parse_alias_args(value))
            cfg[name] = value
    for name in ("listen", "upstream", "cert", "key"):
        if not cfg[name]:
            raise ConfigError("--%s is required (flag or config file)" % name.replace("_", "-"))
    if cfg["profile"] not in ("is-10", "ipmx"):
        raise ConfigError("profile must be is-10 or ipmx")
    if cfg["claims_location"] is None:  # the profile's: IS-10 TOK-20 top level; IPMX SEC-23 either place
        cfg["claims_location"] = "either" if cfg["profile"] == "ipmx" else "top"
    if cfg["profile"] == "ipmx":
        if cfg["audience"]:
            raise ConfigError("under the ipmx profile the audience is this Node's certificate names (read from --cert) "
                              "and --instance-id: leave --audience out")
        if cfg["strict"]:
            raise ConfigError("--strict is the IS-10 RS512-only profile; not with --profile ipmx")
    elif not cfg["audience"]:
        raise ConfigError("--audience is required (flag or config file)")
    if cfg["client_cert"] is None:  # ipmx: a client CA means mTLS is wanted, with the binding (SEC-44)
        cfg["client_cert"] = "optional" if cfg["client_ca"] and cfg["profile"] == "ipmx" else "none"
    if cfg["client_cert"] not in CLIENT_CERT_MODES:
        raise ConfigError("client_cert must be none, optional or required")
    if cfg["client_cert"] != "none" and not cfg["client_ca"]:
        raise ConfigError("--client-cert %s needs --client-ca FILE (the CAs of client certificates)"
                          % cfg["client_cert"])
    if cfg["client_ca"] and cfg["client_cert"] == "none":
        raise ConfigError("--client-ca is not used with --client-cert none: give --client-cert optional or required")
    if cfg["client_crl"] and not cfg["client_ca"]:
        raise ConfigError("--client-crl needs --client-ca FILE: the CA that signed the CRL (SEC-95)")
    if cfg["tls_groups"] not in TLS_GROUPS:
        raise ConfigError("tls_groups must be warn or require")
    if len(cfg["cert"]) != len(cfg["key"]) or len(cfg["cert"]) > 2:
        raise ConfigError("--cert and --key go in pairs (at most two: one RSA, one ECDSA)")
    if not cfg["jwks"] and not cfg["issuer"] and not cfg["discover"]:
        raise ConfigError("give --jwks FILE, --issuer URL or --discover")
    cfg["reach"] = issuers.read(cfg)
    if cfg["jwks"] and (cfg["discover"] or cfg["connect"]):
        raise ConfigError("--discover and --connect fetch issuers' keys: they do not go with --jwks")
    if cfg["max_connections"] < 1 or cfg["max_body"] < 0:
        raise ConfigError("max_connections must be >= 1 and max_body >= 0")
    for name in ("head_timeout", "idle_timeout", "upstream_timeout", "handshake_timeout", "body_timeout"):
        if not cfg[name] > 0:
            raise ConfigError("%s must be > 0" % name)
    for name in ("max_per_address", "min_body_rate", "key_wait", "startup_timeout", "hsts_max_age"):
        if cfg[name] < 0:
            raise ConfigError("%s must be >= 0" % name)
    if cfg["address_group"] not in (24, 32):
        raise ConfigError("address_group must be 24 or 32")
    if cfg["ws_expiry"] not in ("close", "keep"):
        raise ConfigError("ws_expiry must be close or keep")
    if not 0 <= cfg["ws_grace"] <= 300:
        raise ConfigError("ws_grace must be between 0 and 300 seconds")
    from ..guard import parse_enforce

    try:
        cfg["enforced_apis"] = parse_enforce(cfg["enforce"])
    except ValueError as e:
        raise ConfigError(str(e))
    cfg["host"], cfg["port"] = parse_listen(cfg["listen"])
    if cfg["metrics"] and cfg["port"] and parse_listen(cfg["metrics"])[1] == cfg["port"]:
        raise ConfigError("--metrics needs its own port, never the public one")  # issue 14
    return cfg


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


def _read_config(path, section="protect", settings=None):
    """The typed settings of `[section]` (also `attach`'s, with its own SETTINGS table)."""
    from ..aio.files import read_config_table

    settings = SETTINGS if settings is None else settings
    table = read_config_table(path, section)
    out = {}
    for name, value in table.items():
        spec = settings.get(name)
        if spec is None:  # a typo must never silently weaken a setting
            raise ConfigError("config file %s: unknown setting %r" % (path, name))
        want = spec[0]
        if want is list and isinstance(value, str):
            value = [value]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = isinstance(value, want) and (want is not int or not isinstance(value, bool))
        if want is list or want is dict:
            ok = ok and all(isinstance(v, str) for v in (value.values() if want is dict else value))
        if not ok:
            raise ConfigError("config file %s: %s must be %s" % (path, name, want.__name__))
        out[name] = value
    return out


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
    from ..aio.tlsreload import ServerTLS
    from ..aio.tlsutil import server_context
    from ..guard import Guard

    log = logging.getLogger("nmosauth_lite.protect")
    ipmx = cfg["profile"] == "ipmx"
    tls = ServerTLS(zip(cfg["cert"], cfg["key"]), client_ca=cfg["client_ca"], client_cert=cfg["client_cert"],
                    client_crl=cfg["client_crl"], policy="ipmx" if ipmx else "bcp-003-01", fixed_names=ipmx, log=log)
    try:  # ConfigError naming the file at fault; SIGHUP builds it again (SEC-94)
        ctx = tls.start()
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
    loop.add_signal_handler(signal.SIGHUP, tls.reload, server)  # certificates, client CAs, CRLs (SEC-94)
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
