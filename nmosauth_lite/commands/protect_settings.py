"""`protect`'s settings: the SETTINGS table, their flags and the `[protect]` TOML table.

load_settings(args) merges defaults < the config file < flags and checks every value, raising
ConfigError naming the setting at fault (never a traceback). read_config() reads one typed TOML
table (attach reads `[attach]` with it, against its own table); attach shares the address-group
option too. What runs (TLS, the guard, the proxy, start-up and shutdown) is commands/protect.py,
which re-exports these names.
"""

from ..aio.address import parse_listen
from ..errors import ConfigError
from . import issuers

DEFAULT_MAX_BODY = 16 * 1024 * 1024  # request bodies streamed through (NMOS bodies are KiB)
DEFAULT_HSTS_MAX_AGE = 31536000  # BCP-003-01: HSTS with max-age=31536000 recommended in production
ADDRESS_GROUPS = (24, 32)  # IPv4 prefixes clients are counted by (aio.admission.Grouping; IPv6: /64)

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
    add_address_group_argument(p)
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
    p.add_argument("--tls-groups", choices=TLS_GROUPS,
                   help="ipmx: when OpenSSL accepts key-exchange groups TR-10-SEC forbids: warn (default) or "
                        "require (refuse to start); see docs/ipmx.md")


def load_settings(args):
    """Defaults < the config file < flags. Raises ConfigError for anything unusable."""
    cfg = dict((name, default) for name, (_t, default) in SETTINGS.items())
    if args.config:
        cfg.update(read_config(args.config))
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
    check_address_group(cfg)
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


def add_address_group_argument(p):
    """--address-group, for each command whose server counts its clients (protect, attach; issue 23)."""
    p.add_argument("--address-group", type=int, choices=ADDRESS_GROUPS, metavar="24|32",
                   help="count IPv4 clients per address (32, default) or per /24 network; IPv6 per /64")


def check_address_group(cfg):
    """cfg["address_group"] (flag or TOML) must be a prefix aio.admission.Grouping takes: ConfigError if not."""
    if cfg["address_group"] not in ADDRESS_GROUPS:
        raise ConfigError("address_group must be 24 or 32")


def read_config(path, section="protect", settings=None):
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
