"""How many FlexTok tokens a dataset's images need: the mean adaptive length over a raw split.

    stats = mean_adaptive_tokens("data/scenes/val", load_tokenizer("runs/tokenizers/rgb"), psnr_db=20)
    stats["mean_tokens"], stats["histogram"]      # e.g. 6.3, {1: 12, 2: 40, 4: 80, ...}

Per image, k is the smallest of 1, 2, 4, ..., R whose reconstruction reaches `psnr_db`
(modality_tokenizers.flextok.adaptive.adaptive_lengths); R when none does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch


def mean_adaptive_tokens(split_dir: str | Path, tokenizer: Any, psnr_db: float = 20.0, modality: str = "rgb",
                         steps: int = 10, batch_size: int = 32, limit: Optional[int] = None, seed: int = 0) -> dict:
    """{"mean_tokens", "count", "histogram" {k: images}, "psnr_db", "max_tokens"} over the raw
    shards of `split_dir` (the registry modality `modality`, an image_rgb file in each sample)."""
    from fourm.modalities import load_registry
    from fourm.shards import iter_samples, list_shards
    from fourm.tokenize import shard_field
    from modality_tokenizers.flextok.adaptive import adaptive_lengths
    from modality_tokenizers.raw import to_tensor

    spec = load_registry([modality])[modality]
    if spec.kind != "image_seq":
        raise ValueError(f"modality '{modality}' is {spec.kind}: adaptive lengths need an image_seq (FlexTok) modality")
    field = shard_field(spec)
    lengths: list[int] = []
    chunk: list[np.ndarray] = []

    def flush() -> None:
        gen = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            k = adaptive_lengths(tokenizer, to_tensor(spec.data, chunk), threshold_db=psnr_db, steps=steps, generator=gen)
        lengths.extend(int(v) for v in k)
        chunk.clear()

    for sample in iter_samples(list_shards(split_dir), [field]):
        if limit is not None and len(lengths) + len(chunk) >= limit:
            break
        chunk.append(sample[field])
        if len(chunk) == batch_size:
            flush()
    if chunk:
        flush()
    if not lengths:
        raise ValueError(f"{split_dir}: no samples with '{field}'")
    values, counts = np.unique(lengths, return_counts=True)
    return {"mean_tokens": float(np.mean(lengths)), "count": len(lengths), "psnr_db": psnr_db,
            "max_tokens": int(tokenizer.max_tokens), "histogram": {int(v): int(c) for v, c in zip(values, counts)}}
