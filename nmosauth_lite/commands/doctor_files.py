"""`doctor`'s checks of every file the configuration names (issue 22 §2).

protect's cert/key/ca/jwks/audit, the authorization server's tls.* files and attach's (its Node-side
cert/key, the [client] CA bundle, initial access token, sealing key and state directory): each must
exist and be readable by the service's user (the board's units run protect as nmosauth-protect, the
AS as nmosauth-as and attach as nmosauth-attach; run as root, doctor judges the file's owner and mode
for that user, else for whoever runs it); a certificate's key must match it, the certificate must be
within its validity and name the configured audience (protect) or host (the AS); CA files must load;
protect's client CRLs must load, be signed by a client CA and be within their validity (SEC-95, SEC-98).
"""

import os

# service -> the user its board unit runs as (board/systemd, board/sysusers.d)
SERVICE_USERS = {"protect": "nmosauth-protect", "authserver": "nmosauth-as", "attach": "nmosauth-attach"}


def _user(service):
    """(name, uid, gids) of the service's user when doctor runs as root and that user exists, else None."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    name = SERVICE_USERS[service]
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    return name, pw.pw_uid, gids


def readable_by(path, user):
    """None when `user` (None: this process) can read `path`, else the reason."""
    return _access_by(path, user, 0o4, os.R_OK, "readable")


def writable_dir_by(path, user):
    """None when `user` (None: this process) can create files in the directory `path`, else the reason."""
    return _access_by(path, user, 0o3, os.W_OK | os.X_OK, "writable")


def _access_by(path, user, bits, mode, what):
    if user is None:
        return None if os.access(path, mode) else "not %s by uid %d" % (what, os.geteuid())
    name, uid, gids = user
    probe = path
    while True:  # every directory above must be searchable by the user
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
        st = os.stat(probe)
        if not _allowed(st, uid, gids, 0o1):
            return "%s cannot enter %s" % (name, probe)
    if not _allowed(os.stat(path), uid, gids, bits):
        return "not %s by %s (the service's user)" % (what, name)
    return None


def _allowed(st, uid, gids, bits):
    """Every one of `bits` (r=4, w=2, x=1) granted by the class of permissions that applies."""
    if st.st_uid == uid:
        shift = 6
    elif st.st_gid in gids:
        shift = 3
    else:
        shift = 0
    return st.st_mode & (bits << shift) == bits << shift


def _exists_readable(r, service, what, path, user, out):
    entry = {"file": path, "what": what, "ok": True}
    out.append(entry)
    if not os.path.exists(path):
        entry["ok"] = False
        r.warn("files", "%s %s: %s does not exist" % (service, what, path), serious=True)
        return False
    why = readable_by(path, user)
    if why:
        entry["ok"] = False
        r.warn("files", "%s %s: %s is %s" % (service, what, path, why), serious=True)
        return False
    return True


def jwks_file(r, path):
    """The key ids of protect's JWKS file, or None (a serious problem reported)."""
    from ..errors import ConfigError
    from ..jwk import parse_jwks
    from .verify import load_jwks

    try:
        keys, _skipped = parse_jwks(load_jwks(path))
    except ConfigError as e:
        r.warn("config", e.message, serious=True)
        return None
    except ValueError as e:
        r.warn("config", "JWKS file %s: %s" % (path, e), serious=True)
        return None
    return [k.kid for k in keys]


def _ca(r, service, what, path, user, out):
    if not _exists_readable(r, service, what, path, user, out):
        return
    import ssl

    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as e:
        out[-1]["ok"] = False
        r.warn("files", "%s %s: %s holds no usable CA certificate (%s)" % (service, what, path, e), serious=True)


def _pair(r, service, cert, key, hosts, user, out, now):
    from ..aio.certfiles import check_pair

    ok_c = _exists_readable(r, service, "certificate", cert, user, out)
    ok_k = _exists_readable(r, service, "private key", key, user, out)
    if not (ok_c and ok_k):
        return
    for serious, message in check_pair(cert, key, hosts, now=now):
        out[-1]["ok"] = out[-1]["ok"] and not serious
        r.warn("files", "%s: %s" % (service, message), serious=serious)


def _crls(r, p, user, out, now):
    """protect's client_crl files: readable, parseable, signed by a client CA, current (SEC-95, SEC-98)."""
    import datetime
    import ssl

    from ..aio.crlfiles import check_crl_files, load_crls, problem, uncovered_cas
    from ..errors import ConfigError

    cas = p.get("client_ca") or []
    when = None if now is None else datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    infos, judged = [], True  # judged: every file read, so a CA without a CRL is known
    for path in p["client_crl"]:
        if not _exists_readable(r, "protect", "client_crl", path, user, out):
            judged = False
            continue
        try:
            load_crls(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), [path])
            got = check_crl_files([path], cas, when)
        except ConfigError as e:
            out[-1]["ok"] = False
            r.warn("files", "protect client_crl: %s" % e.message, serious=True)
            judged = False
            continue
        infos += got
        for info in got:
            line = problem(info)
            if line:
                out[-1]["ok"] = False
                r.warn("files", "protect client_crl: %s" % line, serious=True)
    try:
        missing = uncovered_cas(infos, cas) if judged else []
    except ConfigError:
        missing = []  # an unreadable client CA: reported by its own check
    for name in missing:
        r.warn("files", "protect client_ca %s has no CRL among client_crl: its client certificates are refused"
               % name)


def _pairs(certs, keys):
    """(cert, key) pairs from settings that are a file or a list of files (two certificates, issue 19)."""
    certs = [certs] if isinstance(certs, str) else list(certs or ())
    keys = [keys] if isinstance(keys, str) else list(keys or ())
    return list(zip(certs, keys))


def check_files(r, files, now=None):
    """`files`: {"protect": {...}, "authserver": {...}} as doctor's _config gathered them. Returns the
    list of files checked ({"file", "what", "ok"})."""
    out = []
    p = files.get("protect")
    if p:
        user = _user("protect")
        for cert, key in _pairs(p.get("cert"), p.get("key")):
            _pair(r, "protect", cert, key, p.get("audience") or (), user, out, now)
        if p.get("ca"):
            _ca(r, "protect", "ca", p["ca"], user, out)
        for path in p.get("client_ca") or ():
            _ca(r, "protect", "client_ca", path, user, out)
        if p.get("client_crl"):
            _crls(r, p, user, out, now)
        if p.get("audit") not in (None, "-", "off"):
            d = os.path.dirname(os.path.abspath(p["audit"]))
            if not os.path.isdir(d):
                out.append({"file": p["audit"], "what": "audit", "ok": False})
                r.warn("files", "protect audit: directory %s does not exist" % d, serious=True)
    a = files.get("authserver")
    if a:
        user = _user("authserver")
        for cert, key in _pairs(a.get("cert"), a.get("key")):
            _pair(r, "authserver", cert, key, [a["host"]] if a.get("host") else (), user, out, now)
        for what in ("ca", "trust_ca"):
            if a.get(what):
                _ca(r, "authserver", "tls.%s_file" % what, a[what], user, out)
    if files.get("attach"):
        _attach(r, files["attach"], out, now)
    return out


def _attach(r, a, out, now):
    """attach's files: settings that name a file were checked by attach's own loader already."""
    user = _user("attach")
    for cert, key in _pairs(a.get("cert"), a.get("key")):
        _pair(r, "attach", cert, key, a.get("hosts") or (), user, out, now)
    if a.get("ca"):
        _ca(r, "attach", "client.ca", a["ca"], user, out)
    if a.get("initial_token_file"):
        _exists_readable(r, "attach", "client.initial_token_file", a["initial_token_file"], user, out)
    for cert, key in _pairs(a.get("jwks_cert"), a.get("jwks_key")):
        _pair(r, "attach", cert, key, (), user, out, now)
    for cert, key in _pairs(a.get("client_cert"), a.get("client_key")):  # ipmx RAP 2 (SEC-79)
        _pair(r, "attach", cert, key, (), user, out, now)
    if a.get("key_file"):
        if os.path.exists(a["key_file"]):
            _exists_readable(r, "attach", "client.key_file", a["key_file"], user, out)
        else:  # made (0600, secretbox.load_key) with the first registration
            r.warn("files", "attach client.key_file: %s does not exist yet (it is made at the first registration)"
                   % a["key_file"])
    if a.get("state_dir"):  # where the registration (the client credentials) is kept
        path = a["state_dir"]
        entry = {"file": path, "what": "client.state_dir", "ok": True}
        out.append(entry)
        if not os.path.exists(path):
            r.warn("files", "attach client.state_dir: %s does not exist yet (it is made 0700 at the first "
                   "registration)" % path)
        elif not os.path.isdir(path):
            entry["ok"] = False
            r.warn("files", "attach client.state_dir: %s is not a directory" % path, serious=True)
        else:
            why = writable_dir_by(path, user)
            if why:
                entry["ok"] = False
                r.warn("files", "attach client.state_dir: %s is %s: the registration cannot be kept"
                       % (path, why), serious=True)
