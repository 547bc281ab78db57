"""Screenshots of both demo tabs (for the README): starts `fourm demo` on a free loopback port,
drives it in Debian's headless Chromium, writes demo_flextok.png and demo_any_to_any.png.

    python bench/demo_screenshots.py --checkpoint runs/fourm_tiny/model --samples data/scenes/val --out docs/screenshots
    python bench/demo_screenshots.py --micro --out /tmp/shots     # a random micro checkpoint, seconds

Needs /usr/bin/chromium (apt-get install chromium) and the [demo] extra.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="FourM model folder (e.g. runs/fourm_tiny/model)")
    parser.add_argument("--samples", default="data/scenes/val", help="raw val shard folder")
    parser.add_argument("--micro", action="store_true", help="build and show a random micro checkpoint instead")
    parser.add_argument("--out", default="docs/screenshots", help="folder for the two PNGs")
    args = parser.parse_args()
    if not args.micro and not args.checkpoint:
        parser.error("give --checkpoint DIR or --micro")

    from fourm.demo.app import launch
    from fourm.demo.screenshots import free_port, save_screenshots

    with tempfile.TemporaryDirectory(prefix="fourm_demo_shots_") as tmp:
        checkpoint, samples = args.checkpoint, args.samples
        if args.micro:
            from fourm.demo.micro import build_micro_checkpoint

            checkpoint, samples = build_micro_checkpoint(Path(tmp) / "micro")
        port = free_port()
        demo = launch(checkpoint, samples=samples, port=port, block=False)
        try:
            paths = save_screenshots(f"http://127.0.0.1:{port}/", args.out, Path(tmp) / "chromium_profile")
        finally:
            demo.close()
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
