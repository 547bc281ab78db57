"""GridTokenizer: conv stem + ViT encoder -> FSQ -> ViT + conv decoder, giving an
(H/p) x (W/p) grid of token ids for any dense map kind (see `codecs.py`)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from modality_tokenizers.base import ModalityTokenizer, load_neural_tokenizer, register_tokenizer, save_neural_tokenizer
from modality_tokenizers.grid.appearance import decoded_appearance, load_appearance, measure_appearance, save_appearance
from modality_tokenizers.grid.codecs import build_codec
from modality_tokenizers.grid.layers import GridDecoder, GridEncoder, LocalGridEncoder
from modality_tokenizers.quantizers import FSQ


@dataclass(frozen=True)
class GridTokenizerConfig:
    """Everything that builds a grid tokenizer; saved beside its weights.

    data:            raw data kind of the maps: depth_map | class_map | normal_map | image_rgb
    image_size:      side of the (square) maps it takes, in pixels
    patch_size:      pixels per token side (power of two); grid = image_size / patch_size
    width, depth:    ViT width and encoder depth; decoder_depth for the decoder (-1: same as depth)
    local_encoder:   encode each patch from its own pixels only (per-token MLP blocks, no attention):
                     a cell's token then depends on that cell alone, which makes the tokens far
                     easier for FourM to predict (README); the decoder stays a ViT over the grid
    heads:           attention heads
    stem_channels:   channels of the conv stem / upsampling head (a multiple of 8)
    levels:          FSQ levels per code channel; vocab = prod(levels)
    num_classes:     class_map only: number of classes (indices 0..num_classes-1)
    class_embed_dim: class_map only: size of the input class embedding
    label_smoothing: class_map only
    depth_log_mean, depth_log_std: depth_map only: log-depth normalisation (log metres),
                     stored here so `decode` returns metric depth
    regression_loss: depth_map only: huber | l1 on normalised log-depth; huber_delta its delta
    valid_weight:    depth/normals: weight of the validity (BCE) loss
    """

    data: Literal["depth_map", "class_map", "normal_map", "image_rgb"]
    image_size: int = 64
    patch_size: int = 8
    width: int = 128
    depth: int = 2
    decoder_depth: int = -1
    local_encoder: bool = False
    heads: int = 4
    stem_channels: int = 64
    levels: tuple[int, ...] = (8, 5, 5, 5)
    num_classes: int = 0
    class_embed_dim: int = 16
    label_smoothing: float = 0.0
    depth_log_mean: float = 1.0
    depth_log_std: float = 0.5
    regression_loss: Literal["huber", "l1"] = "huber"
    huber_delta: float = 0.1
    valid_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        if self.stem_channels % 8:
            raise ValueError(f"stem_channels {self.stem_channels} must be a multiple of 8 (GroupNorm)")
        if self.data == "class_map" and self.num_classes < 2:
            raise ValueError("num_classes must be >= 2 for class_map data")
        if self.depth_log_std <= 0:
            raise ValueError(f"depth_log_std must be > 0, got {self.depth_log_std}")

    @property
    def grid_size(self) -> tuple[int, int]:
        side = self.image_size // self.patch_size
        return side, side


@register_tokenizer("grid")
class GridTokenizer(nn.Module, ModalityTokenizer):
    """encode: raw batch -> (B, h*w) token ids; decode: ids -> raw batch (row-major grid order)."""

    Config = GridTokenizerConfig

    def __init__(self, config: GridTokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.codec = build_codec(config)
        self.quantizer = FSQ(config.levels)
        grid = config.grid_size
        common = dict(stem_channels=config.stem_channels, width=config.width, heads=config.heads,
                      patch_size=config.patch_size)
        if config.local_encoder:
            self.encoder = LocalGridEncoder(self.codec.in_channels, config.width, config.depth, config.patch_size,
                                            code_dim=self.quantizer.dim)
        else:
            self.encoder = GridEncoder(self.codec.in_channels, depth=config.depth, num_tokens=grid[0] * grid[1],
                                       code_dim=self.quantizer.dim, **common)
        dec_depth = config.depth if config.decoder_depth < 0 else config.decoder_depth
        self.decoder = GridDecoder(self.codec.out_channels, depth=dec_depth, grid_size=grid,
                                   code_dim=self.quantizer.dim, **common)
        self.measured_appearance: Optional[tuple[Tensor, Tensor]] = None  # (table, seen), describe_codes

    # ------------------------------------------------------------------ protocol
    @property
    def vocab_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def max_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.config.grid_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_size(self, x: Tensor) -> None:
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"grid tokenizer expects {size}x{size} maps, got shape {tuple(x.shape)}")

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Raw batch -> (codes (B, N, d) straight-through, ids (B, N) int64)."""
        self._check_size(x)
        features = self.codec.features(x).to(self.decoder.pos.dtype)  # params may be bf16 under DeepSpeed
        return self.quantizer(self.encoder(features))

    @torch.no_grad()
    def encode(self, batch: Tensor) -> Tensor:
        """Raw batch (see modality_tokenizers.base) -> token ids (B, h*w) int64."""
        return self.quantize(batch.to(self.device))[1]

    @torch.no_grad()
    def decode(self, ids: Tensor) -> Tensor:
        """Token ids (B, h*w) (or (B, h, w)) -> raw batch in the convention of `config.data`."""
        ids = ids.reshape(ids.shape[0], -1).to(self.device)
        if ids.shape[1] != self.max_tokens:
            raise ValueError(f"expected {self.max_tokens} tokens per sample, got {ids.shape[1]}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        codes = self.quantizer.indices_to_codes(ids).to(self.decoder.pos.dtype)  # (B, N, d)
        return self.codec.to_batch(self.decoder(codes).float())

    def code_appearance(self) -> Tensor:
        """What each code draws, (vocab_size, F) (see appearance.py): measured over the training
        data if `describe_codes` ran (it is saved with the tokenizer), else decoded."""
        return self.measured_appearance[0] if self.measured_appearance is not None else decoded_appearance(self)

    def describe_codes(self, batches) -> dict:
        """Measure what each code draws over raw `batches`; kept, and saved by `save_pretrained`."""
        self.measured_appearance = measure_appearance(self, batches)
        seen = self.measured_appearance[1]
        return {"codes_seen": int(seen.sum()), "vocab_size": int(seen.numel())}

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Raw batch -> (network output (B, C_out, H, W), ids (B, N))."""
        codes, ids = self.quantize(x)
        return self.decoder(codes), ids

    def no_weight_decay(self) -> set:
        return {"encoder.pos", "decoder.pos"}

    # ------------------------------------------------------------------ training contract
    def training_loss(self, x: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, dict]:
        """Reconstruction loss of one raw batch; `generator` is unused (the model is deterministic)."""
        out, ids = self(x.to(self.device))
        loss, metrics = self.codec.loss(out.float(), x.to(self.device))  # losses in fp32 (params may be bf16)
        metrics["code_usage_batch"] = ids.unique().numel() / self.vocab_size
        return loss, metrics

    @torch.no_grad()
    def validation_metrics(self, x: Tensor) -> dict:
        """Loss terms and reconstruction metrics of one batch (means over the batch)."""
        loss, metrics = self.training_loss(x)
        return {"loss": loss.item(), **metrics}

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write model.safetensors + tokenizer_config.json; `from_pretrained(folder)` needs nothing else."""
        save_neural_tokenizer(self, folder, self.config)
        if self.measured_appearance is not None:
            save_appearance(folder, *self.measured_appearance)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "GridTokenizer":
        source = f"{folder}/tokenizer_config.json"
        tokenizer = load_neural_tokenizer(cls, folder, lambda data: config_from_dict(data, source=source))
        tokenizer.measured_appearance = load_appearance(folder)
        return tokenizer


def config_from_dict(data: dict, source: str = "<config>") -> GridTokenizerConfig:
    """Rebuild a config from saved JSON (lists back to tuples), naming unknown keys."""
    names = {f.name for f in dataclasses.fields(GridTokenizerConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{source}: unknown grid tokenizer config key '{unknown[0]}'")
    return GridTokenizerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
