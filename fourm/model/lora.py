"""LoRA adapters on the trunk's linear layers, and merging them back into plain weights.

    names = apply_lora(model, rank=8, alpha=16, targets=("attn", "mlp"))   # wraps Linear -> LoRALinear
    merge_lora(model)                                                     # LoRALinear -> Linear, in place

A wrapped layer computes base(x) + (alpha / rank) * B A x with A (rank, in) and B (out, rank);
B starts at zero, so a freshly wrapped model computes exactly what it computed before. Merging
folds B A into the base weight, so the exported model is a plain FourM (same state-dict keys).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fourm.model.layers import Attention, SwiGLU

LORA_TARGETS = ("attn", "mlp")
_LINEARS = {"attn": (Attention, ("to_q", "to_kv", "proj")), "mlp": (SwiGLU, ("gate_up", "down"))}


class LoRALinear(nn.Module):
    """A frozen-able base nn.Linear plus a low-rank update (the base is kept as `base`)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, dtype=base.weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear; B = 0 keeps the output unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out)."""
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain nn.Linear computing the same function."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        out.weight.copy_(self.base.weight + self.scale * (self.lora_b @ self.lora_a))
        if self.base.bias is not None:
            out.bias.copy_(self.base.bias)
        return out


def apply_lora(model: nn.Module, rank: int, alpha: float, targets: Sequence[str] = LORA_TARGETS) -> list[str]:
    """Wrap the attention and/or MLP linears of the encoder and decoder blocks of a FourM in
    place. Returns the names of the new LoRA parameters (embeddings and heads are not wrapped)."""
    bad = [t for t in targets if t not in _LINEARS]
    if bad:
        raise ValueError(f"LoRA target '{bad[0]}' unknown (known: {', '.join(LORA_TARGETS)})")
    for stack in (model.encoder, model.decoder):
        for module in list(stack.modules()):
            for target in targets:
                cls, names = _LINEARS[target]
                if isinstance(module, cls):
                    for name in names:
                        layer = getattr(module, name)
                        if isinstance(layer, nn.Linear):
                            setattr(module, name, LoRALinear(layer, rank, alpha))
    return [n for n, _ in model.named_parameters() if n.endswith(".lora_a") or n.endswith(".lora_b")]


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear of `model` by its merged nn.Linear, in place; returns the model."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
    return model
