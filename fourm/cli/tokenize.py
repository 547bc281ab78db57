"""`fourm tokenize`: raw shards -> token shards (aligned keys), a thin shell over
`fourm.tokenize.tokenize_dataset`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tokenize", help="turn raw shards into token shards",
        description="Run each modality's trained tokenizer over raw shards and write token shards with "
                    "the same keys (<key>.tok_<name>.npy; text copied). Finished shards are kept, so a rerun resumes.")
    parser.add_argument("--data", required=True, help="raw dataset folder (with train/, val/ ...) or a folder of shards")
    parser.add_argument("--out", required=True, help="output folder (same split layout and shard names)")
    parser.add_argument("--modalities", nargs="+", required=True, help="registry names, e.g. depth semseg caption")
    parser.add_argument("--splits", nargs="+", default=None, help="only these sub-folders (default: all)")
    parser.add_argument("--tokenizer", action="append", default=[], metavar="NAME=DIR",
                        help="use the tokenizer in DIR for modality NAME (default: the registry's path)")
    parser.add_argument("--crops", type=int, default=0, help="random crops/flips per sample, keys <key>_c{j} (0: none)")
    parser.add_argument("--crop-min-scale", type=float, default=0.6, help="smallest crop area fraction")
    parser.add_argument("--flip", action="store_true", help="random horizontal flips in crops (captions saying 'left of' become wrong)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="bad raw samples: stop or skip")
    parser.add_argument("--rgb-tokens", choices=("all", "auto"), default="all",
                        help="image_seq (FlexTok) modalities: keep all tokens, or per image the fewest of 1,2,4,... "
                             "reconstructing it at --rgb-psnr dB")
    parser.add_argument("--rgb-psnr", type=float, default=20.0, help="PSNR threshold (dB) of --rgb-tokens auto")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=handler)


def parse_tokenizer_dirs(items: list[str]) -> dict[str, str]:
    dirs = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--tokenizer {item!r}: expected NAME=DIR")
        dirs[name] = folder
    return dirs


def handler(args: argparse.Namespace) -> int:
    from fourm.tokenize import AdaptiveLength, TokenizeSettings, tokenize_dataset

    settings = TokenizeSettings(crops=args.crops, crop_min_scale=args.crop_min_scale, flip=args.flip,
                                seed=args.seed, batch_size=args.batch_size, on_error=args.on_error)
    manifest = tokenize_dataset(args.data, args.out, args.modalities, settings, parse_tokenizer_dirs(args.tokenizer),
                                splits=args.splits, device=args.device, progress=not args.no_progress,
                                adaptive=AdaptiveLength(args.rgb_psnr, seed=args.seed) if args.rgb_tokens == "auto" else None)
    shards = sum(len(s["shards"]) for s in manifest["splits"].values())
    print(f"tokenized {shards} shards of {', '.join(manifest['modalities'])} into {args.out}")
    return 0
