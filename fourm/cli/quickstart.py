"""`fourm quickstart [--small]`: make the data, train the tokenizers and models, write the report."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("quickstart", help="run the whole pipeline from nothing (resumable)")
    parser.add_argument("--out", default="quickstart", help="folder for stage markers and results")
    parser.add_argument("--small", action="store_true", help="a fast version: fewer samples and steps")
    parser.add_argument("--only", nargs="*", default=(), help="run only these stages")
    parser.add_argument("--sequential", action="store_true",
                        help="one stage after another in this process (default: independent stages side by "
                             "side, each in its own process, logs in <out>/logs/)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from fourm.quickstart import UnknownStage, run_quickstart
    from fourm.stage_scheduler import JobFailed

    try:
        results = run_quickstart(args.out, small=args.small, only=tuple(args.only), parallel=not args.sequential)
    except (JobFailed, UnknownStage) as err:  # a failed stage's traceback is in its log; rerunning resumes
        print(f"fourm quickstart: error: {err}", file=sys.stderr)
        return 1
    for name, result in results.items():
        print(f"{name}: {result}")
    return 0
