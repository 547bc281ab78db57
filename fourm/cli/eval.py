"""`fourm eval --config configs/eval/X.yaml [--checkpoint DIR] [--out DIR] [key.sub=value ...]`:
run one evaluator (chosen by the config's `task`) and write metrics.json, PNGs and report.html.
A thin shell over `eval.run.evaluate`."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a FourM (segmentation, depth, normals, FlexTok, captions, ...)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="an EvalConfig YAML, e.g. configs/eval/semseg.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. max_samples=32")
    parser.add_argument("--checkpoint", default=None, help="FourM folder (default: the config's `model`)")
    parser.add_argument("--out", default=None, help="output folder (default: the config's `out_dir`)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(func=handler)


def handler(args) -> int:
    import json

    from eval.config import load_eval_config
    from eval.run import evaluate

    cfg = load_eval_config(args.config, args.overrides)
    result = evaluate(cfg, checkpoint=args.checkpoint, out_dir=args.out, device=args.device)
    scalars = {k: v for k, v in result["metrics"].items() if isinstance(v, (int, float)) or v is None}
    print(json.dumps({"task": cfg.task, "out_dir": result["out_dir"], "metrics": scalars}, indent=2))
    return 0
