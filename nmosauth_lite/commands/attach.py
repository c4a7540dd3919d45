"""`nmosauth-lite attach`: IS-10 for a Node's outgoing IS-04 calls, without touching its code.

The Node is pointed at attach instead of its Registry (plain HTTP on loopback or a Unix
socket; TLS with --cert/--key). attach finds the Registry by unicast DNS-SD
(`_nmos-register._tcp`) or takes --registry URLs, keeps a token for the `registration` scope
(RFC 7591 registration once, client_credentials; the `[client]` identity and authorization
server settings that `register` and `token` use) and forwards the Registration API's calls
with it (aio/attach.py, aio/attach_rules.py). Settings: flags, or the `[attach]` table of the
config file (flags win). One JSON line on stdout once listening; logs on stderr. SIGTERM or
SIGINT: graceful shutdown (the token is revoked), exit 0. `--profile ipmx` (TR-10-SEC): no
OAuth at all (SEC-04, SEC-63, SEC-75); the Registry is reached over HTTPS (--rap 1) or mutual TLS
with the device's client certificate (--rap 2, SEC-79) and found by adverts saying api_auth=false
(SEC-76).
"""

import copy
import os
import sys

from ..aio.address import format_listen, parse_listen
from ..errors import ConfigError
from .attach_profile import PROFILES, check_profile, client_transport
from .protect_settings import add_address_group_argument, check_address_group
from .protect_settings import read_config as _read_config
from .register import DEFAULT_CONFIG, add_selection_arguments, apply_config, build, with_jwks

HELP = "forward a Node's IS-04 Registration API calls to its Registry with IS-10 tokens"
SHUTDOWN_GRACE = 5.0
START_RETRY = 5.0  # seconds between first-token attempts while the authorization server is away
UNIX = "unix:"

# setting -> (type, default); the [attach] keys are these names, the flags --name-with-dashes
SETTINGS = {
    "listen": (str, "127.0.0.1:8445"), "registry": (list, []), "apis": (list, ["registration"]),
    "cert": (list, None), "key": (list, None), "socket_mode": (int, 0o660), "max_body": (int, 1048576),
    "max_response": (int, 1048576), "max_connections": (int, 64), "head_timeout": (float, 10.0),
    "idle_timeout": (float, 30.0), "connect_timeout": (float, 5.0), "registry_timeout": (float, 10.0),
    "token_wait": (float, 10.0), "startup_timeout": (float, 10.0), "metrics": (str, None),
    "address_group": (int, 32),  # issue 23: Node connections counted per IPv4 address or /24 (IPv6 /64)
    # TR-10-SEC registration (docs/retrofit.md "IPMX registration"): TLS only, no token
    "profile": (str, "is-10"), "rap": (int, None), "client_cert": (str, None), "client_key": (str, None),
}


def add_arguments(p):
    add_selection_arguments(p)  # --config, the authorization server, DNS-SD, credentials, --timeout
    p.add_argument("--name", help='client_name for the registration with the authorization server: "<manufacturer> '
                   '<product> <serial>" (IS-10 CL-09; or [client] manufacturer, product, serial)')
    p.add_argument("--listen", metavar="HOST:PORT|unix:PATH",
                   help="where the Node sends its Registry calls (default 127.0.0.1:8445; plain HTTP needs loopback)")
    p.add_argument("--registry", action="append", metavar="URL",
                   help="the Registry's https://host:port (repeatable, tried in order); default: DNS-SD "
                        "_nmos-register._tcp in --domain")
    p.add_argument("--api", dest="apis", action="append", metavar="NAME",
                   help="an NMOS API forwarded besides the Registration API (repeatable, e.g. query)")
    p.add_argument("--cert", action="append", metavar="FILE",
                   help="TLS certificate chain for the Node side (PEM; optional); repeat with --key for a second "
                        "one (RSA and ECDSA, BCP-003-01)")
    p.add_argument("--key", action="append", metavar="FILE", help="TLS private key (PEM) of the --cert in the same place")
    p.add_argument("--socket-mode", type=_octal, metavar="MODE", help="file mode of a unix: socket (default 0660)")
    p.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body forwarded (default 1 MiB)")
    p.add_argument("--max-response", type=int, metavar="BYTES", help="largest Registry answer read (default 1 MiB)")
    p.add_argument("--head-timeout", type=float, metavar="S", help="the Node must send a request head within this "
                   "(default 10)")
    p.add_argument("--idle-timeout", type=float, metavar="S", help="idle keep-alive connections close after this "
                   "(default 30)")
    p.add_argument("--connect-timeout", type=float, metavar="S", help="TCP + TLS to a Registry (default 5)")
    p.add_argument("--registry-timeout", type=float, metavar="S",
                   help="wait this long for a Registry's answer, then the next one (default 10)")
    p.add_argument("--token-wait", type=float, metavar="S",
                   help="a request waits this long for a token, then 503 + Retry-After (default 10)")
    p.add_argument("--startup-timeout", type=float, metavar="S",
                   help="wait this long for the first token before telling systemd we are ready (default 10)")
    p.add_argument("--max-connections", type=int, metavar="N", help="concurrent Node connections (default 64)")
    add_address_group_argument(p)  # the same option as protect's (aio.admission.Grouping)
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics on this separate listener")
    # the IPMX profile (TR-10-SEC §6): registration secured by TLS only
    p.add_argument("--profile", choices=PROFILES, help="is-10 (default: a token for each call) or ipmx (no token; "
                   "TLS or mutual TLS with the Registry, TR-10-SEC SEC-75; docs/retrofit.md)")
    p.add_argument("--rap", type=int, metavar="1|2", help="IPMX Registry Access Policy (required with --profile "
                   "ipmx): 1 HTTPS, the Registry authenticated; 2 mutual TLS with --client-cert (SEC-80)")
    p.add_argument("--client-cert", metavar="FILE", help="the device's TLS client certificate (PEM, TR-10-SEC TCC) "
                   "presented to the Registry under --rap 2")
    p.add_argument("--client-key", metavar="FILE", help="the private key of --client-cert (PEM, mode 0600 or 0640)")


def _octal(text):
    try:
        return int(text, 8)
    except ValueError:
        raise ConfigError("--socket-mode wants an octal file mode such as 0660, not %r" % text[:20])


def load_settings(args):
    """Defaults < the [attach] table < flags. Raises ConfigError for anything unusable."""
    cfg = dict((name, copy.copy(default)) for name, (_t, default) in SETTINGS.items())
    path = args.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    if path:
        cfg.update(_read_config(path, "attach", SETTINGS))
    for name in SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            cfg[name] = value
    from ..aio.attach_rules import REGISTRATION, is_api_name

    apis = [REGISTRATION] + [a for a in cfg["apis"] if a != REGISTRATION]
    for api in apis:
        if not is_api_name(api):
            raise ConfigError("apis: %r is not an NMOS API name (lowercase, as in /x-nmos/<api>)" % api[:40])
    cfg["apis"] = list(dict.fromkeys(apis))
    cfg["cert"], cfg["key"] = cfg["cert"] or [], cfg["key"] or []
    if len(cfg["cert"]) != len(cfg["key"]) or len(cfg["cert"]) > 2:
        raise ConfigError("--cert and --key go in pairs (at most two: one RSA, one ECDSA)")
    for name in ("max_body", "max_response", "max_connections"):
        if cfg[name] < 1:
            raise ConfigError("%s must be >= 1" % name)
    for name in ("head_timeout", "idle_timeout", "connect_timeout", "registry_timeout", "token_wait"):
        if not cfg[name] > 0:
            raise ConfigError("%s must be > 0" % name)
    if cfg["startup_timeout"] < 0 or not 0 <= cfg["socket_mode"] <= 0o777:
        raise ConfigError("startup_timeout must be >= 0 and socket_mode a file mode")
    check_address_group(cfg)
    if cfg["listen"].startswith(UNIX):
        cfg["host"], cfg["port"], cfg["path"] = None, None, cfg["listen"][len(UNIX):]
        if not cfg["path"].startswith("/"):
            raise ConfigError("listen unix:PATH needs an absolute path")
    else:
        cfg["host"], cfg["port"] = parse_listen(cfg["listen"])
        cfg["path"] = None
        from ..aio.files import is_loopback

        if not cfg["cert"] and not is_loopback(cfg["host"]):  # the Node side: loopback, a socket, or TLS
            raise ConfigError("plain HTTP listens on loopback or a Unix socket only; give --cert/--key for %s"
                              % cfg["listen"])
    if cfg["registry"]:
        from ..aio.attach import parse_registry_url

        for url in cfg["registry"]:
            parse_registry_url(url)
    if cfg["metrics"] and cfg["port"] and parse_listen(cfg["metrics"])[1] == cfg["port"]:
        raise ConfigError("--metrics needs its own port")
    check_profile(cfg, args)
    return cfg


def prepare(args):
    """Every setting attach starts with, checked before anything starts: the [attach] table and
    flags, then the [client] identity and authorization server (`args` completed in place).
    Returns cfg. `doctor` calls it too: what it reports is the error attach would exit with.
    Under ipmx no OAuth client is set up (SEC-04): the shared [client] table lends only what
    reaching the Registry needs (ca, domain, nameserver); cfg["ignored"] names the OAuth keys
    found there (the file is shared with commands that do use them)."""
    cfg = load_settings(args)
    if cfg["profile"] == "ipmx":
        from .register import DEFAULT_TIMEOUT

        cfg["ignored"] = client_transport(args)
        args.timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        if args.timeout <= 0:
            raise ConfigError("--timeout must be positive")
        return cfg
    args.scope = " ".join(cfg["apis"])  # a token for each forwarded API (IS-10 CL-30)
    apply_config(args)
    if not args.name:
        raise ConfigError("give --name (or [client] manufacturer, product and serial in the config)")
    if args.issuer:
        from ..issuer import check_issuer

        check_issuer(args.issuer)  # https (IS-10 GEN-01), as the ServerSelector will check it
    from . import issuers

    issuers.read(_oauth_args(args))  # --connect, and --domain/--nameserver with --discover
    return cfg


def _oauth_args(args):
    oauth_args = copy.copy(args)
    if not args.discover:  # --domain/--nameserver then serve the Registry's discovery only
        oauth_args.domain, oauth_args.nameserver = [], []
    return oauth_args


def run(args):
    import asyncio
    import logging

    cfg = prepare(args)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cfg["profile"] == "ipmx":
        if cfg["ignored"]:
            logging.getLogger("nmosauth_lite.attach").warning(
                "config [client] %s not used: under the ipmx profile the Node is not an OAuth client "
                "(TR-10-SEC SEC-04)", ", ".join(cfg["ignored"]))
        return asyncio.run(_serve(cfg, args, None, None))
    selector, client, jwks = build(_oauth_args(args), name=args.name, grant="client_credentials")
    return asyncio.run(with_jwks(jwks, lambda: _serve(cfg, args, selector, client)))


def _registries(cfg, args):
    from ..aio.attach import Registries

    if cfg["registry"]:
        return Registries(cfg["registry"])
    from ..aio.dns import DiscoveryCache
    from ..registry_advert import IpmxRegistryDiscovery, RegistryDiscovery

    plan = IpmxRegistryDiscovery if cfg["profile"] == "ipmx" else RegistryDiscovery  # SEC-76: api_auth=false
    cache = DiscoveryCache(plan_class=plan, domains=args.domain or None,
                           nameservers=args.nameserver or None, dev=args.dev, timeout=min(5.0, args.timeout / 4))
    return Registries(discovery=cache)


def _unix_socket(path, mode):
    """A listening-ready AF_UNIX socket at `path` (a stale one replaced, a live one refused)."""
    import socket
    import stat

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise ConfigError("listen %s: exists and is not a socket" % path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise ConfigError("listen %s: another process is listening there" % path)
            except OSError:
                os.unlink(path)  # left by a process that is gone
            finally:
                probe.close()
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, mode)
    except OSError as e:
        sock.close()
        raise ConfigError("cannot listen on unix:%s: %s" % (path, e.strerror or e))
    except ConfigError:
        sock.close()
        raise
    return sock


async def _first_token(manager, log):
    """Get the first token and start refreshing; retried while the authorization server is away."""
    import asyncio

    from ..aio.oauth import TokenUnavailableError

    while True:
        try:
            await manager.start()
            log.info("token for scope %r obtained", manager.client.scope)
            return
        except TokenUnavailableError as e:
            log.warning("no token yet (%s); retrying in %d s", e.message, START_RETRY)
            await asyncio.sleep(START_RETRY)


async def _serve(cfg, args, selector, client):
    import asyncio
    import json
    import logging
    import signal
    import ssl

    from ..aio.admission import Grouping
    from ..aio.attach import AttachProxy
    from ..aio.oauth import TokenManager
    from ..aio.sdnotify import notify
    from ..aio.server import HTTPServer
    from ..aio.tlsutil import client_context, server_context

    log = logging.getLogger("nmosauth_lite.attach")
    ctx = server_context(list(zip(cfg["cert"], cfg["key"]))) if cfg["cert"] else None  # ConfigError names the file
    registries = _registries(cfg, args)
    manager = TokenManager(client, acquire_timeout=args.timeout) if client is not None else None
    metrics = None
    if cfg["metrics"]:
        from ..aio.attach_metrics import AttachMetrics

        metrics = AttachMetrics()
    own = ["localhost", "127.0.0.1", "::1"] + ([cfg["host"]] if cfg["host"] else [])
    try:  # a bad --ca is a configuration error now, not a 502 later
        registry_tls = client_context(args.ca, policy="ipmx" if manager is None else "bcp-003-01")  # SEC-81..85
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("cannot load --ca: %s" % (getattr(e, "strerror", None) or e))
    if cfg["client_cert"]:  # SEC-79, SEC-93 TCC: the device's certificate, presented to the Registry
        from ..aio.tlsutil import load_pair

        load_pair(registry_tls, cfg["client_cert"], cfg["client_key"], cert_flag="--client-cert",
                  key_flag="--client-key")
    proxy = AttachProxy(registries, manager, apis=cfg["apis"], ssl_context=registry_tls, own_hosts=own,
                        max_body=cfg["max_body"], max_response=cfg["max_response"],
                        connect_timeout=cfg["connect_timeout"], timeout=cfg["registry_timeout"],
                        token_wait=cfg["token_wait"], metrics=metrics, rap=cfg["rap"])
    server = HTTPServer(proxy, ssl=ctx, max_connections=cfg["max_connections"], head_timeout=cfg["head_timeout"],
                        idle_timeout=cfg["idle_timeout"], max_body=cfg["max_body"],
                        grouping=Grouping(cfg["address_group"]))
    if cfg["path"]:
        await server.start(sock=_unix_socket(cfg["path"], cfg["socket_mode"]))
        listen = UNIX + cfg["path"]
    else:
        try:
            await server.start(cfg["host"], cfg["port"])
        except OSError as e:
            raise ConfigError("cannot listen on %s: %s" % (cfg["listen"], e.strerror or e))
        listen = format_listen(cfg["host"], server.port)
    metrics_server = None
    if metrics is not None:
        from ..aio.metrics import start_listener

        server.on_reject = metrics.rejected
        metrics.watch(server, manager)
        metrics_server = await start_listener(metrics.registry, cfg["metrics"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready = {"listen": listen, "registry": cfg["registry"] or "dns-sd", "apis": cfg["apis"]}
    if manager is None:
        ready.update(profile="ipmx", rap=cfg["rap"])
    if metrics_server is not None:
        ready["metrics"] = "%s:%d" % (parse_listen(cfg["metrics"])[0], metrics_server.port)
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    stopping = asyncio.ensure_future(stop.wait())
    starting = None  # IPMX: no token to wait for (SEC-04)
    if manager is not None:
        starting = asyncio.ensure_future(_first_token(manager, log))
        await asyncio.wait((starting, stopping), timeout=cfg["startup_timeout"], return_when=asyncio.FIRST_COMPLETED)
    notify("READY=1")  # systemd Type=notify; requests before the first token get 503 + Retry-After
    log.info("attached: %s -> %s (%s)%s", listen, ", ".join(cfg["registry"]) or "Registry by DNS-SD",
             ", ".join(cfg["apis"]), "" if manager is not None else
             " with TLS only, RAP %d%s, no token (TR-10-SEC SEC-75)"
             % (cfg["rap"], ": mutual TLS" if cfg["rap"] == 2 else ": HTTPS"))
    try:
        await stopping
        log.info("shutting down")
        notify("STOPPING=1")
    finally:
        if starting is not None:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        await server.shutdown(SHUTDOWN_GRACE)
        if metrics_server is not None:
            await metrics_server.shutdown(1.0)
        await proxy.close()
        if manager is not None:
            await manager.close(revoke=True)  # IS-10 CL-42
        if selector is not None:
            await selector.close()
        if cfg["path"]:
            try:
                os.unlink(cfg["path"])
            except OSError:
                pass
    return 0
