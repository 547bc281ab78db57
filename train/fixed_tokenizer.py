"""Save a tokenizer that learns nothing (pixel patches, object centres) from its YAML config, checked
against its modality's registry entry: `fourm tokenizer train --config configs/tokenizers/rgb_pixels_scenes.yaml`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from fourm.config import ConfigError, load_config
from fourm.modalities import load_registry


@dataclass(frozen=True)
class FixedTokenizerConfig:
    """modality: the registry entry it serves; model: {type, <the type's Config fields>}; out: folder."""

    modality: str
    model: dict[str, Any]
    out: str


def save_fixed_tokenizer(config_path: str | Path, overrides: Sequence[str] = ()) -> dict[str, int]:
    from fourm.paths import resolve
    from modality_tokenizers import TOKENIZER_TYPES

    cfg = load_config(config_path, FixedTokenizerConfig, overrides)
    spec = load_registry([cfg.modality])[cfg.modality]
    fields = {k: v for k, v in cfg.model.items() if k != "type"}
    try:
        tokenizer = TOKENIZER_TYPES[cfg.model["type"]].from_config(fields)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{config_path}: key 'model': {err}") from err
    grid = getattr(tokenizer, "grid", None)
    if tokenizer.max_tokens != spec.max_tokens or (spec.grid_size and tuple(spec.grid_size) != (grid, grid)):
        raise ConfigError(f"{config_path}: the tokenizer gives {tokenizer.max_tokens} tokens ({grid}x{grid}), "
                          f"modality '{spec.name}' expects {spec.max_tokens} ({list(spec.grid_size or [])})")
    if tokenizer.vocab_size != spec.vocab_size:
        raise ConfigError(f"{config_path}: the tokenizer has {tokenizer.vocab_size} ids, modality '{spec.name}' "
                          f"says vocab_size {spec.vocab_size}")
    if getattr(tokenizer.config, "patch_size", spec.patch_size) != spec.patch_size:
        raise ConfigError(f"{config_path}: patch_size {tokenizer.config.patch_size}, modality '{spec.name}' "
                          f"says {spec.patch_size}")
    tokenizer.save_pretrained(resolve(cfg.out))
    return {"tokens": tokenizer.max_tokens, "values_per_token": spec.values_per_token}
