"""Pixel patches: the image itself, cut into a grid of 8-bit patches (no learning, lossless).

4M feeds RGB to its encoder as pixel patches, linearly embedded, beside the discrete RGB tokens it
predicts: a learned tokenizer loses shape detail that dense tasks need (README, rgb -> semseg). This
"tokenizer" keeps every pixel, so the `image_patches` modality kind can be an encoder input.

    tok = PixelPatchTokenizer(PixelPatchTokenizer.Config(image_size=64, patch_size=4))
    values = tok.encode(images)   # (B, 3, 64, 64) in [-1, 1] -> long (B, 256, 48) in 0..255
    images = tok.decode(values)   # -> (B, 3, 64, 64) in [-1, 1], exact up to 8-bit rounding

A patch's values run over its rows, then columns, then RGB channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from modality_tokenizers.base import ConfigOnlyTokenizer, register_tokenizer


@register_tokenizer("pixel_patches")
class PixelPatchTokenizer(ConfigOnlyTokenizer):
    vocab_size = 256  # 8-bit values

    @dataclass(frozen=True)
    class Config:
        image_size: int
        patch_size: int

        def __post_init__(self) -> None:
            if self.patch_size < 1 or self.image_size < 1 or self.image_size % self.patch_size:
                raise ValueError(f"pixel patches: image_size {self.image_size} must be a positive multiple "
                                 f"of patch_size {self.patch_size}")

    def __init__(self, config: "PixelPatchTokenizer.Config"):
        self.config = config
        self.grid = config.image_size // config.patch_size
        self.max_tokens = self.grid ** 2

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1], H = W = image_size -> long (B, N, 3 * p^2) in 0..255."""
        size = self.config.image_size
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(f"pixel patches: expected images (B, 3, {size}, {size}), got {tuple(images.shape)}")
        values = ((images.float().clamp(-1, 1) + 1) * 127.5).round().long()
        p = self.config.patch_size
        return rearrange(values, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)

    def decode(self, values: torch.Tensor, **_: object) -> torch.Tensor:
        """long (B, N, 3 * p^2) or (B, N * 3 * p^2) in 0..255 -> (B, 3, H, W) in [-1, 1]."""
        p = self.config.patch_size
        values = values.reshape(values.shape[0], self.max_tokens, 3 * p * p).float()
        images = rearrange(values, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=self.grid, p1=p, p2=p)
        return images / 127.5 - 1.0
