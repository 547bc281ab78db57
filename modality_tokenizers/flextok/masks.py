"""Boolean attention masks for `F.scaled_dot_product_attention` (True = may attend)."""
from __future__ import annotations

import torch
from torch import Tensor


def register_encoder_mask(num_patches: int, num_registers: int, device: torch.device | None = None) -> Tensor:
    """(L, L) mask over [patches, registers], L = N + R.

    Patches attend to patches only; register i attends to every patch and to registers 0..i.
    So token i never depends on registers after it: truncating the sequence after k tokens
    gives exactly the tokens a k-register encoder would produce.
    """
    n, r = num_patches, num_registers
    mask = torch.zeros(n + r, n + r, dtype=torch.bool, device=device)
    mask[:, :n] = True  # everyone sees the patches
    mask[n:, n:] = torch.ones(r, r, dtype=torch.bool, device=device).tril()  # causal registers
    return mask
