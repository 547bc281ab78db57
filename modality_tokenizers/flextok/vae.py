"""KL autoencoder with the diffusers `AutoencoderKL` layout (parameter names and shapes), so the
official FlexTok VAEs (c4/c8/c16, f8) load by name. Written here: diffusers is not a dependency.

    encoder.conv_in, encoder.down_blocks.{i}.resnets.{j}.{norm1,conv1,norm2,conv2,conv_shortcut},
    encoder.down_blocks.{i}.downsamplers.0.conv, encoder.mid_block.{resnets,attentions},
    encoder.conv_norm_out, encoder.conv_out, quant_conv, post_quant_conv, decoder.* (mirrored,
    up_blocks.{i}.upsamplers.0.conv).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modality_tokenizers.base import load_neural_tokenizer, register_tokenizer, save_neural_tokenizer


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = group_norm(c_out, groups), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class SpatialAttention(nn.Module):
    """Single-head self-attention over all H*W positions (diffusers mid-block attention)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = group_norm(channels, groups)
        self.to_q, self.to_k, self.to_v = (nn.Linear(channels, channels) for _ in range(3))
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        out = F.scaled_dot_product_attention(self.to_q(tokens)[:, None], self.to_k(tokens)[:, None], self.to_v(tokens)[:, None])
        out = self.to_out[0](out[:, 0]).transpose(1, 2).reshape(b, c, h, w)
        return x + out


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups), ResnetBlock(channels, channels, groups)])
        self.attentions = nn.ModuleList([SpatialAttention(channels, groups)])

    def forward(self, x: Tensor) -> Tensor:
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric pad, as diffusers


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Module):
    """One down or up block: resnets, then an optional resampler (named as in diffusers)."""

    def __init__(self, c_in: int, c_out: int, layers: int, groups: int, resample: str | None) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(c_in if i == 0 else c_out, c_out, groups) for i in range(layers))
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample(c_out)])
        elif resample == "up":
            self.upsamplers = nn.ModuleList([Upsample(c_out)])

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        for resampler in getattr(self, "downsamplers", []) or getattr(self, "upsamplers", []):
            x = resampler(x)
        return x


@dataclass(frozen=True)
class KLVAEConfig:
    """diffusers AutoencoderKL fields (the subset FlexTok's VAEs use)."""

    in_channels: int = 3
    latent_channels: int = 16
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_num_groups: int = 32
    kl_weight: float = 1e-6  # training only
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_out_channels", tuple(int(c) for c in self.block_out_channels))


class VAEEncoder(nn.Module):
    def __init__(self, cfg: KLVAEConfig) -> None:
        super().__init__()
        ch, g = cfg.block_out_channels, cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            Stage(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block, g, "down" if i < len(ch) - 1 else None) for i in range(len(ch))
        )
        self.mid_block = MidBlock(ch[-1], g)
        self.conv_norm_out = group_norm(ch[-1], g)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(x))))


class VAEDecoder(nn.Module):
    def __init__(self, cfg: KLVAEConfig) -> None:
        super().__init__()
        ch, g = tuple(reversed(cfg.block_out_channels)), cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.mid_block = MidBlock(ch[0], g)
        self.up_blocks = nn.ModuleList(
            Stage(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block + 1, g, "up" if i < len(ch) - 1 else None) for i in range(len(ch))
        )
        self.conv_norm_out = group_norm(ch[-1], g)
        self.conv_out = nn.Conv2d(ch[-1], cfg.in_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


@register_tokenizer("kl_vae")
class KLAutoencoder(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] <-> latents (B, C, H/f, W/f), f = 2**(len(blocks)-1).

    Not a discrete tokenizer: `encode` returns the posterior mean, `decode` the image. It is
    the first training stage of FlexTok at the official scale (`training_loss` below).
    """

    Config = KLVAEConfig
    vocab_size = 0
    max_tokens = 0

    def __init__(self, cfg: KLVAEConfig | None = None, **overrides) -> None:
        super().__init__()
        self.cfg = dataclasses.replace(cfg or KLVAEConfig(), **overrides)
        c = self.cfg.latent_channels
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(self.cfg.seed)
            self.encoder, self.decoder = VAEEncoder(self.cfg), VAEDecoder(self.cfg)
            self.quant_conv, self.post_quant_conv = nn.Conv2d(2 * c, 2 * c, 1), nn.Conv2d(c, c, 1)

    def posterior(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """-> mean, logvar, each (B, C, h, w)."""
        mean, logvar = self.quant_conv(self.encoder(images)).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, images: Tensor) -> Tensor:
        return self.posterior(images)[0]

    def decode(self, latents: Tensor, **_: object) -> Tensor:
        return self.decoder(self.post_quant_conv(latents))

    def training_loss(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, float]]:
        """L1 reconstruction of a posterior sample + kl_weight * KL(q || N(0, I))."""
        mean, logvar = self.posterior(x)
        eps = torch.randn(mean.shape, generator=generator).to(mean)
        recon = self.decode(mean + (0.5 * logvar).exp() * eps)
        rec = (recon - x).abs().mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3)).mean()
        loss = rec + self.cfg.kl_weight * kl
        return loss, {"loss": loss.item(), "l1": rec.item(), "kl": kl.item()}

    @torch.no_grad()
    def validation_metrics(self, x: Tensor) -> dict[str, float]:
        mse = (self.decode(self.encode(x)) - x).pow(2).flatten(1).mean(1).clamp(min=1e-10)
        return {"psnr": (10 * torch.log10(4.0 / mse)).mean().item()}

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        save_neural_tokenizer(self, folder, self.cfg)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "KLAutoencoder":
        return load_neural_tokenizer(cls, folder, lambda data: KLVAEConfig(**data))
