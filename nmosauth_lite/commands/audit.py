"""`nmosauth-lite audit report FILE`: summarize `protect`'s audit log (issue 19 §4).

Which clients (address and client_id), APIs and methods were refused, or would have been in
observe mode (`protect --enforce off`), and why, with counts per reason: what to fix in the
controllers before enforcement is turned on. Text, or one JSON document with --json. FILE may
be "-" for stdin. Reading is bounded (nmosauth_lite.auditreport); malformed lines are counted.
"""

import sys

from ..errors import ConfigError

HELP = "summarize protect's audit log: who would be refused, where and why (observe mode)"


def add_arguments(p):
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=p.__class__)
    r = sub.add_parser("report", help="summarize an audit log (JSON lines written by protect --audit FILE)")
    r.add_argument("file", metavar="FILE", help="the audit log, or - for stdin")
    r.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    r.add_argument("--top", type=int, default=20, metavar="N", help="rows per table (default 20)")


def run(args):
    import json

    from ..auditreport import AuditReport

    if getattr(args, "audit_command", None) != "report":
        sys.stderr.write("nmosauth-lite audit: choose report (see --help)\n")
        return 2
    if not 1 <= args.top <= 1000:
        raise ConfigError("--top must be 1..1000")
    report = AuditReport()
    if args.file == "-":
        report.read(sys.stdin.buffer)
    else:
        try:
            with open(args.file, "rb") as f:
                report.read(f)
        except OSError as e:
            raise ConfigError("cannot read %s: %s" % (args.file, e.strerror or e))
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(args.top), indent=1) + "\n")
    else:
        sys.stdout.write("audit report of %s\n" % args.file + report.text(args.top))
    return 0
