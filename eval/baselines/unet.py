"""A small U-Net: the honest baseline trained directly on raw pixels (rgb -> semseg, rgb -> depth).

Each level is two 3x3 conv + GroupNorm + GELU; the encoder halves the resolution and doubles
the width `levels` times (max pooling), the decoder upsamples bilinearly and concatenates the
encoder's feature map of the same size. A 1x1 conv maps to `out_channels` at full resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    """(B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, norm_groups: int):
        groups = min(norm_groups, c_out)
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(groups, c_out), nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.GroupNorm(groups, c_out), nn.GELU())


class UNet(nn.Module):
    """(B, in_channels, H, W) -> (B, out_channels, H, W); H and W must be divisible by 2**levels."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, levels: int = 3, norm_groups: int = 8):
        super().__init__()
        widths = [width * 2 ** i for i in range(levels + 1)]
        self.levels = levels
        self.stem = ConvBlock(in_channels, widths[0], norm_groups)
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], norm_groups) for i in range(levels))
        self.up = nn.ModuleList(ConvBlock(widths[i + 1] + widths[i], widths[i], norm_groups) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.levels
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"U-Net with {self.levels} levels needs H, W divisible by {factor}, got {tuple(x.shape[-2:])}")
        skips = [self.stem(x)]  # (B, w, H, W)
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))  # (B, w * 2^i, H / 2^i, W / 2^i)
        h = skips.pop()
        for block in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        return self.head(h)  # (B, out_channels, H, W)
