"""Patchify / unpatchify a (B, C, H, W) grid; patch vectors are ordered (p q c) as in the official code."""
from __future__ import annotations

from einops import rearrange
from torch import Tensor


def patchify(x: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) -> (B, H/p * W/p, p*p*C), row-major over patches."""
    return rearrange(x, "b c (h p) (w q) -> b (h w) (p q c)", p=patch, q=patch)


def unpatchify(tokens: Tensor, patch: int, grid: int) -> Tensor:
    """(B, grid*grid, p*p*C) -> (B, C, grid*p, grid*p)."""
    return rearrange(tokens, "b (h w) (p q c) -> b c (h p) (w q)", h=grid, w=grid, p=patch, q=patch)
