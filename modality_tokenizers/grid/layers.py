"""The network of the grid tokenizer: a conv stem that downsamples by the patch size, a small
ViT over the token grid, and the mirror image for decoding. Shapes are written at boundaries."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:  # (B, N, D) -> (B, N, D)
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, D/heads)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor) -> Tensor:  # (B, N, D)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ResConv(nn.Module):
    """3x3 conv residual block; keeps the spatial size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _shuffle_factor(patch_size: int) -> int:
    """Pixels folded into channels before the stem: patch/2, so one strided conv finishes the patch."""
    if patch_size < 2 or patch_size & (patch_size - 1):
        raise ValueError(f"patch_size must be a power of two >= 2, got {patch_size}")
    return patch_size // 2


class GridEncoder(nn.Module):
    """(B, C_in, H, W) features -> (B, h*w, code_dim) pre-quantisation latents, h = H/patch.

    Cheap on CPU: pixels are first folded into channels (pixel unshuffle by patch/2), so every conv
    runs at 2x the token resolution; a 2x2 stride-2 conv then makes one token per patch."""

    def __init__(self, in_channels: int, stem_channels: int, width: int, depth: int, heads: int,
                 patch_size: int, num_tokens: int, code_dim: int) -> None:
        super().__init__()
        r = _shuffle_factor(patch_size)
        self.stem = nn.Sequential(
            nn.PixelUnshuffle(r),  # (B, C_in*r*r, 2h, 2w)
            nn.Conv2d(in_channels * r * r, stem_channels, 3, padding=1),
            ResConv(stem_channels),
            nn.GroupNorm(8, stem_channels), nn.GELU(),
            nn.Conv2d(stem_channels, width, 2, stride=2),  # (B, width, h, w)
        )
        self.pos = nn.Parameter(torch.randn(1, num_tokens, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.to_code = nn.Linear(width, code_dim)

    def forward(self, x: Tensor) -> Tensor:
        tokens = rearrange(self.stem(x), "b d h w -> b (h w) d") + self.pos  # (B, N, width)
        for block in self.blocks:
            tokens = block(tokens)
        return self.to_code(self.norm(tokens))  # (B, N, code_dim)


class MLPBlock(nn.Module):
    """Pre-norm residual MLP applied to each token alone."""

    def __init__(self, width: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor) -> Tensor:  # (B, N, D)
        return x + self.mlp(x)


class LocalGridEncoder(nn.Module):
    """(B, C_in, H, W) features -> (B, h*w, code_dim): each token sees only its own patch's pixels.

    No attention, no position embedding, no norm across the image, so equal patches get equal
    codes wherever they are and whatever surrounds them. The global encoder gives a pure floor
    patch ~70 different semseg codes depending on the rest of the map (2.9 nats), noise that a
    model predicting the tokens from another modality cannot learn; here it gets one."""

    def __init__(self, in_channels: int, width: int, depth: int, patch_size: int, code_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed = nn.Linear(in_channels * patch_size * patch_size, width)
        self.blocks = nn.ModuleList(MLPBlock(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.to_code = nn.Linear(width, code_dim)

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        tokens = self.embed(rearrange(x, "b c (h p) (w q) -> b (h w) (c p q)", p=p, q=p))  # (B, N, width)
        for block in self.blocks:
            tokens = block(tokens)
        return self.to_code(self.norm(tokens))  # (B, N, code_dim)


class GridDecoder(nn.Module):
    """(B, h*w, code_dim) quantised codes -> (B, C_out, H, W) raw outputs of the codec
    (mirror of the encoder: ViT, 2x transposed conv, residual conv, pixel shuffle by patch/2)."""

    def __init__(self, out_channels: int, stem_channels: int, width: int, depth: int, heads: int,
                 patch_size: int, grid_size: tuple[int, int], code_dim: int) -> None:
        super().__init__()
        r = _shuffle_factor(patch_size)
        self.grid_size = grid_size
        self.from_code = nn.Linear(code_dim, width)
        self.pos = nn.Parameter(torch.randn(1, grid_size[0] * grid_size[1], width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(
            nn.ConvTranspose2d(width, stem_channels, 2, stride=2),  # (B, C, 2h, 2w)
            ResConv(stem_channels),
            nn.GroupNorm(8, stem_channels), nn.GELU(),
            nn.Conv2d(stem_channels, out_channels * r * r, 3, padding=1),
            nn.PixelShuffle(r),  # (B, C_out, H, W)
        )

    def forward(self, codes: Tensor) -> Tensor:
        tokens = self.from_code(codes) + self.pos  # (B, N, width)
        for block in self.blocks:
            tokens = block(tokens)
        grid = rearrange(self.norm(tokens), "b (h w) d -> b d h w", h=self.grid_size[0])
        return self.head(grid)  # (B, C_out, H, W)
