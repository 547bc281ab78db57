"""Nested dropout: keep the first k registers, replace the rest by a learned mask token."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def keep_choices(num_registers: int) -> list[int]:
    """Powers of two up to num_registers (and num_registers itself if it is not one)."""
    choices = [2**i for i in range(num_registers.bit_length()) if 2**i <= num_registers]
    if choices[-1] != num_registers:
        choices.append(num_registers)
    return choices


class NestedDropout(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dropout_mask_token = nn.Parameter(torch.randn(dim) * 0.02)

    @staticmethod
    def sample_keep(batch: int, num_registers: int, generator: torch.Generator | None = None) -> Tensor:
        """(B,) int64: k drawn uniformly from the powers of two <= num_registers."""
        choices = torch.tensor(keep_choices(num_registers))
        pick = torch.randint(len(choices), (batch,), generator=generator)
        return choices[pick]

    def forward(self, registers: Tensor, keep: Tensor) -> Tensor:
        """registers (B, R, D), keep (B,) -> (B, R, D) with positions >= keep[b] masked."""
        positions = torch.arange(registers.shape[1], device=registers.device)
        kept = positions[None, :] < keep.to(registers.device)[:, None]  # (B, R)
        return torch.where(kept[..., None], registers, self.dropout_mask_token.to(registers.dtype))
