"""Rectified-flow decoder: noised latent patches + (conditioned) registers -> prediction per patch.

Full attention over [patches, registers]; adaLN-zero conditioning on the timestep.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from modality_tokenizers.flextok.config import FlexTokConfig
from modality_tokenizers.flextok.layers import (
    TimestepEmbedder,
    Transformer,
    init_weights,
    layer_norm,
    modulate,
    sincos_2d,
)
from modality_tokenizers.flextok.nested_dropout import NestedDropout
from modality_tokenizers.flextok.patching import patchify, unpatchify


class PatchHead(nn.Module):
    """Parameter-free norm, optional adaLN (shift, scale), linear to patch vectors."""

    def __init__(self, width: int, patch_dim: int, adaln: bool) -> None:
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width)) if adaln else None
        self.proj = nn.Linear(width, patch_dim)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = layer_norm(x)
        if self.adaLN_modulation is not None:
            shift, scale = self.adaLN_modulation(cond).unsqueeze(1).chunk(2, dim=-1)
            x = modulate(x, shift, scale)
        return self.proj(x)


class FlowDecoder(nn.Module):
    def __init__(self, cfg: FlexTokConfig) -> None:
        super().__init__()
        self.patch_size, self.grid = cfg.patch_size, cfg.grid_size
        self.num_patches = cfg.grid_size**2
        width = cfg.dec_width
        self.from_latents = nn.Linear(len(cfg.fsq_levels), width)
        self.register_posemb = nn.Parameter(torch.empty(cfg.num_registers, width))  # (R, D)
        self.nested_dropout = NestedDropout(width)
        self.null_cond = nn.Parameter(torch.randn(width) * 0.02)
        self.patch_emb = nn.Linear(cfg.patch_dim, width)
        self.register_buffer("posemb", sincos_2d(cfg.grid_size, width))  # (N, D)
        self.time_embedder = TimestepEmbedder(width, cfg.time_freq_dim, cfg.time_max_period, cfg.time_scale)
        self.transformer = Transformer(width, cfg.dec_depth, cfg.head_dim, cfg.mlp_ratio, adaln=True)
        self.head = PatchHead(width, cfg.patch_dim, cfg.head_adaln)
        init_weights(self)
        nn.init.trunc_normal_(self.register_posemb, std=0.02)
        nn.init.zeros_(self.head.proj.weight)  # start by predicting 0, as the official head

    def condition(self, codes: Tensor, keep: Tensor, null: Tensor) -> Tensor:
        """codes (B, R, d_fsq), keep (B,) tokens kept, null (B,) bool -> registers (B, R, D).

        Same order as the official decoder: project, add positions, mask registers >= keep,
        then replace every register of a null-condition sample by the learned null vector.
        """
        registers = self.from_latents(codes) + self.register_posemb  # (B, R, D)
        registers = self.nested_dropout(registers, keep)
        return torch.where(null.to(registers.device)[:, None, None], self.null_cond.to(registers.dtype), registers)

    def forward(self, x_t: Tensor, t: Tensor, registers: Tensor, keep_layer: int = 0) -> tuple[Tensor, Tensor | None]:
        """x_t (B, C, H, W), t (B,), registers (B, R, D) -> out (B, C, H, W), block output (B, N, D) or None."""
        patches = self.patch_emb(patchify(x_t, self.patch_size)) + self.posemb  # (B, N, D)
        cond = self.time_embedder(t)  # (B, D)
        x, kept = self.transformer(torch.cat([patches, registers], dim=1), None, cond, keep_layer)
        out = self.head(x[:, : self.num_patches], cond)  # (B, N, patch_dim)
        kept_patches = None if kept is None else kept[:, : self.num_patches]
        return unpatchify(out, self.patch_size, self.grid), kept_patches
