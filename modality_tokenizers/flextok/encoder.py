"""Register encoder: latent patches + learned registers -> one FSQ-sized vector per register."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from modality_tokenizers.flextok.config import FlexTokConfig
from modality_tokenizers.flextok.layers import Transformer, init_weights, layer_norm, sincos_2d
from modality_tokenizers.flextok.masks import register_encoder_mask
from modality_tokenizers.flextok.patching import patchify


class RegisterEncoder(nn.Module):
    def __init__(self, cfg: FlexTokConfig) -> None:
        super().__init__()
        self.patch_size, self.num_patches = cfg.patch_size, cfg.grid_size**2
        width = cfg.enc_width
        self.patch_emb = nn.Linear(cfg.patch_dim, width)
        # Fixed sin-cos positions; a persistent buffer so official checkpoints can overwrite it.
        self.register_buffer("posemb", sincos_2d(cfg.grid_size, width))  # (N, D)
        self.registers = nn.Parameter(torch.empty(cfg.num_registers, width))  # (R, D)
        self.transformer = Transformer(width, cfg.enc_depth, cfg.head_dim, cfg.mlp_ratio)
        self.to_latents = nn.Linear(width, len(cfg.fsq_levels))
        self.register_buffer("mask", register_encoder_mask(self.num_patches, cfg.num_registers), persistent=False)
        init_weights(self)
        nn.init.trunc_normal_(self.registers, std=0.02)
        # Zero-init the projection to FSQ (as the official encoder): codes start at the centre of
        # tanh's range, where the straight-through gradient is largest.
        nn.init.zeros_(self.to_latents.weight)

    def forward(self, latent: Tensor) -> Tensor:
        """latent (B, C, H, W) -> z (B, R, d_fsq), un-quantised."""
        patches = self.patch_emb(patchify(latent, self.patch_size)) + self.posemb  # (B, N, D)
        registers = self.registers.expand(latent.shape[0], -1, -1)  # (B, R, D)
        x, _ = self.transformer(torch.cat([patches, registers], dim=1), self.mask)  # (B, N+R, D)
        return self.to_latents(layer_norm(x[:, self.num_patches :]))
