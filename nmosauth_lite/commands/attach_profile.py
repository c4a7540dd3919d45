"""The IPMX profile's settings for `attach` (TR-10-SEC §6, docs/retrofit.md "IPMX registration").

Under `profile = "ipmx"` the Node is not an OAuth client (SEC-04, SEC-63): registration is
secured by TLS only (SEC-75), with a Registry Access Policy of 1 (HTTPS, the Registry
authenticated, SEC-78) or 2 (mutual TLS with the device's client certificate, SEC-79). RAP 0
(plain HTTP) is refused. Checks only: commands/attach.py builds and runs the proxy.
"""

import os

from ..errors import ConfigError
from .register import DEFAULT_CONFIG

PROFILES = ("is-10", "ipmx")
RAPS = (0, 1, 2)  # TR-10-SEC SEC-80: 0 HTTP (refused), 1 HTTPS server auth, 2 mutual TLS
# flags of the OAuth client that have no meaning when the Node is not an OAuth client (SEC-04)
OAUTH_FLAGS = ("issuer", "discover", "initial_token", "auth", "name", "state_dir", "key_file", "jwks_uri",
               "jwks_listen", "jwks_cert", "jwks_key", "redirect_base", "connect")
OAUTH_CLIENT_KEYS = ("issuer", "discover", "initial_token_file", "auth", "jwks_uri")


def check_profile(cfg, args):
    """The profile's settings: under is-10 none of the IPMX ones; under ipmx a RAP of 1 or 2,
    the client certificate with RAP 2 only, and no OAuth client flag (the Node is not one)."""
    if cfg["profile"] not in PROFILES:
        raise ConfigError("profile must be is-10 or ipmx")
    ipmx_keys = [k for k in ("rap", "client_cert", "client_key") if cfg[k] is not None]
    if cfg["profile"] == "is-10":
        if ipmx_keys:
            raise ConfigError("--%s belongs to --profile ipmx (under is-10 attach registers with a token)"
                              % ipmx_keys[0].replace("_", "-"))
        return
    given = [f for f in OAUTH_FLAGS if getattr(args, f, None) not in (None, False, [])]
    if given:  # SEC-04, SEC-63: a contradiction on the command line is an error, not a guess
        raise ConfigError("--%s: under --profile ipmx the Node is not an OAuth client (TR-10-SEC SEC-04, SEC-75); "
                          "registration is secured by TLS only" % given[0].replace("_", "-"))
    if cfg["rap"] is None:
        raise ConfigError("--profile ipmx needs --rap 1 (HTTPS, the Registry authenticated) or --rap 2 (mutual TLS "
                          "with --client-cert and --client-key) (TR-10-SEC SEC-80)")
    if cfg["rap"] == 0:
        raise ConfigError("rap 0 is registration over plain HTTP, which is not compliant with TR-10-SEC (SEC-80, as "
                          "SEC-87 says of NAP 0); attach adds TLS: use --rap 1 or --rap 2")
    if cfg["rap"] not in RAPS:
        raise ConfigError("rap must be 1 or 2 (TR-10-SEC SEC-80)")
    pair = (cfg["client_cert"], cfg["client_key"])
    if cfg["rap"] == 2 and not all(pair):
        raise ConfigError("--rap 2 (mutual TLS, SEC-79) needs --client-cert FILE and --client-key FILE")
    if cfg["rap"] == 1 and any(pair):
        raise ConfigError("--client-cert and --client-key are for --rap 2; under --rap 1 the Registry accepts "
                          "anyone over HTTPS (SEC-78)")
    if cfg["client_key"]:
        check_key_mode(cfg["client_key"])


def check_key_mode(path):
    """A private key readable by others, or writable by the group, is refused (0600, or 0640 for a
    service group as on the board; aio/certfiles.check_pair says the same in doctor)."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError as e:
        raise ConfigError("cannot read --client-key %s: %s" % (path, e.strerror or e))
    if mode & 0o037:
        raise ConfigError("--client-key %s has mode %04o: make it 0600 (chmod 600), it is the device's private key"
                          % (path, mode))


def client_transport(args):
    """Fill unset --ca, --domain, --nameserver from the config's [client] table; return the OAuth
    keys found there (which the ipmx profile does not use)."""
    import tomllib

    from ..aio.files import MAX_CONFIG_FILE, read_limited

    path = args.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    if not path:
        return []
    try:
        table = tomllib.loads(read_limited(path, MAX_CONFIG_FILE).decode("utf-8")).get("client", {})
    except (OSError, ValueError, UnicodeDecodeError) as e:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError("config %s: %s" % (path, e))
    if not isinstance(table, dict):
        raise ConfigError("config %s: [client] must be a table" % path)
    for key, want in (("ca", str), ("domain", list), ("nameserver", list)):
        if key in table and not getattr(args, key, None):
            if not isinstance(table[key], want):
                raise ConfigError("config: client.%s must be a %s" % (key, want.__name__))
            setattr(args, key, table[key])
    return ["client." + k for k in OAUTH_CLIENT_KEYS if k in table]
