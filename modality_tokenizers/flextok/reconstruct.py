"""Coarse-to-fine helpers: reconstructions and PSNR/SSIM at several token counts.

Library side of `fourm flextok reconstruct IMG --tokens 1,4,16,64 --out grid.png`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from modality_tokenizers.flextok.model import FlexTok, psnr


def ssim(a: Tensor, b: Tensor, window: int = 7) -> Tensor:
    """(B,) mean SSIM of images in [-1, 1] (uniform window, per channel, data range 2)."""
    a, b = a.float(), b.float()
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    pool = lambda x: F.avg_pool2d(x, window, stride=1)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    var_a, var_b = pool(a * a) - mu_a**2, pool(b * b) - mu_b**2
    cov = pool(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


@torch.no_grad()
def reconstructions(
    model: FlexTok, images: Tensor, token_counts: Sequence[int], steps: int = 25,
    guidance_scale: float = 1.0, norm_guidance: bool = False, seed: int = 0,
) -> dict[int, Tensor]:
    """{k: (B, 3, H, W) decoded from the first k tokens}, the same noise for every k."""
    tokens = model.tokenize(images)
    out = {}
    for k in token_counts:
        gen = torch.Generator().manual_seed(seed)
        out[k] = model.detokenize([t[:k] for t in tokens], steps=steps, guidance_scale=guidance_scale,
                                  norm_guidance=norm_guidance, generator=gen)
    return out


def curve(images: Tensor, recons: dict[int, Tensor]) -> dict[int, dict[str, float]]:
    """{k: {"psnr": dB, "ssim": ...}} averaged over the batch."""
    return {
        k: {"psnr": psnr(r, images).mean().item(), "ssim": ssim(r, images.to(r.device)).mean().item()}
        for k, r in recons.items()
    }


def grid_image(images: Tensor, recons: dict[int, Tensor]):
    """PIL image: one row per input, columns = original, then each token count."""
    from PIL import Image

    columns = [images.cpu()] + [recons[k].cpu() for k in sorted(recons)]
    rows = torch.cat([torch.cat(list(col), dim=2) for col in zip(*columns)], dim=1)  # (3, B*H, cols*W)
    pixels = ((rows.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels)
