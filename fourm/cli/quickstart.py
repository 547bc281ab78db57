"""`fourm quickstart [--small]`: make the data, train the tokenizers and models, write the report."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("quickstart", help="run the whole pipeline from nothing (resumable)")
    parser.add_argument("--out", default="quickstart", help="folder for stage markers and results")
    parser.add_argument("--small", action="store_true", help="a fast version: fewer samples and steps")
    parser.add_argument("--only", nargs="*", default=(), help="run only these stages")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fourm.quickstart import run_quickstart

    results = run_quickstart(args.out, small=args.small, only=tuple(args.only))
    for name, result in results.items():
        print(f"{name}: {result}")
    return 0
