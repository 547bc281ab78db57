"""Transformer pieces shared by the FlexTok encoder and decoder.

Parameter names (wq/wk/wv/proj, mlp.fc1/fc2/fc3, adaLN_modulation.1) follow the official
release so that its checkpoints map one-to-one (see official.py). Norms carry no parameters
(LayerNorm without affine), as in the official model; QK-norm likewise.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def layer_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Parameter-free LayerNorm over the last dim, computed in fp32."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps).to(x.dtype)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1.0 + scale) + shift


class Attention(nn.Module):
    """Multi-head self-attention with QK-norm; `mask` (L, L) or (B, 1, L, L) bool, True = attend."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__()
        self.num_heads = dim // head_dim
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.scale = 8.0 / head_dim  # muP scaling of the official code; = 1/sqrt(64) at head_dim 64

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        # x (B, L, D) -> q, k, v (B, H, L, Dh)
        q, k, v = (rearrange(w(x), "b l (h d) -> b h l d", h=self.num_heads) for w in (self.wq, self.wk, self.wv))
        q, k = layer_norm(q), layer_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))


class SwiGLU(nn.Module):
    """Gated MLP fc2(silu(fc1 x) * fc3 x); hidden = int(2/3 * ratio * dim) as in the official code."""

    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(2 * int(dim * mlp_ratio) / 3)
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, dim, bias=False)
        self.fc3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.silu(self.fc1(x)) * self.fc3(x))


class Block(nn.Module):
    """Pre-norm transformer block; with `adaln=True` it is modulated by a per-sample embedding."""

    def __init__(self, dim: int, head_dim: int, mlp_ratio: float, adaln: bool = False) -> None:
        super().__init__()
        self.attn = Attention(dim, head_dim)
        self.mlp = SwiGLU(dim, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim)) if adaln else None

    def forward(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        if self.adaLN_modulation is None:
            x = x + self.attn(layer_norm(x), mask)
            return x + self.mlp(layer_norm(x))
        # cond (B, D) -> six (B, 1, D) modulations, in the official chunk order
        mods = self.adaLN_modulation(cond).unsqueeze(1).chunk(6, dim=-1)
        gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp = mods
        x = x + gate_msa * self.attn(modulate(layer_norm(x), shift_msa, scale_msa), mask)
        return x + gate_mlp * self.mlp(modulate(layer_norm(x), shift_mlp, scale_mlp))


class Transformer(nn.Module):
    """A stack of blocks; `forward` can also return the output of one block (for REPA)."""

    def __init__(self, dim: int, depth: int, head_dim: int, mlp_ratio: float, adaln: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, head_dim, mlp_ratio, adaln) for _ in range(depth))

    def forward(
        self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None, keep_layer: int = 0
    ) -> tuple[Tensor, Tensor | None]:
        kept = None
        for index, block in enumerate(self.blocks, start=1):
            x = block(x, mask, cond)
            if index == keep_layer:
                kept = x
        return x, kept


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform linears with zero bias; adaLN projections start at zero (adaLN-zero)."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            if "adaLN_modulation" in name:
                nn.init.zeros_(m.weight)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def sincos_2d(grid: int, dim: int, temperature: float = 10000.0) -> Tensor:
    """Fixed 2D sin-cos position embedding (MoCo-v3 style) -> (grid*grid, dim), row-major."""
    if dim % 4:
        raise ValueError(f"sin-cos 2D position embedding needs dim % 4 == 0, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))  # (D/4,)
    out_r = rows.reshape(-1, 1) * omega  # (N, D/4)
    out_c = cols.reshape(-1, 1) * omega
    return torch.cat([out_r.sin(), out_r.cos(), out_c.sin(), out_c.cos()], dim=1)


class TimestepEmbedder(nn.Module):
    """t (B,) in [0, 1] -> (B, D): sinusoids of t*scale, then a 2-layer SiLU MLP (DiT style)."""

    def __init__(self, dim: int, freq_dim: int, max_period: float, scale: float) -> None:
        super().__init__()
        self.freq_dim, self.max_period, self.scale = freq_dim, max_period, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = (t.float() * self.scale)[:, None] * freqs[None]  # (B, half)
        emb = torch.cat([args.cos(), args.sin()], dim=-1)
        if self.freq_dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))
