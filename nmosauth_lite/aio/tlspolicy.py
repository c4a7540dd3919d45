"""The IPMX TLS policy (TR-10-SEC SEC-81..SEC-85): which suites and key-exchange groups.

TLS 1.2 suites are named one by one (tlsutil's _harden sets them); TLS 1.3 suites cannot be
chosen from Python 3.11, so a context offering one the document does not list is refused.
Key-exchange groups can be neither set nor read from Python 3.11 (no set_groups, no group()):
`group_policy` finds out what a server context accepts by in-memory handshakes, and
docs/ipmx.md shows the OpenSSL configuration (OPENSSL_CONF, `Groups = ...`) that restricts them.
"""

import ssl

from ..errors import ConfigError

# TR-10-SEC SEC-83 (TLS 1.2), by OpenSSL name: the MUST suite first, then the SHOULD and MAY
# ECDHE ones. Left out: DHE-RSA-AES*-GCM (SHOULD, but finite-field DH groups are not among the
# SEC-82 groups, so SEC-85 would forbid the exchange), and the CBC suites (MAY, "SHOULD not be
# used unless encrypt_then_mac": Python cannot require that extension).
IPMX_TLS12_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256",  # MUST
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",  # SHOULD
    "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305",  # MAY
)
# SEC-84 (TLS 1.3): MUST, SHOULD, SHOULD, MAY. Python 3.11 cannot choose TLS 1.3 suites (no
# SSL_CTX_set_ciphersuites): OpenSSL's defaults are the first, second and fourth; a context
# offering any other (TLS_AES_128_CCM_8_SHA256 from an OpenSSL configuration) is refused.
IPMX_TLS13_CIPHERS = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_AES_128_CCM_SHA256",
                      "TLS_CHACHA20_POLY1305_SHA256")
# SEC-82 key-exchange groups (x25519, secp256r1 MUST; secp521r1, x448 SHOULD) as OpenSSL names;
# the configuration line docs/ipmx.md gives: Groups = X25519:P-256:P-521:X448
IPMX_GROUPS = ("X25519", "P-256", "P-521", "X448")
# What group_policy probes: an EC group OpenSSL offers by default that SEC-85 forbids. A context
# whose handshake with a client offering only this group succeeds does not restrict its groups.
PROBE_FORBIDDEN_GROUP = "secp384r1"
PROBE_ALLOWED_GROUP = "prime256v1"


def check_ipmx_ciphers(ctx):
    """ConfigError unless every suite `ctx` offers is one SEC-83/SEC-84 lists (SEC-85) and the
    MUST suites are there: an OpenSSL configuration can add TLS 1.3 suites we cannot remove."""
    names = [c["name"] for c in ctx.get_ciphers()]
    extra = [n for n in names if n not in IPMX_TLS12_CIPHERS and n not in IPMX_TLS13_CIPHERS]
    if extra:
        raise ConfigError("the IPMX TLS policy forbids cipher suites this OpenSSL offers: %s "
                          "(TR-10-SEC SEC-85; check OPENSSL_CONF's Ciphersuites)" % ", ".join(extra[:4]))
    for must in ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"):  # SEC-83, SEC-84 MUST
        if must not in names:
            raise ConfigError("the IPMX TLS policy needs %s, which this OpenSSL does not offer" % must)


NO_HANDSHAKE = "no handshake"  # memory_handshake: the two sides stopped answering each other


def memory_handshake(server_ctx, client_ctx, server_hostname=None):
    """One TLS handshake in memory: None when both sides complete it, else the SSLError (or
    OSError) one side raised, or NO_HANDSHAKE."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(10):
        for i, (obj, out, peer_in) in enumerate(((client, c_out, s_in), (server, s_out, c_in))):
            if not done[i]:
                try:
                    obj.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLError, OSError) as e:
                    return e
            data = out.read()
            if data:
                peer_in.write(data)
        if all(done):
            return None
    return NO_HANDSHAKE


def _handshake(server_ctx, client_ctx):
    """True when one in-memory handshake completes."""
    return memory_handshake(server_ctx, client_ctx) is None


def group_policy(server_ctx):
    """Which SEC-82 key-exchange rule a server context keeps, probed by in-memory handshakes
    (Python 3.11 can neither set nor read a context's groups): "restricted" when a client
    offering only secp384r1 (not listed, SEC-85) is refused and one offering P-256 is served;
    "openssl-default" when the forbidden group is accepted; "broken" when P-256 fails too."""
    def probe(curve):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE  # a probe of our own context: no identity to check
        c.set_ecdh_curve(curve)  # OpenSSL 3: this client offers that one group
        return _handshake(server_ctx, c)

    if not probe(PROBE_ALLOWED_GROUP):
        return "broken"
    return "openssl-default" if probe(PROBE_FORBIDDEN_GROUP) else "restricted"


def check_groups(server_ctx, mode="warn"):
    """SEC-82, SEC-85 at start-up: None when `server_ctx` keeps to the listed groups; else the
    warning to log (mode "warn"), or ConfigError (mode "require", or P-256 refused: a MUST)."""
    state = group_policy(server_ctx)
    if state == "restricted":
        return None
    if state == "broken":
        raise ConfigError("OpenSSL refuses P-256 on this context: check OPENSSL_CONF's Groups (docs/ipmx.md)")
    text = ("OpenSSL accepts key-exchange groups TR-10-SEC forbids (secp384r1, ffdhe*): set OPENSSL_CONF "
            "to a file with Groups = X25519:P-256:P-521:X448 (docs/ipmx.md)")
    if mode == "require":
        raise ConfigError(text)
    return text
