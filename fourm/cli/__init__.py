"""The `fourm` console command. Each subcommand lives in its own module with a
`register(subparsers)` function; handlers are thin shells over library functions and import
heavy packages (torch, deepspeed, the train/ and eval/ packages) only when they run."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Subcommand modules, in the order `fourm --help` lists them.
SUBCOMMAND_MODULES = (
    "fourm.cli.data",
    "fourm.cli.tokenizer",
    "fourm.cli.tokenize",
    "fourm.cli.train",
    "fourm.cli.finetune",
    "fourm.cli.generate",
    "fourm.cli.eval",
    "fourm.cli.flextok",
    "fourm.cli.quickstart",
    "fourm.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fourm", description="4M-style any-to-any models with FlexTok tokens.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    from fourm.config import ConfigError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        # Bad input is the user's to fix: one clear line, no traceback (use -v for one).
        if args.verbose:
            raise
        print(f"fourm {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
