"""`nmosauth-lite` command line: one small dispatcher, one module per command.

Only the module of the command being run is imported, so `verify` starts as fast
as the crypto library allows (devices start cold). Each command module in
`nmosauth_lite.commands` defines HELP, add_arguments(parser) and run(args) -> int.
Exit codes: 0 success, 1 a negative answer (denied, nothing found), 2 usage or
configuration errors (one line on stderr, never a traceback).
"""

import os
import sys

from .errors import NmosAuthError

# command name -> module in nmosauth_lite.commands
COMMANDS = {
    "verify": "verify",
    "discover": "discover",
    "protect": "protect",
    "jwks": "jwks",
    "as": "authserver",
    "register": "register",
    "token": "token",
    "demo": "demo",
    "doctor": "doctor",
}


def _formatter(prog):
    # An explicit width keeps argparse from importing shutil (and with it bz2 and
    # lzma) to ask the terminal: a few ms of every cold start.
    import argparse

    try:
        width = int(os.environ.get("COLUMNS", "100"))
    except ValueError:
        width = 100
    return argparse.HelpFormatter(prog, width=max(40, width) - 2)


def _parser_class():
    # argparse is imported only when a parser is built (see main: parse_fast).
    import argparse

    class _Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("formatter_class", _formatter)
            super().__init__(*args, **kwargs)

        def error(self, message):  # usage errors: exit 2, one line, no traceback
            sys.stderr.write("%s: error: %s (see --help)\n" % (self.prog, message))
            raise SystemExit(2)

    return _Parser


def _load(name):
    try:
        # __import__ rather than importlib: one module less at every cold start
        return __import__("nmosauth_lite.commands." + COMMANDS[name], fromlist=["run"])
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("nmosauth_lite.commands"):
            return None  # command not built yet
        raise


def build_parser(only=None):
    parser_class = _parser_class()
    parser = parser_class(prog="nmosauth-lite", description="NMOS IS-10 / BCP-003-02 authorization stack")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    # A command may read its usual command lines from its own option table (parse_fast),
    # so a cold start builds no argparse parser; anything else goes to argparse below.
    fast = getattr(_load(only), "parse_fast", None) if only is not None else None
    args = fast(argv[1:]) if fast is not None else None
    if args is None:
        parser = build_parser(only)
        args = parser.parse_args(argv)
        if getattr(args, "_run", None) is None:
            parser.print_help(sys.stderr)
            return 2
    try:
        return args._run(args)
    except NmosAuthError as e:
        sys.stderr.write("nmosauth-lite %s: %s\n" % (args.command, e.message))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
