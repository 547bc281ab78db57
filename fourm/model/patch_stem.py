"""A small CNN that embeds one pixel patch (an alternative to 4M's linear patch embedding).

A linear map of a patch's 3*p*p values sees a shape only as a fixed template at a fixed place
in the patch. Shared 3x3 filters see edges and corners wherever they fall, so a few hundred
training steps are enough to tell a small cube from a sphere (README, rgb -> semseg). Each patch
is embedded alone, so it works on any subset of patches, as the masking gives them.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class ConvPatchStem(nn.Module):
    """Pixel patches (n, p*p*3) in [-1, 1], laid out (p1 p2 c) -> embeddings (n, dim).

    3x3 convolutions, the first at stride 1, then stride 2 until the patch is 2x2 cells,
    then a linear map of the flattened 2x2 cells, layer-normed: unit-scale outputs from the
    start, like the token tables (fourm.py, _init_weights). p must be a power of 2, at least 2.
    """

    def __init__(self, patch_size: int, dim: int, widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"conv patch stem: patch_size must be a power of 2 >= 2, got {patch_size}")
        self.patch_size = patch_size
        halvings = patch_size.bit_length() - 2  # p -> 2
        layers, channels = [nn.Conv2d(3, widths[0], 3, padding=1), nn.GELU()], widths[0]
        for i in range(halvings):
            out = widths[min(i + 1, len(widths) - 1)]
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GELU()]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Linear(channels * 4, dim), nn.LayerNorm(dim))

    @property
    def in_features(self) -> int:
        return 3 * self.patch_size ** 2

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        patches = rearrange(values, "n (p1 p2 c) -> n c p1 p2", p1=p, p2=p)
        cells = self.convs(patches)  # (n, C, 2, 2)
        return self.out(rearrange(cells, "n c h w -> n (c h w)"))
