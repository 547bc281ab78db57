"""One quickstart stage in a process of its own (what `fourm quickstart` launches per stage):

    python -m fourm.quickstart_worker rgb_vae --out quickstart [--small]
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from fourm.quickstart import run_stage

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", help="the stage's name (fourm.quickstart.STAGES)")
    parser.add_argument("--out", default="quickstart")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    run_stage(args.stage, Path(args.out), args.small)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
