"""Optional REPA loss (representation alignment, Yu et al. 2024) for the decoder.

The paper aligns an early decoder block with frozen pretrained image features (DINOv2).
Nothing pretrained can be downloaded here, so the target is a *frozen, randomly initialised*
small conv net (seeded, never trained). Random conv features are a weak but honest target:
they carry local colour/edge statistics. REPA is therefore OFF by default (repa_weight=0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FrozenConvFeatures(nn.Module):
    """Image (B, 3, H, W) -> features (B, grid*grid, F); weights fixed by `seed`, no gradients."""

    def __init__(self, feature_dim: int, grid: int, seed: int = 1234) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.grid = grid
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, feature_dim, 3, padding=1) for c_in in (3, feature_dim, feature_dim)
        )
        for conv in self.convs:
            conv.weight.data = torch.randn(conv.weight.shape, generator=gen) * (2.0 / conv.weight[0].numel()) ** 0.5
            conv.bias.data.zero_()
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = images
        for conv in self.convs:
            x = F.gelu(conv(x))
        x = F.adaptive_avg_pool2d(x, self.grid)  # (B, F, g, g)
        return x.flatten(2).transpose(1, 2)  # (B, g*g, F)


class RepaProjector(nn.Module):
    """Decoder tokens (B, N, D) -> (B, N, F), a small MLP trained with the decoder."""

    def __init__(self, width: int, feature_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, feature_dim))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.mlp(tokens)


def repa_loss(projected: Tensor, target: Tensor) -> Tensor:
    """Negative mean cosine similarity between (B, N, F) tensors."""
    return -F.cosine_similarity(projected, target, dim=-1).mean()
