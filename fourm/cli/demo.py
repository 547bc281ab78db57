"""`fourm demo`: the local web demo (FlexTok tab, any-to-any tab), a thin shell over `fourm.demo.app.launch`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="local web demo (needs the [demo] extra)",
        description="Serve a web page over a FourM checkpoint: FlexTok reconstructions at 1..max tokens, and any-to-any "
                    "generation with settings that save as a `fourm generate` YAML. Needs `pip install -e .[demo]`.")
    parser.add_argument("--checkpoint", required=True, help="FourM model folder, e.g. runs/fourm_tiny/model")
    parser.add_argument("--samples", default="data/scenes/val", help="raw shard folder to pick val samples from "
                        "(default data/scenes/val; 'none' for uploads only)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from fourm.demo.app import launch

    samples = None if args.samples.lower() == "none" else args.samples
    print(f"fourm demo: loading {args.checkpoint}; then serving http://{args.host}:{args.port} (Ctrl-C stops it)")
    launch(args.checkpoint, samples=samples, host=args.host, port=args.port, device=args.device)
    return 0
