"""`nmosauth-lite` command line: one small dispatcher, one module per command.

Only the module of the command being run is imported, so `verify` starts as fast
as the crypto library allows (devices start cold). Each command module in
`nmosauth_lite.commands` defines HELP, add_arguments(parser) and run(args) -> int.
Exit codes: 0 success, 1 a negative answer (denied, nothing found), 2 usage or
configuration errors and a missing optional package (one line on stderr, never a traceback),
3 (`register`, `token`) registered but awaiting the operator's approval.
"""

import sys

MIN_PYTHON = (3, 11)


def check_python(version_info=None):
    """Refuse an old interpreter in one line, before an import fails on it (tomllib, asyncio.timeout)."""
    v = tuple(sys.version_info if version_info is None else version_info)
    if v[:2] < MIN_PYTHON:
        sys.stderr.write("nmosauth-lite needs Python %d.%d or newer (this is %d.%d)\n" % (MIN_PYTHON + v[:2]))
        raise SystemExit(2)


check_python()

import os  # noqa: E402  (after the version check on purpose; argparse only when a parser is built)

from .errors import NmosAuthError  # noqa: E402

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
    "probe": "probe",
    "audit": "audit",
    "certs": "certs",
    "attach": "attach",
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


# Longest option name we will ever define; longer dash-tokens are always values (ids, secrets).
MAX_OPTION_NAME = 32
# optional package (top-level module) -> the extra that installs it, for the one-line hint
EXTRA_FOR_MODULE = {"cryptography": "crypto", "ecdsa": "fallback"}
# commands whose need for cryptography is the authorization server's: they name the [as] extra
EXTRA_FOR_COMMAND = {"as": "as", "demo": "as", "probe": "as", "certs": "as"}


def is_option_shaped(token):
    """True for what a person types as an option: -x, --word-word, --word=VALUE (lowercase
    letters and digits, inner dashes, at most MAX_OPTION_NAME). Anything else that starts
    with '-' (a kid such as -3aN_x..., an uppercase or long token) is a value."""
    name = token.split("=", 1)[0]
    body = name[2:] if name.startswith("--") else name[1:]
    if not body or len(name) > MAX_OPTION_NAME or not ("a" <= body[0] <= "z"):
        return False
    return all("a" <= c <= "z" or "0" <= c <= "9" or c == "-" for c in body) and "--" not in body \
        and not body.endswith("-")


def _parser_class():
    """The argparse parser class, made on first use: a cold `verify` reads its command line
    with parse_fast and never imports argparse (with gettext and locale) at all."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse with our error style, and ids that may start with '-'.

        argparse reads any unknown token that starts with '-' as an option, so an AS-generated
        kid such as "-3aN..." (1 draw in 64) broke `as keys withdraw KID` and every other
        id-taking command. Here a token is an option only when it is one of this parser's
        options (exactly, as --opt=VALUE, or an unambiguous abbreviation) or is option-shaped
        (is_option_shaped: a typo, reported as unrecognized); any other dash-token is a value,
        for positionals and option values alike. `--` still ends the options.
        """

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("formatter_class", _formatter)
            super().__init__(*args, **kwargs)

        def _parse_optional(self, arg_string):
            if arg_string[:1] == "-" and arg_string not in ("-", "--") \
                    and arg_string.split("=", 1)[0] not in self._option_string_actions \
                    and not is_option_shaped(arg_string):
                return None  # a value: positional or an option's argument
            return super()._parse_optional(arg_string)

        def error(self, message):  # usage errors: exit 2, one line, no traceback
            if "unrecognized arguments" in message or "expected one argument" in message \
                    or "arguments are required" in message:
                message += " (a value that starts with '-' goes after -- or as --option=VALUE)"
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


def missing_extra(exc, command):
    """The one line for an optional package a command needs but cannot import, or None
    when `exc` is not about one of our optional packages (then it is a real bug)."""
    top = (exc.name or "").split(".", 1)[0]
    extra = EXTRA_FOR_MODULE.get(top)
    if extra is None:
        return None
    if top == "cryptography":
        extra = EXTRA_FOR_COMMAND.get(command, extra)
    return "nmosauth-lite %s: needs the '%s' package: pip install 'nmosauth-lite[%s]'\n" % (
        command or "", top, extra)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        # A command may read its usual command lines from its own option table (parse_fast),
        # so a cold start builds no argparse parser; anything else goes to argparse.
        mod = _load(only) if only is not None else None
        if only is not None and mod is None:  # e.g. demo and probe in the firmware bundle
            sys.stderr.write("nmosauth-lite: '%s' is not part of this build (see --help)\n" % only)
            return 2
        fast = getattr(mod, "parse_fast", None)
        args = fast(argv[1:]) if fast is not None else None
        if args is None:
            parser = build_parser(only)
            args = parser.parse_args(argv)
            if getattr(args, "_run", None) is None:
                parser.print_help(sys.stderr)
                return 2
        return args._run(args)
    except NmosAuthError as e:
        sys.stderr.write("nmosauth-lite %s: %s\n" % (only or "", e.message))
        return 2
    except ModuleNotFoundError as e:  # an extra not installed: one line naming it, exit 2
        line = missing_extra(e, only)
        if line is None:
            raise
        sys.stderr.write(line)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
