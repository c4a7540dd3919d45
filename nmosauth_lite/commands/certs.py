"""`nmosauth-lite certs make`: a lab CA and a server certificate for protect, attach or the AS.

One command: `--out DIR` holds the CA (ca.pem, ca.key: made on first use, reused after) and
one certificate per service (`<name>.pem`, `<name>.key` 0600) for the names
and addresses given. Prints one JSON document (paths, names, end of validity, where to
trust the CA) on stdout. For labs and test benches: production devices get certificates
from the site's CA (BCP-003-01).
"""

import json
import sys

from ..errors import ConfigError

HELP = "make a lab CA and a server certificate (for protect, attach, the authorization server)"


def add_arguments(p):
    sub = p.add_subparsers(dest="certs_command", metavar="ACTION", parser_class=p.__class__)
    m = sub.add_parser("make", help="make (or reuse) DIR/ca.pem and a server certificate signed by it")
    m.add_argument("--out", required=True, metavar="DIR", help="directory for the CA and the certificate (0700)")
    m.add_argument("--name", action="append", default=[], metavar="HOST",
                   help="a DNS name the service is reached by (repeatable; the first one names the files)")
    m.add_argument("--ip", action="append", default=[], metavar="ADDR", help="an IP address (repeatable)")
    m.add_argument("--days", type=int, default=397, metavar="N", help="validity of the certificate (default 397)")
    m.add_argument("--basename", metavar="NAME", help="file names NAME.pem / NAME.key (default: the first name)")


def trust_text(ca_file):
    return ("controllers, clients and Nodes that connect to this service must trust %s:\n"
            "  nmosauth-lite protect/verify/token/probe --ca %s;  curl --cacert %s;\n"
            "  a Debian system store: copy it to /usr/local/share/ca-certificates/nmosauth-lab.crt, "
            "run update-ca-certificates;\n"
            "  a browser: import it as an authority. Keep ca.key private: it can sign for any name.\n"
            % (ca_file, ca_file, ca_file))


def run(args):
    if getattr(args, "certs_command", None) != "make":
        sys.stderr.write("nmosauth-lite certs: choose make (see --help)\n")
        return 2
    import cryptography  # noqa: F401  making certificates needs it: the one-line hint otherwise

    from ..aio.certfiles import CertError, make_server_cert

    try:
        out = make_server_cert(args.out, args.name, args.ip, basename=args.basename, days=args.days)
    except ValueError as e:
        raise ConfigError(str(e))
    except CertError as e:
        raise ConfigError(str(e))
    except OSError as e:
        raise ConfigError("cannot write in %s: %s" % (args.out, e.strerror or e))
    out["trust"] = "controllers and clients must trust %s (curl --cacert, nmosauth-lite --ca)" % out["ca_file"]
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    sys.stderr.write(("made a new CA: " if out["ca_made"] else "signed with the existing CA: ") + trust_text(out["ca_file"]))
    return 0
