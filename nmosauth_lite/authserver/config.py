"""Settings of the lite authorization server: TOML (stdlib tomllib) over safe defaults.

The file is the device's config.toml (ARCHITECTURE.md "Files on a device"); the
server reads its `[authserver]` table (or the whole document when that table is
absent). Unknown keys are refused so a typo never silently weakens a setting.
Token lifetime stays within IS-10 TOK-07 (30 s .. 3600 s); the key publication
delay defaults to IS-10 AS-16's 2 hours.
"""

import os
import socket

from ..aio.address import parse_listen
from ..aio.files import default_state_dir, is_loopback, read_config_table
from ..errors import ConfigError
from . import tokens as _tokens

DEFAULT_LISTEN = "127.0.0.1:8443"  # loopback unless told otherwise: a fresh AS is not on the network
DEFAULT_ISSUER_PATH = "/x-nmos/auth/v1.0"  # IS-10 AS-02
DEFAULT_CONFIG_FILE = "/etc/nmosauth-lite/config.toml"
DEFAULT_PUBLISH_DELAY = 7200  # IS-10 AS-16: publish >= 2 h before signing with a key
DEFAULT_CODE_LIFETIME = 60  # RFC 6749 §4.1.2: codes are short-lived, 10 min at most
DEFAULT_REFRESH_LIFETIME = 7 * 86400  # one refresh token (IS-10 AS-43: time-limited)
DEFAULT_FAMILY_LIFETIME = 30 * 86400  # a rotation chain never outlives its first token (AS-46)
DEFAULT_MAX_PENDING = 1000  # registrations awaiting approval, all sources together
DEFAULT_PENDING_LIFETIME = 86400  # an unapproved registration is dropped after a day
DEFAULT_MAX_PENDING_PER_SOURCE = 10  # one address cannot fill the approval queue
DEFAULT_JWKS_MIN_TTL = 60  # a client's jwks_uri answer is kept at least this long (clientkeys.py)...
DEFAULT_JWKS_MAX_TTL = 86400  # ...and at most this long, whatever its Cache-Control says
DEFAULT_JWKS_NEGATIVE_TTL = 60  # a failed jwks_uri fetch is not retried before this
DEFAULT_HSTS_MAX_AGE = 31536000  # BCP-003-01: HSTS with max-age=31536000 recommended in production
LAB_WARNING = ("LAB MODE: client_credentials is allowed for every scope (node, connection, ...): any "
               "registered client can get a token for any Node API without a user. Never in production "
               "(BCP-003-02 BCP-G-03); restart without --lab")

_SCHEMA = {
    "listen": str, "host": str, "issuer_path": str, "state_dir": str, "lab": bool, "profile": str,
    "address_group": int,
    "tls": {"cert_file": (str, list), "key_file": (str, list), "ca_file": str, "trust_ca_file": str,
            "hsts_max_age": int},
    "tokens": {"lifetime": int, "alg": str, "audience": list, "rsa_bits": int,
               "client_credentials_scopes": list, "permissions": dict, "claims_location": str},
    "refresh": {"lifetime": int, "family_lifetime": int},
    "keys": {"publish_before_use": int},
    "registration": {"initial_access_token": bool, "manual_approval": bool,
                     "open_authorization_code": bool, "max_pending": int, "pending_lifetime": int,
                     "max_pending_per_source": int},
    "client_jwks": {"allow_private_addresses": bool, "min_ttl": int, "max_ttl": int, "negative_ttl": int},
    "authorize": {"code_lifetime": int, "pkce_for_confidential": bool},
}


def _check(table, schema, where):
    for key, value in table.items():
        want = schema.get(key)
        if want is None:
            raise ConfigError("config: unknown setting %s%s" % (where, key))
        if isinstance(want, dict):
            if not isinstance(value, dict):
                raise ConfigError("config: %s%s must be a table" % (where, key))
            if key != "permissions":
                _check(value, want, where + key + ".")
        elif want is int and (type(value) is not int):
            raise ConfigError("config: %s%s must be an integer" % (where, key))
        elif isinstance(want, tuple):  # a file or a list of files (two certificates, BCP-003-01)
            if not (isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError("config: %s%s must be a string or a list of strings" % (where, key))
        elif not isinstance(value, want):
            raise ConfigError("config: %s%s must be a %s" % (where, key, want.__name__))


def _files(value):
    return [] if not value else [value] if isinstance(value, str) else list(value)


def _str_list(value, name):
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("config: %s must be a list of non-empty strings" % name)
    return list(value)


class Config:
    """Every setting the server uses; build with `load` (file) or `Config({...})` (tests)."""

    def __init__(self, table=None, *, listen=None, state_dir=None, lab=None, cert_file=None, key_file=None,
                 audience=None, hsts_max_age=None, profile=None):
        t = dict(table or {})
        _check(t, _SCHEMA, "")
        # Issue 21: "ipmx" issues what the IPMX device profile accepts (TR-10-SEC SEC-65..SEC-72).
        self.profile = profile or t.get("profile", "is-10")
        if self.profile not in ("is-10", "ipmx"):
            raise ConfigError("config: profile must be is-10 or ipmx")
        ipmx = self.profile == "ipmx"
        # Lab mode (issue 22): client_credentials for every scope, so a bench without users can get
        # a Node-API token. BCP-003-02 BCP-G-03 forbids that as a product's default: off unless asked,
        # and announced in the log and in the metadata.
        self.lab = bool(t.get("lab", False) if lab is None else lab)
        self.listen_host, self.listen_port = parse_listen(listen or t.get("listen", DEFAULT_LISTEN))
        self.host = t.get("host") or self._default_host()
        self.address_group = t.get("address_group", 32)  # issue 23: aio.admission.Grouping
        if self.address_group not in (24, 32):
            raise ConfigError("config: address_group must be 24 or 32")
        path = t.get("issuer_path", DEFAULT_ISSUER_PATH).rstrip("/")
        if path and (not path.startswith("/") or "?" in path or "#" in path or "//" in path):
            raise ConfigError("config: issuer_path must be an absolute path without query or fragment")
        self.issuer_path = path
        self.state_dir = os.path.abspath(state_dir or t.get("state_dir") or default_state_dir())
        tls = t.get("tls", {})
        self.cert_files = _files(cert_file or tls.get("cert_file"))
        self.key_files = _files(key_file or tls.get("key_file"))
        self.ca_file = tls.get("ca_file")
        if len(self.cert_files) != len(self.key_files) or len(self.cert_files) > 2:
            raise ConfigError("config: tls.cert_file and tls.key_file (--cert and --key) go together, in pairs "
                              "(at most two: one RSA, one ECDSA)")
        self.hsts_max_age = tls.get("hsts_max_age", DEFAULT_HSTS_MAX_AGE) if hsts_max_age is None else hsts_max_age
        if type(self.hsts_max_age) is not int or self.hsts_max_age < 0:
            raise ConfigError("config: tls.hsts_max_age (--hsts-max-age) must be >= 0 (0: no Strict-Transport-Security)")
        self.trust_ca_file = tls.get("trust_ca_file")
        tok = t.get("tokens", {})
        self.token_lifetime = tok.get("lifetime", _tokens.IPMX_DEFAULT_LIFETIME if ipmx else _tokens.DEFAULT_LIFETIME)
        _tokens.check_lifetime(self.token_lifetime, self.profile)
        self.claims_location = tok.get("claims_location", "ext" if ipmx else "top")  # SEC-23: SHOULD be in ext
        if self.claims_location not in ("top", "ext") or (not ipmx and self.claims_location != "top"):
            raise ConfigError("config: tokens.claims_location must be top or ext (ext under the ipmx profile only)")
        self.token_alg = tok.get("alg", "RS512")
        if self.token_alg not in ("RS512", "ES256"):
            raise ConfigError("config: tokens.alg must be RS512 (IS-10) or ES256")
        self.rsa_bits = tok.get("rsa_bits", 2048)
        if self.rsa_bits not in (2048, 3072, 4096):
            raise ConfigError("config: tokens.rsa_bits must be 2048, 3072 or 4096")
        aud = audience or tok.get("audience")
        self.audience = _str_list(aud, "tokens.audience") if aud is not None else None
        if ipmx:
            # permission values index this server's audience list (SEC-39): checked against it here
            self.permissions = _tokens.check_ipmx_permissions(tok.get("permissions"), len(self.token_audience()))
        else:
            self.permissions = _tokens.check_permissions(tok.get("permissions"))
        self.scopes = sorted(self.permissions)
        # BCP-003-02 BCP-G-04; IPMX SEC-61, SEC-72: controllers SHOULD use client_credentials
        default_cc = self.scopes if self.lab or ipmx else list(_tokens.CLIENT_CREDENTIALS_SCOPES)
        cc = tok.get("client_credentials_scopes", default_cc)
        self.client_credentials_scopes = _str_list(cc, "tokens.client_credentials_scopes") if cc else []
        for s in self.client_credentials_scopes:
            if s not in self.permissions:
                raise ConfigError("config: client_credentials scope %r is not a supported scope" % s)
        ref = t.get("refresh", {})
        self.refresh_lifetime = ref.get("lifetime", DEFAULT_REFRESH_LIFETIME)
        self.family_lifetime = ref.get("family_lifetime", DEFAULT_FAMILY_LIFETIME)
        if not 60 <= self.refresh_lifetime <= self.family_lifetime:
            raise ConfigError("config: refresh.lifetime must be >= 60 s and <= refresh.family_lifetime")
        self.publish_delay = t.get("keys", {}).get("publish_before_use", DEFAULT_PUBLISH_DELAY)
        if self.publish_delay < 0:
            raise ConfigError("config: keys.publish_before_use must be >= 0")
        reg = t.get("registration", {})
        self.iat_enabled = reg.get("initial_access_token", True)
        self.manual_approval = reg.get("manual_approval", True)
        self.open_authorization_code = reg.get("open_authorization_code", False)
        self.max_pending = reg.get("max_pending", DEFAULT_MAX_PENDING)
        self.pending_lifetime = reg.get("pending_lifetime", DEFAULT_PENDING_LIFETIME)
        self.max_pending_per_source = reg.get("max_pending_per_source", DEFAULT_MAX_PENDING_PER_SOURCE)
        if self.max_pending < 0 or self.max_pending_per_source < 0 or self.pending_lifetime < 60:
            raise ConfigError("config: registration.max_pending* must be >= 0 and pending_lifetime >= 60 s")
        cj = t.get("client_jwks", {})
        self.jwks_allow_private = cj.get("allow_private_addresses", False)
        self.jwks_min_ttl = cj.get("min_ttl", DEFAULT_JWKS_MIN_TTL)
        self.jwks_max_ttl = cj.get("max_ttl", DEFAULT_JWKS_MAX_TTL)
        self.jwks_negative_ttl = cj.get("negative_ttl", DEFAULT_JWKS_NEGATIVE_TTL)
        if not 0 <= self.jwks_min_ttl <= self.jwks_max_ttl or self.jwks_negative_ttl < 1:
            raise ConfigError("config: client_jwks needs 0 <= min_ttl <= max_ttl and negative_ttl >= 1")
        az = t.get("authorize", {})
        self.code_lifetime = az.get("code_lifetime", DEFAULT_CODE_LIFETIME)
        if not 10 <= self.code_lifetime <= 600:
            raise ConfigError("config: authorize.code_lifetime must be 10..600 s (RFC 6749 §4.1.2)")
        self.pkce_for_confidential = az.get("pkce_for_confidential", False)

    def _default_host(self):
        h = self.listen_host
        if is_loopback(h):
            return "localhost"
        if h in ("0.0.0.0", "::", ""):
            return socket.getfqdn()
        return h

    def issuer(self, port=None):
        """The RFC 8414 issuer identifier for the port actually bound."""
        port = self.listen_port if port is None else port
        host = "[%s]" % self.host if ":" in self.host else self.host
        hostport = host if port == 443 else "%s:%d" % (host, port)
        return "https://" + hostport + self.issuer_path

    def token_audience(self):
        if self.audience is not None:
            return self.audience
        host = self.host
        if host == "localhost" or _is_address(host):  # name the machine, not a loopback alias or an address
            host = socket.getfqdn()
        return _tokens.default_audience(host)

    @property
    def db_path(self):
        return os.path.join(self.state_dir, "authserver.db")

    @property
    def tls_dir(self):
        return os.path.join(self.state_dir, "authserver-tls")


def _is_address(host):
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def load(path=None, *, listen=None, state_dir=None, **overrides):
    """Read `path` (or the default file when it exists) and build a Config (`overrides`: lab,
    cert_file, key_file from the command line)."""
    table = {}
    if path is None and os.path.exists(DEFAULT_CONFIG_FILE):
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        table = read_config_table(path, "authserver")
    return Config(table, listen=listen, state_dir=state_dir, **overrides)
