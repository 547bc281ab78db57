"""`fourm tokenizer train --config X.yaml` (or `--modality NAME`): train any modality's tokenizer.

Tokenizers that are fitted (text) or learn nothing (pixel patches) run in this process; neural tokenizers (grid, FlexTok) run on
the DeepSpeed engine, launched over `--nproc` processes with torchrun when more than one."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="train tokenizers")
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train one modality's tokenizer from a YAML config")
    which = train.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", help="configs/tokenizers/*.yaml")
    which.add_argument("--modality", help="use the tokenizer_config named by this modality's registry entry")
    train.add_argument("--nproc", type=int, default=1, help="processes for DeepSpeed (CPU: 1-2)")
    train.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    train.set_defaults(func=run_train)
    describe = sub.add_parser("describe-codes", help="measure what each code of a trained grid tokenizer draws "
                              "(done when training ends; for tokenizers trained before)")
    which = describe.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", help="the tokenizer's training config, configs/tokenizers/*.yaml")
    which.add_argument("--modality", help="use the tokenizer_config named by this modality's registry entry")
    describe.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    describe.set_defaults(func=run_describe)


def config_path_for(args: argparse.Namespace) -> str:
    if args.config:
        return args.config
    from fourm.modalities import load_registry

    spec = load_registry([args.modality])[args.modality]
    if not spec.tokenizer_config:
        raise ValueError(f"modality '{spec.name}' names no tokenizer_config")
    return spec.tokenizer_config


def run_train(args: argparse.Namespace) -> int:
    from fourm.config import ConfigError, read_yaml
    from fourm.paths import resolve
    from modality_tokenizers import TOKENIZER_TYPES

    path = str(resolve(config_path_for(args)))
    model = read_yaml(path).get("model", {})
    kind = model.get("type") if isinstance(model, dict) else None
    if kind not in TOKENIZER_TYPES:
        raise ConfigError(f"{path}: key 'model.type': unknown tokenizer type {kind!r} (known: {', '.join(sorted(TOKENIZER_TYPES))})")
    if hasattr(TOKENIZER_TYPES[kind], "from_config"):  # nothing to learn (pixel patches)
        from train.fixed_tokenizer import save_fixed_tokenizer

        metrics = save_fixed_tokenizer(path, args.overrides)
    elif hasattr(TOKENIZER_TYPES[kind], "fit"):  # fitted, not gradient-trained
        from train.text_tokenizer import train_text_tokenizer

        metrics = train_text_tokenizer(path, args.overrides)
    else:
        from train.launch import run_tokenizer_training

        metrics = run_tokenizer_training(path, args.overrides, nproc=args.nproc)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in (metrics or {}).items()})
    return 0


def run_describe(args: argparse.Namespace) -> int:
    """Measure the code appearance of the tokenizer a training config saved (cfg.out) over its
    training data, and write it beside the weights."""
    from fourm.modalities import load_registry
    from modality_tokenizers import load_tokenizer
    from modality_tokenizers.grid.appearance import save_appearance
    from train.tokenizer_config import load_tokenizer_train_config
    from train.tokenizer_trainer import describe_codes

    cfg = load_tokenizer_train_config(config_path_for(args), args.overrides)
    tokenizer = load_tokenizer(cfg.out)
    if not hasattr(tokenizer, "describe_codes"):
        raise ValueError(f"{cfg.out}: a {type(tokenizer).__name__} has no grid codes to describe")
    result = describe_codes(tokenizer, cfg, load_registry([cfg.modality])[cfg.modality].data)
    save_appearance(cfg.out, *tokenizer.measured_appearance)
    print(result)
    return 0
