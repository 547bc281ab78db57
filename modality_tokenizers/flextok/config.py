"""FlexTok configuration: one frozen dataclass whose docstring is the documentation, plus size presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FlexTokConfig:
    """Everything that builds a FlexTok model. All fields have defaults; `PRESETS` below names the sizes.

    Images are (B, 3, H, W) in [-1, 1]. With `vae="none"` the tokenizer works in pixel space
    (the "latent" is the image itself, C=3); with `vae="kl"` a KL autoencoder (diffusers
    AutoencoderKL layout) first maps the image to a (C=vae_latent_channels, H/f, W/f) latent.
    """

    # --- input ---------------------------------------------------------------------------
    image_size: int = 64  # training / default decode resolution in pixels
    vae: Literal["none", "kl"] = "none"  # "none": pixel space (tiny images); "kl": KL-VAE latents
    vae_latent_channels: int = 16  # official VAEs: 4, 8 or 16
    vae_block_channels: tuple[int, ...] = (128, 256, 512, 512)  # diffusers block_out_channels
    vae_layers_per_block: int = 2
    vae_norm_groups: int = 32  # diffusers norm_num_groups
    # A trained kl_vae tokenizer folder (`fourm tokenizer train`, model.type kl_vae) whose weights
    # initialise the frozen VAE of a new model. A saved FlexTok holds the VAE weights itself, so
    # loading one never reads this folder.
    vae_init: str = ""
    vae_scaling_factor: float = 1.0  # latents are multiplied by this after encoding
    vae_shift_factor: float = 0.0  # ... after subtracting this
    patch_size: int = 8  # patch side on the (latent) grid; keep patch_dim <= widths
    # --- encoder -------------------------------------------------------------------------
    enc_width: int = 192
    enc_depth: int = 2
    num_registers: int = 32  # = max tokens per image
    # --- quantiser -----------------------------------------------------------------------
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)  # vocab = prod(levels)
    # --- decoder -------------------------------------------------------------------------
    dec_width: int = 192
    dec_depth: int = 2
    head_dim: int = 64  # official: 64 (num_heads = width // head_dim)
    mlp_ratio: float = 4.0  # SwiGLU hidden = int(2/3 * mlp_ratio * width), as the official code
    head_adaln: bool = True  # adaLN (shift, scale) in the decoder's output head
    time_freq_dim: int = 256  # sinusoidal timestep features
    time_max_period: float = 256.0  # official TimestepEmbedder default
    time_scale: float = 1000.0  # t in [0, 1] is multiplied by this before the sinusoids
    # --- training recipe -----------------------------------------------------------------
    nested_dropout: bool = True  # keep first k registers, k a power of two; off -> all tokens
    # Warm-up: nested dropout starts at this training step (all registers kept before), so that the
    # tokens carry the image before they are ordered (README: the CPU recipe). 0: from the start.
    nested_dropout_start: int = 0
    null_cond_prob: float = 0.1  # registers -> learned null condition (enables CFG)
    prediction: Literal["x0", "velocity"] = "x0"  # what the decoder head outputs
    x0_min_t: float = 0.05  # v = (x_t - x0_hat) / max(t, x0_min_t) for x0 prediction
    t_logit_mean: float = 0.0  # t = sigmoid(N(mean, std)): logit-normal
    t_logit_std: float = 1.0
    # Fraction of training samples drawn at t = 1 (pure noise): there the tokens are the decoder's only
    # information, so the x0 head learns to read them as an autoencoder would (see README: CPU recipe).
    pure_noise_prob: float = 0.0
    repa_weight: float = 0.0  # REPA off by default (no pretrained features at CPU scale)
    repa_layer: int = 1  # decoder block whose patch tokens are aligned (1-based)
    repa_feature_dim: int = 64  # width of the frozen random conv feature net
    # --- inference defaults ----------------------------------------------------------------
    sample_steps: int = 25
    guidance_scale: float = 1.0
    norm_guidance: bool = False  # APG (arXiv 2410.02416) instead of plain CFG
    seed: int = 0  # parameter init seed

    def __post_init__(self) -> None:
        # YAML gives lists; keep tuples so the frozen config stays hashable and comparable.
        for name in ("fsq_levels", "vae_block_channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("enc_width", "dec_width"):
            if getattr(self, name) % self.head_dim:
                raise ValueError(f"FlexTok config: {name}={getattr(self, name)} not divisible by head_dim={self.head_dim}")
        if self.latent_size % self.patch_size:
            raise ValueError(f"FlexTok config: latent grid {self.latent_size} not divisible by patch_size {self.patch_size}")
        if self.prediction not in ("x0", "velocity"):
            raise ValueError(f"FlexTok config: prediction must be 'x0' or 'velocity', got {self.prediction!r}")

    @property
    def latent_channels(self) -> int:
        return 3 if self.vae == "none" else self.vae_latent_channels

    @property
    def downsample(self) -> int:
        return 1 if self.vae == "none" else 2 ** (len(self.vae_block_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def patch_dim(self) -> int:
        return self.latent_channels * self.patch_size**2

    @property
    def grid_size(self) -> int:
        return self.latent_size // self.patch_size

    @property
    def vocab_size(self) -> int:
        size = 1
        for level in self.fsq_levels:
            size *= level
        return size

    def replace(self, **changes) -> "FlexTokConfig":
        return dataclasses.replace(self, **changes)


_PIX = dict(vae="none")
_KL = dict(vae="kl", vae_latent_channels=16, patch_size=2, num_registers=256, image_size=256)

# name: one-liner. micro for tests, tiny for CPU training, the rest follow the official sizes
# (width = 64 x depth, head dim 64, 256 registers, c16 KL-VAE f8, latent patch 2).
PRESETS: dict[str, FlexTokConfig] = {
    "micro":   FlexTokConfig(**_PIX, image_size=16, patch_size=4, enc_width=32, enc_depth=1, dec_width=32, dec_depth=1, head_dim=16, num_registers=8, time_freq_dim=32, repa_feature_dim=16),
    "tiny":    FlexTokConfig(**_PIX, image_size=32, patch_size=4, enc_width=128, enc_depth=2, dec_width=128, dec_depth=2, head_dim=32, num_registers=32, fsq_levels=(8, 5, 5, 5), t_logit_mean=0.5, pure_noise_prob=0.5, nested_dropout_start=2000),
    "d12-d12": FlexTokConfig(**_KL, enc_width=768, enc_depth=12, dec_width=768, dec_depth=12),
    "d18-d18": FlexTokConfig(**_KL, enc_width=1152, enc_depth=18, dec_width=1152, dec_depth=18),
    "d18-d28": FlexTokConfig(**_KL, enc_width=1152, enc_depth=18, dec_width=1792, dec_depth=28),
}


def preset(name: str, **overrides) -> FlexTokConfig:
    """A size preset, optionally with fields replaced: `preset("tiny", num_registers=64)`."""
    if name not in PRESETS:
        raise KeyError(f"unknown FlexTok preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name].replace(**overrides)
