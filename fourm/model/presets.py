"""Size presets, one line each: name -> (dim, encoder depth, decoder depth, heads).

B/L/XL match 4M (12+12 x 768, 24+24 x 1024, 24+24 x 2048). micro is for tests.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from fourm.model.config import FourMConfig
from fourm.modalities import ModalitySpec

PRESETS: dict[str, tuple[int, int, int, int]] = {
    #         dim  enc  dec  heads
    "micro": (32, 1, 1, 2),
    "tiny": (256, 4, 4, 4),
    "small": (512, 8, 8, 8),
    "B": (768, 12, 12, 12),
    "L": (1024, 24, 24, 16),
    "XL": (2048, 24, 24, 32),
}


def preset_config(name: str, modalities: Sequence[ModalitySpec], **overrides: Any) -> FourMConfig:
    """A FourMConfig of preset `name` over `modalities`; keyword overrides replace any field."""
    if name not in PRESETS:
        raise ValueError(f"unknown FourM preset '{name}' (known: {', '.join(PRESETS)})")
    dim, enc, dec, heads = PRESETS[name]
    cfg = FourMConfig(dim=dim, encoder_depth=enc, decoder_depth=dec, heads=heads, modalities=tuple(modalities))
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
