"""`doctor`'s checks of the `[attach]` table (`attach`: IS-10 tokens on the Node's IS-04 calls).

The settings go through attach's own checks (commands/attach.py prepare(): the `[attach]` table,
then the `[client]` identity and authorization server), so a problem reported here is the error
attach would exit with. Then the Registry: configured URLs are https (BCP-003-01; attach's loader
refuses any other), or DNS-SD needs a domain to search. The files attach reads are gathered for
doctor_files.py (exists, readable by nmosauth-attach, certificates usable).
"""


def attach_config(r, path, client_table):
    """(the report's `attach` section, attach's files for doctor_files) or (None, None) when attach
    would refuse to start (reported as a serious problem)."""
    import argparse

    from ..errors import ConfigError
    from . import attach

    client_table = client_table if isinstance(client_table, dict) else {}
    p = argparse.ArgumentParser(add_help=False)
    attach.add_arguments(p)
    args = p.parse_args(["--config", path])  # no flags: the file alone, as the board's unit runs it
    try:
        cfg = attach.prepare(args)
    except ConfigError as e:
        r.warn("attach", e.message, serious=True)
        return None, None
    out = {"listen": cfg["listen"], "registry": cfg["registry"] or "dns-sd", "apis": cfg["apis"],
           "issuer": args.issuer or "dns-sd", "name": args.name, "address_group": cfg["address_group"]}
    if cfg["profile"] == "ipmx":  # TLS only, no OAuth client (TR-10-SEC SEC-04, SEC-75)
        out.update(issuer=None, name=None, profile="ipmx", rap=cfg["rap"])
        if cfg["ignored"]:
            r.warn("attach", "[client] %s not used: under the ipmx profile attach is not an OAuth client (SEC-04)"
                   % ", ".join(cfg["ignored"]))
    if not cfg["registry"]:  # attach._registries: DNS-SD in [client] domain, else resolv.conf's search
        out["registry_domains"] = list(args.domain or []) or _search_domains()
        if not out["registry_domains"]:
            r.warn("attach", "registry is empty and DNS-SD has no domain to search ([client] domain, or a search "
                   "domain in /etc/resolv.conf): give [attach] registry = [\"https://...\"] or [client] domain",
                   serious=True)
    hosts = []
    if cfg["host"] and cfg["cert"]:
        from ..aio.files import is_loopback

        if not is_loopback(cfg["host"]) and cfg["host"] not in ("0.0.0.0", "::"):
            hosts = [cfg["host"]]  # the name the Node reaches attach by
    files = {"cert": cfg["cert"], "key": cfg["key"], "hosts": hosts, "ca": args.ca,
             "initial_token_file": client_table.get("initial_token_file"), "key_file": args.key_file,
             "state_dir": args.state_dir}
    if args.jwks_listen:
        files.update(jwks_cert=args.jwks_cert, jwks_key=args.jwks_key)
    if cfg["profile"] == "ipmx":  # no registration with an authorization server: no token file
        files.update(initial_token_file=None, client_cert=cfg["client_cert"], client_key=cfg["client_key"])
    return out, files


def _search_domains():
    from ..aio.dns import RESOLV_CONF, parse_resolv_conf

    try:
        with open(RESOLV_CONF, encoding="utf-8", errors="replace") as f:
            return parse_resolv_conf(f.read(65536))["search"]
    except OSError:
        return []


def text_lines(section):
    """doctor's text report: one line for a usable [attach] table."""
    if not section:
        return []
    registry = section["registry"] if isinstance(section["registry"], str) else ", ".join(section["registry"])
    if section.get("profile") == "ipmx":
        return ["  attach  %s -> %s (TLS only, RAP %d, no token)" % (section["listen"], registry, section["rap"])]
    return ["  attach  %s -> %s (token from %s)" % (section["listen"], registry, section["issuer"])]
