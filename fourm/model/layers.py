"""Transformer layers: norms, attention (self/cross, with an optional key/value cache), SwiGLU,
and the pre-LN encoder and decoder blocks. Attention is `F.scaled_dot_product_attention` with
boolean masks (True = may attend), shape (B, 1, Lq, Lk)."""
from __future__ import annotations

import contextlib
import math
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

KV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (B, H, S, head_dim) each

# Not cuDNN: PyTorch picks it for bf16 with a mask on an H200, where its backward cost 13 ms of
# CPU per call (likely a new plan per shape: masked batches change length every step); a
# tiny-preset step took 423 ms in bf16 with it, 49 ms without (fp32: 38 ms). bench/gpu_check.sh
ATTENTION_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def make_norm(kind: str, dim: int, bias: bool) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(dim, bias=bias)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim)
    raise ValueError(f"unknown norm '{kind}' (known: layernorm, rmsnorm)")


class Attention(nn.Module):
    """Multi-head attention; keys/values come from `context` (cross) or from `x` (self)."""

    def __init__(self, dim: int, heads: int, qk_norm: bool, bias: bool, norm: str):
        super().__init__()
        self.heads = heads
        head_dim = dim // heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.q_norm = make_norm(norm, head_dim, bias) if qk_norm else nn.Identity()
        self.k_norm = make_norm(norm, head_dim, bias) if qk_norm else nn.Identity()

    def project_kv(self, context: torch.Tensor) -> KV:
        """(B, S, D) -> keys, values (B, H, S, head_dim); cacheable."""
        k, v = rearrange(self.to_kv(context), "b s (two h d) -> two b h s d", two=2, h=self.heads)
        return self.k_norm(k), v

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor], kv: Optional[KV] = None) -> torch.Tensor:
        """x (B, L, D), mask (B, 1, L, S) bool, kv from `project_kv` (default: self-attention on x)."""
        q = self.q_norm(rearrange(self.to_q(x), "b l (h d) -> b h l d", h=self.heads))
        k, v = self.project_kv(x) if kv is None else kv
        with sdpa_kernel(ATTENTION_BACKENDS) if q.is_cuda else contextlib.nullcontext():  # ~2% of a CPU step
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, L, head_dim)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float, bias: bool):
        super().__init__()
        hidden = int(math.ceil(2 / 3 * mlp_ratio * dim / 8) * 8)
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=bias)
        self.down = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, qk_norm: bool, bias: bool, norm: str):
        super().__init__()
        self.norm1 = make_norm(norm, dim, bias)
        self.attn = Attention(dim, heads, qk_norm, bias, norm)
        self.norm2 = make_norm(norm, dim, bias)
        self.mlp = SwiGLU(dim, mlp_ratio, bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Self-attention over the decoder queries, cross-attention to the encoder, SwiGLU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qk_norm: bool, bias: bool, norm: str):
        super().__init__()
        self.norm1 = make_norm(norm, dim, bias)
        self.self_attn = Attention(dim, heads, qk_norm, bias, norm)
        self.norm_q = make_norm(norm, dim, bias)
        self.norm_mem = make_norm(norm, dim, bias)
        self.cross_attn = Attention(dim, heads, qk_norm, bias, norm)
        self.norm2 = make_norm(norm, dim, bias)
        self.mlp = SwiGLU(dim, mlp_ratio, bias)

    def memory_kv(self, memory: torch.Tensor) -> KV:
        """Cross-attention keys/values of the encoder output (B, S, D); computed once per decode."""
        return self.cross_attn.project_kv(self.norm_mem(memory))

    def forward(self, x: torch.Tensor, self_mask: torch.Tensor, memory_kv: KV, cross_mask: torch.Tensor,
                past_kv: Optional[KV] = None) -> tuple[torch.Tensor, KV]:
        """x (B, L, D). With `past_kv` the new keys/values are appended to it (cached decoding).
        Returns the output and the self-attention keys/values including the new ones."""
        h = self.norm1(x)
        k, v = self.self_attn.project_kv(h)
        if past_kv is not None:
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
        x = x + self.self_attn(h, self_mask, kv=(k, v))
        x = x + self.cross_attn(self.norm_q(x), cross_mask, kv=memory_kv)
        return x + self.mlp(self.norm2(x)), (k, v)
