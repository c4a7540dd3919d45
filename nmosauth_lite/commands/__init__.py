"""CLI command modules: each defines HELP, add_arguments(parser) and run(args) -> int."""
