"""`doctor`'s checks of every file the configuration names (issue 22 §2).

protect's cert/key/ca/jwks/audit and the authorization server's tls.* files: each must exist and
be readable by the service's user (the board's units run protect as nmosauth-protect and the
AS as nmosauth-as; run as root, doctor judges the file's owner and mode for that user, else
for whoever runs it); a certificate's key must match it, the certificate must be within its
validity and name the configured audience (protect) or host (the AS); CA files must load;
protect's client CRLs must load, be signed by a client CA and be within their validity (SEC-98).
"""

import os

# service -> the user its board unit runs as (board/systemd, board/sysusers.d)
SERVICE_USERS = {"protect": "nmosauth-protect", "authserver": "nmosauth-as"}


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
    if user is None:
        return None if os.access(path, os.R_OK) else "not readable by uid %d" % os.geteuid()
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
    if not _allowed(os.stat(path), uid, gids, 0o4):
        return "not readable by %s (the service's user)" % name
    return None


def _allowed(st, uid, gids, bit):
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


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
    return out
