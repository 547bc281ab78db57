"""A segmentation probe on a frozen FourM encoder: which pixels belong to which class, read off
the encoder's features of the input tokens alone.

FlexTok RGB tokens are a 1D coarse-to-fine sequence, not a spatial grid, so features cannot be
interpolated to pixels. Instead `grid x grid` learned queries (one per output patch, plus a 2D
sin-cos position) attend once to the features (B, N, D); each query's output is mapped by a
linear (or one-hidden-layer MLP) head to the class logits of its patch of pixels:

    features (B, N, D) --cross-attention--> (B, G*G, D) --head--> (B, C, H, W) logits
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@torch.no_grad()
def encoder_features(model, conditions: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder output of the condition tokens: features (B, N, D) and valid (B, N) (the
    register token dropped). `conditions`: {name: ids (B, N_m)}, every token an input."""
    from fourm.generation.generate import condition_tokens

    batch = {n: condition_tokens(model.config.spec(n), ids) for n, ids in conditions.items()}
    enc = model.encode(batch)
    return enc.memory[:, 1:].float(), enc.valid[:, 1:]


class SegmentationProbe(nn.Module):
    def __init__(self, dim: int, num_classes: int, image_size: int, grid: int = 8,
                 head: Literal["linear", "mlp"] = "linear", hidden: int = 256):
        super().__init__()
        from fourm.model.embeddings import sincos_2d

        if image_size % grid:
            raise ValueError(f"probe grid {grid} does not divide the image size {image_size}")
        self.grid, self.patch, self.num_classes = grid, image_size // grid, num_classes
        self.queries = nn.Parameter(torch.randn(grid * grid, dim) * 0.02)
        self.register_buffer("positions", sincos_2d(grid, grid, dim), persistent=False)
        self.norm = nn.LayerNorm(dim)
        heads = max(1, dim // 64) if dim % max(1, dim // 64) == 0 else 1
        self.attend = nn.MultiheadAttention(dim, heads, batch_first=True)
        out = num_classes * self.patch * self.patch
        self.head = nn.Linear(dim, out) if head == "linear" else nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out))

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """features (B, N, D), valid (B, N) bool -> logits (B, C, H, W)."""
        B = features.shape[0]
        q = (self.queries + self.positions).expand(B, -1, -1)  # (B, G*G, D)
        x, _ = self.attend(q, self.norm(features), self.norm(features), key_padding_mask=~valid)
        logits = self.head(x + q)  # (B, G*G, C*p*p)
        return rearrange(logits, "b (gh gw) (c ph pw) -> b c (gh ph) (gw pw)", gh=self.grid, c=self.num_classes,
                         ph=self.patch, pw=self.patch)


def fit_probe(probe: SegmentationProbe, features: torch.Tensor, valid: torch.Tensor, targets: torch.Tensor,
              steps: int, batch_size: int, lr: float, generator: torch.Generator) -> list[float]:
    """Train the probe with AdamW on precomputed features (S, N, D), valid (S, N) and class maps
    (S, H, W) for `steps` steps of random batches; returns the loss curve."""
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    probe.train()
    losses = []
    for _ in range(steps):
        index = torch.randint(0, features.shape[0], (min(batch_size, features.shape[0]),), generator=generator)
        loss = F.cross_entropy(probe(features[index], valid[index]), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    probe.eval()
    return losses
