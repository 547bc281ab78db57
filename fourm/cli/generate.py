"""`fourm generate`: run a configs/generate/*.yaml on token shards, a thin shell over
`fourm.generation.shards.generate_from_shards`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="any-to-any generation from a config",
        description="Generate the targets of a generation config, in order, for each sample of token shards; "
                    "writes <key>.<target>.npy token ids (and .txt for text) under the output folder.")
    parser.add_argument("--config", required=True, help="a GenerationConfig YAML, e.g. configs/generate/caption_to_rgb.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. seed=1 batch_size=2")
    parser.add_argument("--input", required=True, help="token shards: a folder of *.tar, a glob or a brace range")
    parser.add_argument("--out", default=None, help="output folder (default: the config's output_dir)")
    parser.add_argument("--model", default=None, help="FourM checkpoint folder (default: the config's model)")
    parser.add_argument("--tokenizer", action="append", default=[], metavar="NAME=DIR",
                        help="text tokenizer folder for modality NAME (default: the registry's path)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from fourm.cli.tokenize import parse_tokenizer_dirs
    from fourm.generation_config import load_generation_config

    cfg = load_generation_config(args.config, overrides=args.overrides)  # every config error before the model loads
    tokenizer_dirs = parse_tokenizer_dirs(args.tokenizer)

    from fourm.generation.shards import generate_from_shards
    from fourm.model import FourM
    from fourm.paths import resolve
    from modality_tokenizers.text import TextTokenizer

    model = FourM.from_pretrained(resolve(args.model or cfg.model), map_location=args.device).eval()
    names = [c.modality for c in cfg.conditions] + [t.modality for t in cfg.targets]
    text_tokenizers = {n: TextTokenizer.from_pretrained(resolve(tokenizer_dirs.get(n, model.config.spec(n).tokenizer)))
                       for n in names if model.config.spec(n).kind == "text"}
    out = args.out or cfg.output_dir
    count = generate_from_shards(model, cfg, args.input, out, text_tokenizers, args.limit, args.device)
    print(f"generated {', '.join(t.modality for t in cfg.targets)} for {count} samples into {out}")
    return 0
