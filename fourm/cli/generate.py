"""`fourm generate`: run a configs/generate/*.yaml on token shards (--input) or on one sample's
condition files (--condition NAME=FILE), a thin shell over `fourm.generation.shards`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="any-to-any generation from a config",
        description="Generate the targets of a generation config, in order, for each sample of token shards "
                    "(--input) or for one sample given as files (--condition NAME=FILE). Writes <key>.tok_<target>.npy "
                    "token ids and the decoded outputs (<key>.<target>.png, + .npy raw arrays for depth/semseg/normals, "
                    ".txt for text) under the output folder.")
    parser.add_argument("--config", required=True, help="a GenerationConfig YAML, e.g. configs/generate/caption_to_rgb.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. seed=1 batch_size=2")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", default=None, help="token shards: a folder of *.tar, a glob or a brace range")
    source.add_argument("--condition", action="append", default=None, metavar="NAME=FILE",
                        help="one sample: a raw file per input condition (PNG, depth .npy, caption .txt, "
                             "or a 1D .npy of token ids); repeat for several conditions")
    parser.add_argument("--key", default="sample", help="file name stem of the outputs with --condition")
    parser.add_argument("--out", default=None, help="output folder (default: the config's output_dir)")
    parser.add_argument("--model", default=None, help="FourM checkpoint folder (default: the config's model)")
    parser.add_argument("--tokenizer", action="append", default=[], metavar="NAME=DIR",
                        help="tokenizer folder for modality NAME (default: the registry's path)")
    parser.add_argument("--no-decode", action="store_true", help="write token ids only (no tokenizers needed for targets)")
    parser.add_argument("--rgb-tokens", choices=("config", "auto"), default="config",
                        help="auto: every image_seq (FlexTok) target gets num_tokens auto (grow until k and 2k tokens "
                             "decode alike, see fourm.generation.adaptive)")
    parser.add_argument("--rgb-psnr", type=float, default=None, help="agreement threshold (dB) of --rgb-tokens auto "
                        "(default: the target's auto_psnr)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(func=handler)


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
        pairs[name] = value
    return pairs


def tokenizers_needed(cfg, specs: dict, files: dict, decode: bool) -> list[str]:
    """Modalities whose tokenizer this run uses: text conditions, raw condition files, and the
    targets when decoding (or when num_tokens auto decodes prefixes)."""
    from fourm.generation.shards import needs_tokenizer

    names = [c.modality for c in cfg.conditions if specs[c.modality].kind == "text"]
    names += [n for n, path in files.items() if needs_tokenizer(path)]
    names += [t.modality for t in cfg.targets if decode or t.num_tokens == "auto"]
    return list(dict.fromkeys(names))


def with_auto_tokens(cfg, specs: dict, psnr_db):
    """`cfg` with num_tokens auto (and auto_psnr, if given) on its image_seq targets."""
    import dataclasses

    def auto(t):
        if t.modality not in specs or specs[t.modality].kind != "image_seq":  # unknown: check_modalities says so
            return t
        return dataclasses.replace(t, num_tokens="auto", auto_psnr=t.auto_psnr if psnr_db is None else psnr_db)

    return dataclasses.replace(cfg, targets=tuple(auto(t) for t in cfg.targets))


def registry_raw_exts() -> dict[str, str]:
    """{modality: raw_ext} of the registry (configs/modalities): which conditions share one file."""
    from fourm.modalities import load_registry

    return {name: spec.raw_ext for name, spec in load_registry().items()}


def handler(args: argparse.Namespace) -> int:
    from fourm.cli.tokenize import parse_tokenizer_dirs
    from fourm.generation_config import check_modalities, load_generation_config
    from fourm.generation.shards import condition_files, encode_sources

    cfg = load_generation_config(args.config, overrides=args.overrides)  # config errors before anything loads
    tokenizer_dirs = parse_tokenizer_dirs(args.tokenizer)
    given = parse_pairs(args.condition or [], "--condition")
    files = condition_files(cfg, given, registry_raw_exts()) if args.condition else {c.modality: c.source for c in cfg.conditions if c.source != "input"}

    from fourm.generation.outputs import load_modality_tokenizers
    from fourm.model import FourM
    from fourm.paths import resolve

    model = FourM.from_pretrained(resolve(args.model or cfg.model), map_location=args.device).eval()
    specs = {m.name: m for m in model.config.modalities}
    if args.rgb_tokens == "auto":
        cfg = with_auto_tokens(cfg, specs, args.rgb_psnr)
    check_modalities(cfg, list(specs.values()), f"{args.config} (against the model's modalities)")
    needed = tokenizers_needed(cfg, specs, files, not args.no_decode)
    tokenizers = load_modality_tokenizers({n: specs[n] for n in needed}, tokenizer_dirs)
    out = args.out or cfg.output_dir
    decode = not args.no_decode
    targets = ", ".join(t.modality for t in cfg.targets)
    if args.condition:
        from fourm.generation.shards import generate_from_files

        encoded = encode_sources(specs, files, tokenizers)  # wrong file: error here, before the model runs
        generate_from_files(model, cfg, encoded, out, tokenizers, args.key, args.device, decode)
        print(f"generated {targets} for {args.key} into {out}")
        return 0
    from fourm.generation.shards import generate_from_shards

    count = generate_from_shards(model, cfg, args.input, out, tokenizers, args.limit, args.device, decode)
    print(f"generated {targets} for {count} samples into {out}")
    return 0
