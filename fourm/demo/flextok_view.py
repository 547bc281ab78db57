"""The FlexTok tab's work: tokenize one image and decode the first k tokens for k = 1, 2, 4, ...,
max, plus the chosen k, each from the same noise so only the token count differs.

    rec = reconstruct(session, "cat.png", num_tokens=4, guidance=1.5, steps=25, seed=0)
    rec.by_count[4]   # uint8 (H, W, 3)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

Progress = Optional[Callable[[float, str], None]]


@dataclass
class Reconstruction:
    """ids: all max_tokens token ids of the image (coarse to fine). by_count: k -> uint8 (H, W, 3)
    decoded from ids[:k]. chosen: the k shown large."""

    ids: list[int]
    by_count: dict[int, np.ndarray]
    chosen: int

    @property
    def chosen_image(self) -> np.ndarray:
        return self.by_count[self.chosen]


def token_counts(max_tokens: int, chosen: int) -> list[int]:
    """1, 2, 4, ... up to max_tokens, max_tokens itself, and the chosen count, in order."""
    counts, k = {max_tokens, chosen}, 1
    while k < max_tokens:
        counts.add(k)
        k *= 2
    return sorted(counts)


def check_settings(max_tokens: int, num_tokens: int, guidance: float, steps: int) -> None:
    """Impossible settings -> a ValueError worded for the page, before any model work."""
    if not 1 <= int(num_tokens) <= max_tokens:
        raise ValueError(f"number of tokens {num_tokens} is outside 1..{max_tokens}")
    if guidance < 0:
        raise ValueError(f"guidance must be >= 0, got {guidance}")
    if int(steps) < 1:
        raise ValueError(f"decoding steps must be >= 1, got {steps}")


def reconstruct(session, image_path: str | Path, num_tokens: int, guidance: float, steps: int, seed: int,
                progress: Progress = None) -> Reconstruction:
    """Tokenize the image file with the session's image_seq tokenizer (FlexTok) and decode prefixes."""
    import torch

    from fourm.generation.outputs import decode_tokens, encode_condition_file, preview_image

    spec = session.spec_of_kind("image_seq")
    if spec is None:
        raise ValueError("this checkpoint has no image_seq (FlexTok) modality with a trained tokenizer")
    tokenizer = session.tokenizers[spec.name]
    check_settings(spec.max_tokens, num_tokens, guidance, steps)
    ids = encode_condition_file(spec, tokenizer, image_path)  # 1D int64 (max_tokens,); ValueError on a bad file
    counts = token_counts(len(ids), int(num_tokens))
    by_count = {}
    for i, k in enumerate(counts):
        if progress:
            progress(i / len(counts), f"decoding {k} of {len(ids)} tokens")
        generator = torch.Generator().manual_seed(int(seed))  # the same noise for every k
        (value,) = decode_tokens(spec, tokenizer, [torch.as_tensor(ids[:k])], steps=int(steps),
                                 guidance_scale=float(guidance), generator=generator)
        by_count[k] = preview_image(spec, value)
    return Reconstruction([int(t) for t in ids], by_count, int(num_tokens))
