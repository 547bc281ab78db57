"""Adaptive FlexTok length: how many of an image's ordered tokens are enough.

    k = adaptive_lengths(tok, images, threshold_db=20.0)      # (B,) smallest k with PSNR >= 20 dB

Reconstruction rule (tokenizing data): per image, the smallest k of `candidates` (default 1, 2,
4, ..., R) whose reconstruction from the first k tokens has PSNR >= threshold against the image;
an image that never reaches it gets R. Every k decodes the whole batch from the same generator
state, so each image sees the same noise at every k and k is compared on token content alone
(the same convention as reconstruct.reconstructions with a seeded generator).

Agreement rule (generation, where there is no ground truth): `agreement_db(tok, short, long)`
is the PSNR between the decodes of a k-token and a 2k-token prefix (same noise);
fourm.generation.adaptive stops a sample at k once it is >= its threshold.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from modality_tokenizers.flextok.model import psnr


def power_of_two_lengths(max_tokens: int) -> list[int]:
    """1, 2, 4, ... up to max_tokens (max_tokens itself last, even if not a power of two)."""
    out = [2 ** i for i in range(int(math.log2(max_tokens)) + 1) if 2 ** i < max_tokens]
    return out + [max_tokens]


def threshold_from(threshold_db: Optional[float], mse: Optional[float]) -> float:
    """The PSNR threshold in dB from either form (images in [-1, 1], peak-to-peak 2)."""
    if (threshold_db is None) == (mse is None):
        raise ValueError("give exactly one of threshold_db or mse")
    if mse is not None:
        if mse <= 0:
            raise ValueError(f"mse threshold must be > 0, got {mse}")
        return 10.0 * math.log10(4.0 / mse)
    return float(threshold_db)


def _fresh(generator: Optional[torch.Generator], state: Optional[Tensor]) -> Optional[torch.Generator]:
    """A generator in `state` (so every decode draws the same noise); None stays None."""
    if generator is None:
        return None
    g = torch.Generator(device=generator.device)
    g.set_state(state)
    return g


@torch.no_grad()
def adaptive_lengths(tokenizer, images: Tensor, threshold_db: Optional[float] = None, mse: Optional[float] = None,
                     candidates: Optional[Sequence[int]] = None, steps: Optional[int] = None,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """images (B, 3, H, W) in [-1, 1] -> (B,) int64: per image the smallest candidate k whose
    reconstruction PSNR >= the threshold (dB, or from an MSE), else the largest candidate.
    Stops early once every image is resolved."""
    threshold = threshold_from(threshold_db, mse)
    R = tokenizer.max_tokens
    ks = sorted(set(candidates or power_of_two_lengths(R)))
    if ks[0] < 1 or ks[-1] > R:
        raise ValueError(f"candidate token counts must lie in 1..{R}, got {ks}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    state = generator.get_state()
    images = images.to(tokenizer.device)
    tokens = tokenizer.tokenize(images)  # B x (R,); FlexTok resizes to its image_size first
    size = tokenizer.cfg.image_size
    if tuple(images.shape[-2:]) != (size, size):  # compare at the resolution the decoder produces
        images = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    lengths = torch.full((len(tokens),), ks[-1], dtype=torch.long)
    open_ = torch.ones(len(tokens), dtype=torch.bool)  # images without a length yet
    for k in ks[:-1]:
        recon = tokenizer.detokenize([t[:k] for t in tokens], steps=steps, guidance_scale=1.0,
                                     generator=_fresh(generator, state))  # (B, 3, H, W)
        reached = (psnr(recon, images) >= threshold).cpu() & open_
        lengths[reached] = k
        open_ &= ~reached
        if not open_.any():
            break
    return lengths


@torch.no_grad()
def agreement_db(tokenizer, short: Sequence[Tensor], long: Sequence[Tensor], steps: Optional[int] = None,
                 guidance_scale: Optional[float] = None, seed: int = 0) -> Tensor:
    """(B,) PSNR in dB between the decodes of token prefixes `short[b]` and `long[b]`, same noise."""
    a = tokenizer.detokenize(list(short), steps=steps, guidance_scale=guidance_scale,
                             generator=torch.Generator().manual_seed(seed))
    b = tokenizer.detokenize(list(long), steps=steps, guidance_scale=guidance_scale,
                             generator=torch.Generator().manual_seed(seed))
    return psnr(a, b).cpu()
