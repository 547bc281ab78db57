"""FlexTok: images <-> ordered 1D token sequences of flexible length (1..num_registers).

    VAE (optional) -> RegisterEncoder -> FSQ -> tokens          (tokenize)
    tokens -> FSQ codes -> FlowDecoder + Euler sampler -> VAE^-1  (detokenize)
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modality_tokenizers.base import (
    ModalityTokenizer,
    load_neural_tokenizer,
    register_tokenizer,
    save_neural_tokenizer,
)
from modality_tokenizers.flextok import flow
from modality_tokenizers.flextok.config import FlexTokConfig
from modality_tokenizers.flextok.decoder import FlowDecoder
from modality_tokenizers.flextok.encoder import RegisterEncoder
from modality_tokenizers.flextok.nested_dropout import NestedDropout, keep_choices
from modality_tokenizers.flextok.repa import FrozenConvFeatures, RepaProjector, repa_loss
from modality_tokenizers.quantizers import FSQ


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """(B,) PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return 10.0 * torch.log10(4.0 / mse)


def load_trained_vae(vae: nn.Module, folder: str) -> None:
    """Copy the weights of the kl_vae tokenizer saved in `folder` into `vae`, whose architecture
    (FlexTok's vae_* fields) must be the one that was trained."""
    from modality_tokenizers.flextok.vae import KLAutoencoder

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"FlexTok config vae_init: no trained VAE folder {folder!r} "
                                f"(train one with a model.type kl_vae tokenizer config first)")
    trained = KLAutoencoder.from_pretrained(folder)
    fields = ("latent_channels", "block_out_channels", "layers_per_block", "norm_num_groups")
    mismatch = {f: (getattr(trained.cfg, f), getattr(vae.cfg, f)) for f in fields if getattr(trained.cfg, f) != getattr(vae.cfg, f)}
    if mismatch:
        raise ValueError(f"FlexTok config vae_init: the VAE in {folder} differs from the vae_* fields "
                         f"(trained, configured): {mismatch}")
    vae.load_state_dict(trained.state_dict())


@register_tokenizer("flextok")
class FlexTok(nn.Module, ModalityTokenizer):
    Config = FlexTokConfig

    def __init__(self, cfg: FlexTokConfig | None = None, **overrides) -> None:
        super().__init__()
        self.cfg = dataclasses.replace(cfg or FlexTokConfig(), **overrides)
        cfg = self.cfg
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(cfg.seed)
            self.vae = self._build_vae(cfg)
            self.encoder = RegisterEncoder(cfg)
            self.fsq = FSQ(cfg.fsq_levels)
            self.decoder = FlowDecoder(cfg)
            if cfg.repa_weight > 0:
                self.repa_proj = RepaProjector(cfg.dec_width, cfg.repa_feature_dim)
                self.repa_features = FrozenConvFeatures(cfg.repa_feature_dim, cfg.grid_size)

    @staticmethod
    def _build_vae(cfg: FlexTokConfig) -> nn.Module | None:
        if cfg.vae == "none":
            return None
        from modality_tokenizers.flextok.vae import KLAutoencoder, KLVAEConfig

        vae_cfg = KLVAEConfig(latent_channels=cfg.vae_latent_channels, block_out_channels=cfg.vae_block_channels,
                              layers_per_block=cfg.vae_layers_per_block, norm_num_groups=cfg.vae_norm_groups)
        vae = KLAutoencoder(vae_cfg)
        if cfg.vae_init:
            load_trained_vae(vae, cfg.vae_init)
        return vae.requires_grad_(False)  # trained in its own stage, frozen here

    # --- protocol ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.cfg.vocab_size

    @property
    def max_tokens(self) -> int:
        return self.cfg.num_registers

    @property
    def device(self) -> torch.device:
        return self.decoder.null_cond.device

    # --- latent space --------------------------------------------------------------------
    def to_latent(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, h, w): the image itself in pixel mode.
        Images of another size are first resized to `image_size` (the tokenizer's trained resolution)."""
        size = self.cfg.image_size
        if tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if self.vae is None:
            return images
        with torch.no_grad():
            return (self.vae.encode(images) - self.cfg.vae_shift_factor) * self.cfg.vae_scaling_factor

    def from_latent(self, latent: Tensor) -> Tensor:
        if self.vae is None:
            return latent.clamp(-1, 1)
        latent = latent / self.cfg.vae_scaling_factor + self.cfg.vae_shift_factor
        return self.vae.decode(latent).clamp(-1, 1)

    # --- tokens <-> codes ----------------------------------------------------------------
    def quantize(self, latent: Tensor) -> tuple[Tensor, Tensor]:
        """latent (B, C, h, w) -> codes (B, R, d) straight-through, token ids (B, R)."""
        return self.fsq(self.encoder(latent))

    def codes_from_tokens(self, tokens: Sequence[Tensor] | Tensor) -> tuple[Tensor, Tensor]:
        """List of 1D id tensors (lengths 1..R) or (B, K) -> codes (B, R, d) zero-padded, keep (B,)."""
        rows = list(tokens.unbind(0)) if isinstance(tokens, Tensor) else [t.reshape(-1) for t in tokens]
        r = self.max_tokens
        if any(not 1 <= len(row) <= r for row in rows):
            raise ValueError(f"FlexTok: each token sequence must have 1..{r} tokens, got {[len(x) for x in rows]}")
        ids = torch.zeros(len(rows), r, dtype=torch.long, device=self.device)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row.to(self.device)
        keep = torch.tensor([len(row) for row in rows], device=self.device)
        return self.fsq.indices_to_codes(ids), keep

    # --- decoder prediction --------------------------------------------------------------
    def velocity(self, x_t: Tensor, t: Tensor, registers: Tensor, keep_layer: int = 0) -> tuple[Tensor, Tensor | None]:
        """Decoder output converted to a velocity (B, C, h, w) whatever the prediction target."""
        out, kept = self.decoder(x_t, t, registers, keep_layer)
        if self.cfg.prediction == "x0":
            out = flow.velocity_from_x0(x_t, out, t, self.cfg.x0_min_t)
        return out, kept

    # --- public API ----------------------------------------------------------------------
    @torch.no_grad()
    def tokenize(self, images: Tensor) -> list[Tensor]:
        """(B, 3, H, W) in [-1, 1] -> B token-id tensors of length num_registers (truncate freely)."""
        _, ids = self.quantize(self.to_latent(images.to(self.device)))
        return list(ids.unbind(0))

    @torch.no_grad()
    def detokenize(
        self,
        tokens: Sequence[Tensor] | Tensor,
        steps: int | None = None,
        guidance_scale: float | None = None,
        norm_guidance: bool | None = None,
        generator: torch.Generator | None = None,
        image_size: int | None = None,
    ) -> Tensor:
        """Token sequences (each length 1..R) -> images (B, 3, H, W) in [-1, 1]."""
        cfg = self.cfg
        codes, keep = self.codes_from_tokens(tokens)
        b = codes.shape[0]
        cond = self.decoder.condition(codes, keep, torch.zeros(b, dtype=torch.bool))
        null = self.decoder.condition(codes, keep, torch.ones(b, dtype=torch.bool))
        size = (image_size or cfg.image_size) // cfg.downsample
        noise = torch.randn(b, cfg.latent_channels, size, size, generator=generator).to(self.device)

        def velocity_fn(x: Tensor, t: Tensor, unconditional: bool) -> Tensor:
            return self.velocity(x, t, null if unconditional else cond)[0]

        guidance = flow.GuidanceConfig(
            scale=cfg.guidance_scale if guidance_scale is None else guidance_scale,
            norm_guidance=cfg.norm_guidance if norm_guidance is None else norm_guidance,
        )
        latent = flow.euler_sample(velocity_fn, noise, steps or cfg.sample_steps, guidance)
        return self.from_latent(latent)

    @torch.no_grad()
    def autoencode(self, images: Tensor, num_tokens: int | None = None, **decode_kwargs) -> Tensor:
        """Tokenize, keep the first `num_tokens` (all if None), detokenize."""
        tokens = [t[: num_tokens or self.max_tokens] for t in self.tokenize(images)]
        return self.detokenize(tokens, **decode_kwargs)

    def encode(self, batch: Tensor) -> Tensor:
        """Protocol: (B, 3, H, W) in [-1, 1] -> (B, max_tokens) int64 (all tokens)."""
        return torch.stack(self.tokenize(batch))

    def decode(self, ids: Tensor | Sequence[Tensor], **kwargs) -> Tensor:
        """Protocol: (B, K) ids or a list of 1D ids -> (B, 3, H, W) in [-1, 1]."""
        return self.detokenize(ids, **kwargs)

    # --- training contract ---------------------------------------------------------------
    train_step = 0  # set by the trainer (set_train_step): the nested-dropout warm-up reads it

    def set_train_step(self, step: int) -> None:
        self.train_step = int(step)

    def training_loss(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, float]]:
        """x (B, 3, H, W) in [-1, 1] -> (loss, logs). One rectified-flow step with nested
        dropout (first k registers, k a power of two), null-condition dropout, logit-normal t,
        velocity MSE (the x0 head is converted to a velocity first), optional REPA."""
        cfg, b = self.cfg, x.shape[0]
        latent = self.to_latent(x)  # (B, C, h, w)
        codes, _ = self.quantize(latent)  # (B, R, d)
        if cfg.nested_dropout and self.train_step >= cfg.nested_dropout_start:
            keep = NestedDropout.sample_keep(b, cfg.num_registers, generator)
        else:
            keep = torch.full((b,), cfg.num_registers)
        null = torch.rand(b, generator=generator) < cfg.null_cond_prob
        registers = self.decoder.condition(codes, keep.to(x.device), null)
        t = flow.sample_logit_normal_t(b, cfg.t_logit_mean, cfg.t_logit_std, generator).to(x.device)
        if cfg.pure_noise_prob > 0:
            pure = (torch.rand(b, generator=generator) < cfg.pure_noise_prob).to(x.device)
            t = torch.where(pure, torch.ones_like(t), t)
        noise = torch.randn(latent.shape, generator=generator).to(latent)
        x_t = flow.add_noise(latent, noise, t)
        keep_layer = cfg.repa_layer if cfg.repa_weight > 0 else 0
        v_pred, kept = self.velocity(x_t, t, registers, keep_layer)
        flow_loss = (v_pred - (noise - latent)).pow(2).mean()
        loss, logs = flow_loss, {"flow_loss": flow_loss.item(), "keep_mean": keep.float().mean().item()}
        if keep_layer:
            align = repa_loss(self.repa_proj(kept), self.repa_features(x))
            loss = loss + cfg.repa_weight * align
            logs["repa_loss"] = align.item()
        logs["loss"] = loss.item()
        return loss, logs

    @torch.no_grad()
    def validation_metrics(self, x: Tensor, token_counts: Sequence[int] | None = None, steps: int = 10, seed: int = 0) -> dict[str, float]:
        """PSNR (dB) of reconstructions with the first k tokens, k = 1, 2, 4, ..., R (fixed noise)."""
        was_training = self.training
        self.eval()
        tokens = self.tokenize(x)
        logs = {}
        for k in token_counts or keep_choices(self.max_tokens):
            gen = torch.Generator().manual_seed(seed)
            recon = self.detokenize([t[:k] for t in tokens], steps=steps, guidance_scale=1.0, generator=gen)
            logs[f"psnr@{k}"] = psnr(recon, x.to(recon.device)).mean().item()
        self.train(was_training)
        return logs

    # --- persistence ---------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike) -> None:
        save_neural_tokenizer(self, folder, self.cfg)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "FlexTok":
        # The saved weights include the VAE's: vae_init is not read again.
        return load_neural_tokenizer(cls, folder, lambda data: FlexTokConfig(**{**data, "vae_init": ""}))

    @classmethod
    def from_official(cls, path: str | os.PathLike, config: FlexTokConfig) -> "FlexTok":
        """Load an official ml-flextok safetensors file (names mapped, see official.py)."""
        from modality_tokenizers.flextok.official import load_official

        return load_official(cls(config), path)

    def save_official(self, path: str | os.PathLike) -> None:
        """Write this model's weights in the official ml-flextok layout (safetensors)."""
        from modality_tokenizers.flextok.official import save_official

        save_official(self, path)
