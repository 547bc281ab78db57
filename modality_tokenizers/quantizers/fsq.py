"""Finite scalar quantisation (Mentzer et al. 2023, arXiv 2309.15505).

Each of the d channels is squashed into a bounded range and rounded to one of `levels[i]`
values; the code is the tuple of rounded values, its index a mixed-radix number
(channel 0 is the least significant digit). No codebook is learned, so nothing can collapse.

Codes are returned normalised to [-1, 1]: value v in {0..L-1} maps to (v - L//2) / (L//2).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class FSQ(nn.Module):
    """`forward(z) -> (z_q, indices)`: z (..., d) real, z_q (..., d) straight-through, indices (...)."""

    def __init__(self, levels: Sequence[int] = (8, 8, 8, 5, 5, 5), eps: float = 1e-3) -> None:
        super().__init__()
        if len(levels) == 0 or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty list of ints >= 2, got {list(levels)}")
        self.levels_list = [int(l) for l in levels]
        self.eps = eps
        levels_t = torch.tensor(self.levels_list, dtype=torch.int64)
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.int64), levels_t[:-1]]), 0)
        # Buffers are not persistent: they follow from `levels`, so they never enter a state dict.
        self.register_buffer("_levels", levels_t, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels_list)

    @property
    def codebook_size(self) -> int:
        size = 1
        for l in self.levels_list:
            size *= l
        return size

    def _half_width(self) -> Tensor:
        return (self._levels // 2).float()  # (d,)

    def bound(self, z: Tensor) -> Tensor:
        """Squash z (..., d) so that rounding gives exactly `levels[i]` distinct values."""
        levels = self._levels.float()
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z (..., d) -> z_q (..., d) in [-1, 1] with straight-through gradient, indices (...) int64."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects last dim {self.dim}, got shape {tuple(z.shape)}")
        bounded = self.bound(z.float())
        rounded = bounded + (bounded.round() - bounded).detach()  # straight-through estimator
        codes = rounded / self._half_width()
        return codes.to(z.dtype), self.codes_to_indices(codes)

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """codes (..., d) normalised -> indices (...) int64."""
        half = self._half_width()
        digits = (codes.float() * half + half).round().long()  # (..., d) in {0..L-1}
        return (digits * self._basis).sum(-1)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """indices (...) int64 -> codes (..., d) normalised to [-1, 1]."""
        digits = (indices.long().unsqueeze(-1) // self._basis) % self._levels  # (..., d)
        half = self._half_width()
        return (digits.float() - half) / half
