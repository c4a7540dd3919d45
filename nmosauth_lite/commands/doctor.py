"""`nmosauth-lite doctor`: is this device ready to check IS-10 tokens?

Reports the Python, the crypto backends (doctor_install.py: each one verifies the IS-10 example RS512
token and a fresh ES256 signature), the state directory and its permissions, the
clock (a Raspberry Pi has no RTC: before NTP it may run years behind, and a clock
in the past accepts expired tokens), configured, persisted and (with --discover)
DNS-SD discovered issuers with the age of their cached keys, the [attach] table
(doctor_attach.py) and every configured file (doctor_files.py). Text or --json.
Exit 0 when healthy (warnings allowed), 1 when a problem is serious: no backend
verifies RS512, the clock is unset, the configuration is unusable.
"""

import os
import sys
import time

from .doctor_install import backends, data_file, python_info

HELP = "check this device: Python, crypto backends, state directory, clock, issuers and cached keys"

MIN_SANE_TIME = 1704067200  # 2024-01-01T00:00:00Z: any earlier clock has not been set since boot
BUILD_SLACK = 86400  # a clock more than a day behind the package's build time is wrong
STALE_KEYS = 24 * 3600  # keys are refreshed hourly (IS-10 RS-02): a day without one is worth a look
TIMESYNCD_FLAG = "/run/systemd/timesync/synchronized"  # systemd-timesyncd touches it once synchronized
TIME_ERROR = 5  # adjtimex(2): the kernel clock is not synchronized (STA_UNSYNC)
DISCOVER_TIMEOUT = 10.0


def add_arguments(p):
    p.add_argument("--config", metavar="FILE", help="TOML configuration to check "
                   "(default /etc/nmosauth-lite/config.toml when it exists)")
    p.add_argument("--state-dir", metavar="DIR", help="state directory (default: the configured one, "
                   "$STATE_DIRECTORY, /var/lib/nmosauth-lite as root, ~/.local/state/nmosauth-lite)")
    p.add_argument("--discover", action="store_true", help="also look for authorization servers by DNS-SD")
    p.add_argument("--domain", action="append", metavar="D", help="DNS-SD domain for --discover (repeatable)")
    p.add_argument("--nameserver", action="append", metavar="IP[:PORT]", help="DNS server for --discover")
    p.add_argument("--dev", action="store_true", help="--discover in development mode (pri >= 100, http)")
    p.add_argument("--now", type=float, metavar="EPOCH", help="judge the clock as if it said this UNIX time")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


class Report:
    def __init__(self):
        self.sections = {}
        self.problems = []

    def warn(self, check, message, serious=False):
        self.problems.append({"level": "serious" if serious else "warning", "check": check, "message": message})

    @property
    def healthy(self):
        return not any(p["level"] == "serious" for p in self.problems)


def run(args):
    import json

    now = time.time() if args.now is None else args.now
    r = Report()
    r.sections["python"] = python_info(r)
    r.sections["backends"] = backends(r)
    config = _config(r, args)
    state_dir = args.state_dir or config.get("state_dir")
    if not state_dir:
        from ..aio.files import default_state_dir

        state_dir = default_state_dir()
    r.sections["state"] = _state(r, state_dir)
    r.sections["clock"] = _clock(r, now)
    r.sections["config"] = {k: v for k, v in config.items() if k not in ("state_dir", "_files")}
    from .doctor_files import check_files  # issue 22: every configured file

    r.sections["files"] = check_files(r, config.get("_files") or {}, now)
    r.sections["issuers"] = _issuers(r, config, state_dir, now)
    if args.discover:
        r.sections["issuers"]["discovered"] = _discover(r, args)
    if config.get("authserver") and not r.sections["backends"]["cryptography"]["available"]:
        r.warn("backends", "the configured authorization server needs the cryptography package", serious=True)
    if args.json:
        doc = {"healthy": r.healthy, "problems": r.problems}
        doc.update(r.sections)
        sys.stdout.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    else:
        sys.stdout.write(_text(r))
    return 0 if r.healthy else 1


# --- checks ----------------------------------------------------------------------------------
def _config(r, args):
    """What the configuration file says about issuers and the state directory."""
    path = args.config
    if path is None:
        from ..authserver.config import DEFAULT_CONFIG_FILE

        conf_dir = os.environ.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
        for candidate in ([os.path.join(conf_dir, "config.toml")] if conf_dir else []) + [DEFAULT_CONFIG_FILE]:
            if os.path.exists(candidate):
                path = candidate
                break
    out = {"file": path}
    if path is None:
        return out
    import tomllib

    from ..errors import ConfigError

    try:
        with open(path, "rb") as f:
            doc = tomllib.loads(f.read(1 << 20).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        r.warn("config", "cannot read %s: %s" % (path, getattr(e, "strerror", None) or e), serious=True)
        return out
    if "protect" in doc:
        from .protect_settings import read_config

        try:
            p = read_config(path)
        except ConfigError as e:
            r.warn("config", e.message, serious=True)
        else:
            out["protect"] = {"issuers": list(p.get("issuer") or []), "jwks": p.get("jwks"),
                              "audience": list(p.get("audience") or []), "listen": p.get("listen")}
            out["_files"] = {"protect": {k: p.get(k) for k in ("cert", "key", "ca", "audit")}}
            out["_files"]["protect"]["audience"] = out["protect"]["audience"]
            if p.get("state_dir"):
                out["state_dir"] = p["state_dir"]
            if p.get("jwks"):
                from .doctor_files import jwks_file

                out["protect"]["jwks_keys"] = jwks_file(r, p["jwks"])
            _enforce(r, out["protect"], p.get("enforce"))
    if "attach" in doc:  # issue 19's attach: the Node's IS-04 calls (doctor_attach.py)
        from .doctor_attach import attach_config

        out["attach"], files = attach_config(r, path, doc.get("client"))
        if files:
            out.setdefault("_files", {})["attach"] = files
    if "authserver" in doc:
        from ..authserver.config import load

        try:
            cfg = load(path)
        except ConfigError as e:
            r.warn("config", e.message, serious=True)
        else:
            out["authserver"] = {"issuer": cfg.issuer(), "listen": "%s:%d" % (cfg.listen_host, cfg.listen_port)}
            if cfg.lab:  # BCP-003-02 BCP-G-03: never a product's default; say so wherever it is looked at
                r.warn("config", "authserver: lab = true: client_credentials is allowed for every scope")
            out.setdefault("_files", {})["authserver"] = {"cert": cfg.cert_files, "key": cfg.key_files, "ca": cfg.ca_file,
                                                         "trust_ca": cfg.trust_ca_file, "host": cfg.host}
            if isinstance(doc["authserver"], dict) and doc["authserver"].get("state_dir"):
                out.setdefault("state_dir", cfg.state_dir)
    return out


def _state(r, path):
    import stat

    out = {"path": path, "exists": False}
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        out["creatable"] = os.access(parent, os.W_OK | os.X_OK)
        if out["creatable"]:
            r.warn("state", "%s does not exist yet (it is created 0700 on first use)" % path)
        else:
            r.warn("state", "%s does not exist and cannot be created by this user" % path)
        return out
    except OSError as e:
        r.warn("state", "%s: %s" % (path, e.strerror))
        return out
    out.update(exists=True, mode="%04o" % stat.S_IMODE(st.st_mode), owner_uid=st.st_uid,
               writable=os.access(path, os.W_OK | os.X_OK))
    if not stat.S_ISDIR(st.st_mode):
        r.warn("state", "%s is not a directory" % path, serious=True)
        return out
    if st.st_mode & 0o077:
        r.warn("state", "%s is mode %s: make it 0700 (it holds keys and credentials)" % (path, out["mode"]))
    if not out["writable"]:
        r.warn("state", "%s is not writable by this user (uid %d): fetched keys cannot be persisted"
               % (path, os.geteuid()))
    exposed = []
    for sub in ("", "jwks"):
        d = os.path.join(path, sub)
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            try:
                fst = os.lstat(os.path.join(d, name))
            except OSError:
                continue
            if stat.S_ISREG(fst.st_mode) and fst.st_mode & 0o077:
                exposed.append(os.path.join(sub, name))
    out["files"] = len(os.listdir(path)) if out["writable"] or os.access(path, os.R_OK) else None
    if exposed:
        r.warn("state", "files readable by group/others in %s: %s" % (path, ", ".join(sorted(exposed)[:5])))
    return out


def _ntp_synchronized():
    """(True/False/None, how we know): cheap sources only, no subprocess."""
    if os.path.exists(TIMESYNCD_FLAG):
        return True, "systemd-timesyncd"
    if not sys.platform.startswith("linux"):
        return None, None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex is ~208 bytes; modes = 0 only reads
        state = libc.adjtimex(buf)
    except (ImportError, OSError, AttributeError):  # no ctypes (a trimmed image) or no adjtimex
        return None, None
    if state < 0:
        return None, None
    return state != TIME_ERROR, "adjtimex"


def _build_time():
    """(epoch, where from): the bundle's build stamp, else the package files' time."""
    import json

    try:
        data = data_file("build.json")
        if data:
            built = json.loads(data).get("built")
            if isinstance(built, (int, float)):
                return built, "bundle build.json"
    except (OSError, ValueError):
        pass
    try:
        from .. import validator  # a module file of ours, whichever way the package was imported

        return os.stat(validator.__file__).st_mtime, "package file time"
    except (OSError, TypeError):
        return None, None


def _utc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _clock(r, now):
    built, built_from = _build_time()
    synced, sync_source = _ntp_synchronized()
    out = {"now": _utc(now), "epoch": round(now, 3), "build_time": _utc(built) if built else None,
           "build_time_source": built_from, "ntp_synchronized": synced, "ntp_source": sync_source}
    if now < MIN_SANE_TIME:
        r.warn("clock", "the clock says %s: it has not been set (no RTC and no NTP yet?); expired tokens "
               "would pass and fresh ones fail" % out["now"], serious=True)
    elif built and now < built - BUILD_SLACK:
        r.warn("clock", "the clock says %s, before this package was built (%s): it is wrong"
               % (out["now"], out["build_time"]), serious=True)
    if synced is False:
        r.warn("clock", "the clock is not NTP-synchronized (%s): token times are judged by it" % sync_source)
    return out


def _issuers(r, config, state_dir, now):
    from ..aio.keyfiles import read_persisted

    configured = []
    for iss in (config.get("protect") or {}).get("issuers", []):
        configured.append({"issuer": iss, "from": "protect"})
    if config.get("authserver"):
        configured.append({"issuer": config["authserver"]["issuer"], "from": "authserver"})
    persisted = []
    for doc in read_persisted(state_dir):
        jwks = doc.get("jwks")
        keys = jwks.get("keys", []) if isinstance(jwks, dict) else []
        fetched = doc.get("fetched_at")
        nxt = doc.get("next_refresh")
        age = now - fetched if isinstance(fetched, (int, float)) else None
        persisted.append({"issuer": doc["issuer"], "jwks_uri": doc.get("jwks_uri"),
                          "kids": [k.get("kid") for k in keys if isinstance(k, dict)],
                          "fetched_at": _utc(fetched) if age is not None else None,
                          "age_s": None if age is None else round(age, 1),
                          "next_refresh_in_s": round(nxt - now, 1) if isinstance(nxt, (int, float)) else None})
        if age is not None and age < -60:
            r.warn("issuers", "keys of %s were fetched %s, in the future: the clock went backwards"
                   % (doc["issuer"], _utc(fetched)))
        elif age is not None and age > STALE_KEYS:
            r.warn("issuers", "keys of %s were last fetched %.1f h ago" % (doc["issuer"], age / 3600))
    known = set(p["issuer"] for p in persisted)
    for c in configured:
        c["persisted"] = c["issuer"] in known
        if not c["persisted"] and c["from"] == "protect":
            r.warn("issuers", "no persisted keys for %s yet: tokens wait for a first fetch after boot" % c["issuer"])
    return {"configured": configured, "persisted": persisted}


def _discover(r, args):
    import asyncio

    from ..aio import dns

    async def bounded():
        return await asyncio.wait_for(dns.discover(domains=args.domain, nameservers=args.nameserver or None,
                                                   dev=args.dev, timeout=2.0, attempts=1), DISCOVER_TIMEOUT)

    try:
        servers = asyncio.run(bounded())
    except dns.ResolverError as e:
        r.warn("discovery", e.message)
        return []
    except asyncio.TimeoutError:
        r.warn("discovery", "DNS-SD discovery did not finish in %.0f s" % DISCOVER_TIMEOUT)
        return []
    except Exception as e:  # noqa: BLE001 (ConfigError and friends: a report, not a crash)
        r.warn("discovery", getattr(e, "message", None) or str(e))
        return []
    if not servers:
        r.warn("discovery", "no authorization server is advertised by DNS-SD")
    return [s.to_dict() for s in servers]


# --- text output -----------------------------------------------------------------------------
def _yes(flag):
    return "yes" if flag else "no"


def _enforce(r, out, value):
    from ..guard import parse_enforce
    from .protect import enforce_text, observe_warning

    try:
        apis = parse_enforce(value)
    except ValueError as e:
        r.warn("config", "protect: %s" % e, serious=True)
        return
    out["enforce"] = enforce_text(apis)
    if apis is not None:
        r.warn("protect", observe_warning(apis))


def _text(r):
    s = r.sections
    py, b, st, ck, iss = s["python"], s["backends"], s["state"], s["clock"], s["issuers"]
    lines = ["nmosauth-lite %s doctor" % (py["package_version"] or "?"),
             "python    %s %s (%s) %s%s" % (py["implementation"], py["version"], py["machine"], py["executable"],
                                           ", from the bundle" if py["bundle"] else ""),
             "backends  auto = %s" % (b.get("auto") or "none")]
    c = b["cryptography"]
    if c["available"]:
        lines.append("  cryptography %s (%s): RS512 %s, ES256 %s" % (c["version"], c.get("openssl", "?"),
                                                                      _yes(c["rs512"]), _yes(c["es256"])))
    else:
        lines.append("  cryptography: not installed")
    p = b["pure"]
    lines.append("  pure: RS512 %s, ES256 %s (ecdsa %s)" % (_yes(p["rs512"]), _yes(p["es256"]),
                                                          p.get("ecdsa") or "missing"))
    if st["exists"]:
        lines.append("state     %s (mode %s, uid %d, writable %s)" % (st["path"], st["mode"], st["owner_uid"],
                                                                       _yes(st["writable"])))
    else:
        lines.append("state     %s (missing)" % st["path"])
    sync = {True: "NTP-synchronized", False: "not NTP-synchronized", None: "NTP state unknown"}
    source = " (%s)" % ck["ntp_source"] if ck["ntp_source"] else ""
    lines.append("clock     %s, %s%s; built %s" % (ck["now"], sync[ck["ntp_synchronized"]], source,
                                                  ck["build_time"] or "?"))
    cfg = s["config"]
    lines.append("config    %s" % (cfg.get("file") or "none"))
    for f in s.get("files") or ():
        lines.append("  file    %s (%s): %s" % (f["file"], f["what"], "ok" if f["ok"] else "PROBLEM"))
    for c in iss["configured"]:
        lines.append("  issuer  %s (%s)%s" % (c["issuer"], c["from"], "" if c["persisted"] else ", no cached keys"))
    if (cfg.get("protect") or {}).get("enforce", "on") != "on":
        lines.append("  enforce %s: OBSERVE MODE, THE NODE IS NOT PROTECTED" % cfg["protect"]["enforce"])
    if (cfg.get("protect") or {}).get("jwks"):
        lines.append("  jwks    %s: %s" % (cfg["protect"]["jwks"], cfg["protect"].get("jwks_keys")))
    from .doctor_attach import text_lines

    lines += text_lines(cfg.get("attach"))
    lines.append("cached keys")
    for d in iss["persisted"] or ():
        age = "?" if d["age_s"] is None else "%.1f h" % (d["age_s"] / 3600)
        kids = ",".join(str(k) for k in d["kids"])
        lines.append("  %s: %d key(s) %s, age %s" % (d["issuer"], len(d["kids"]), kids, age))
    if not iss["persisted"]:
        lines.append("  none")
    if "discovered" in iss:
        lines.append("discovered")
        for d in iss["discovered"]:
            lines.append("  pri %s %s" % (d["pri"], d["metadata_url"]))
        if not iss["discovered"]:
            lines.append("  none")
    for prob in r.problems:
        lines.append("%s: %s: %s" % ("SERIOUS" if prob["level"] == "serious" else "warning", prob["check"],
                                    prob["message"]))
    lines.append("healthy" if r.healthy else "NOT healthy")
    return "\n".join(lines) + "\n"
