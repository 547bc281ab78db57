"""`fourm tokenizer train --config X.yaml` (or `--modality NAME`): train any modality's tokenizer.

Tokenizers that are fitted (text) run in this process; neural tokenizers (grid, FlexTok) run on
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
    if hasattr(TOKENIZER_TYPES[kind], "fit"):  # fitted, not gradient-trained
        from train.text_tokenizer import train_text_tokenizer

        metrics = train_text_tokenizer(path, args.overrides)
    else:
        from train.launch import run_tokenizer_training

        metrics = run_tokenizer_training(path, args.overrides, nproc=args.nproc)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in (metrics or {}).items()})
    return 0
