"""The config of `train.tokenizer_trainer`: one YAML per tokenizer under configs/tokenizers/.

    modality: depth                  # a registry name (configs/modalities/depth.yaml)
    model: {type: grid, data: depth_map, ...}   # validated into TOKENIZER_TYPES[type].Config
    data: {train: data/scenes/train, val: data/scenes/val}
    train: {steps: 2000, batch_size: 32}
    engine: {zero_stage: 0, lr: 1e-3}
    out: runs/tokenizers/depth
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from fourm.config import ConfigError, apply_overrides, from_dict, read_yaml
from train.engine import EngineConfig


@dataclass(frozen=True)
class TokenizerDataConfig:
    """train/val: shard folders, globs or brace ranges; val "" skips validation.
    shuffle_buffer: samples mixed in the streaming shuffle. crop_min_scale < 1 enables random
    resized crops (area fraction in [crop_min_scale, 1]); flip: random horizontal flips.
    val_samples: validation samples used at each validation (0: all). on_error: raise | skip."""

    train: str
    val: str = ""
    shuffle_buffer: int = 1000
    crop_min_scale: float = 1.0
    flip: bool = False
    val_samples: int = 0
    on_error: Literal["raise", "skip"] = "raise"


@dataclass(frozen=True)
class TokenizerLoopConfig:
    """steps: optimizer steps in all; batch_size: samples per rank per micro-step.
    log_every / val_every / ckpt_every in steps (0: never; a final validation and save always run)."""

    steps: int = 1000
    batch_size: int = 32
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 500
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class WandbConfig:
    enabled: bool = False
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "fourm"
    name: str = ""


@dataclass(frozen=True)
class TokenizerTrainConfig:
    """modality: registry name; model: the tokenizer's config with its `type`; out: the folder
    the trained tokenizer is saved to (checkpoints in out/checkpoints, log in out/log.jsonl)."""

    modality: str
    model: dict
    data: TokenizerDataConfig
    out: str
    train: TokenizerLoopConfig = field(default_factory=TokenizerLoopConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    @property
    def model_type(self) -> str:
        return self.model["type"]

    def model_config(self, source: str = "<config>") -> Any:
        """`model` (without `type`) validated into TOKENIZER_TYPES[type].Config."""
        return validate_model(self.model, source)


def validate_model(model: dict, source: str) -> Any:
    import modality_tokenizers  # noqa: F401  (registers built-in types)
    from modality_tokenizers.base import TOKENIZER_TYPES

    _register_extra_types()
    if "type" not in model:
        raise ConfigError(f"{source}: missing required key 'model.type' (known: {', '.join(sorted(TOKENIZER_TYPES))})")
    type_name = model["type"]
    if type_name not in TOKENIZER_TYPES:
        raise ConfigError(f"{source}: key 'model.type': unknown tokenizer type {type_name!r} (known: {', '.join(sorted(TOKENIZER_TYPES))})")
    cls = TOKENIZER_TYPES[type_name]
    if not hasattr(cls, "Config"):
        raise ConfigError(f"{source}: tokenizer type {type_name!r} has no nested Config dataclass to validate 'model' with")
    return from_dict(cls.Config, {k: v for k, v in model.items() if k != "type"}, source=source, path="model")


def _register_extra_types() -> None:
    """Import tokenizer packages that `modality_tokenizers/__init__` may not import yet."""
    import importlib

    for name in ("modality_tokenizers.grid", "modality_tokenizers.flextok"):
        try:
            importlib.import_module(name)
        except Exception as err:  # a package under construction must not break other tokenizers
            import logging

            logging.getLogger(__name__).debug("could not import %s: %s", name, err)


def load_tokenizer_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TokenizerTrainConfig:
    """Read, override (`a.b=value`) and validate a tokenizer training config, model section included."""
    data = apply_overrides(read_yaml(path), overrides)
    cfg = from_dict(TokenizerTrainConfig, data, source=str(path))
    cfg.model_config(source=str(path))  # fail now, naming the key, not after the engine starts
    return cfg


def fill_schedule(cfg: TokenizerTrainConfig) -> TokenizerTrainConfig:
    """engine.total_steps defaults to train.steps."""
    if cfg.engine.total_steps > 0:
        return cfg
    return dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, total_steps=cfg.train.steps))
