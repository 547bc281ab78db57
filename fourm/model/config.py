"""FourMConfig: everything that builds a FourM, saved beside its weights."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fourm.modalities import ModalitySpec


@dataclass(frozen=True)
class FourMConfig:
    """An encoder-decoder over the token sequences of several modalities.

    dim, encoder_depth, decoder_depth, heads: transformer size (see `presets.PRESETS`)
    modalities:     the modality specs the model embeds and predicts (kept whole, so a saved
                    model needs no registry to load)
    mlp_ratio:      SwiGLU hidden width = 2/3 * mlp_ratio * dim (rounded up to a multiple of 8)
    norm:           'layernorm' or 'rmsnorm' (pre-LN everywhere)
    qk_norm:        normalise queries and keys per head (stabler at scale)
    bias:           biases in linear layers and norms
    block_cross_modality: decoder self-attention stays within one modality (4M's default)
    causal_kinds:   kinds whose targets are decoded causally with teacher forcing (text; add
                    'image_seq' to decode FlexTok tokens left-to-right with the KV cache)
    text_positions: position-table length of text modalities, as a multiple of max_tokens
                    (span-masked targets carry sentinels and [EOS] on top of the words)
    init_std:       std of the normal init of linear weights (embeddings start at unit scale)
    grid_position_units: image_grid positions are cell centres measured in 1/units of the image
                    side, whatever the grid (8: an 8x8 grid's cells sit at 0..7). Larger values
                    space the cells further apart in the sin-cos table, so more of its
                    frequencies tell cells apart: 128 learned rgb -> semseg faster
                    (configs/train/tiny.yaml, README). 0: the cell indices 0..n-1 of each grid,
                    the default, as models saved before the field existed were trained
    grid_cross_bias: initial slope per decoder head of a distance bias in cross-attention between
                    image_grid queries and image_grid inputs: -slope * d^2 is added to the
                    attention logit, d the distance of the two cells' centres in image sides
                    (learned, kept >= 0). A head with a large slope reads the aligned cell from
                    the start instead of learning the alignment through positions; 0 leaves a
                    head global. Empty (default): no bias, as models saved before the field
                    existed were trained
    code_appearance: {modality: F}: image_grid modalities whose tokens are also embedded and
                    predicted through a fixed (vocab, F) table of what each code draws, taken from
                    their grid tokenizer when training starts (fourm/model/appearance.py). Empty
                    (default): learned tables only, as models saved before the field were trained
    patch_stem:     how image_patches inputs are embedded: 'linear' (4M's, the default, as models
                    saved before the field were trained) or 'conv', a small CNN per patch
                    (fourm/model/patch_stem.py) that tells shapes apart sooner (README)
    """

    dim: int
    encoder_depth: int
    decoder_depth: int
    heads: int
    modalities: tuple[ModalitySpec, ...]
    mlp_ratio: float = 4.0
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    qk_norm: bool = True
    bias: bool = False
    block_cross_modality: bool = True
    causal_kinds: tuple[str, ...] = ("text",)
    text_positions: int = 2
    init_std: float = 0.02
    grid_position_units: float = 0.0
    grid_cross_bias: tuple[float, ...] = ()
    code_appearance: dict[str, int] = field(default_factory=dict)
    patch_stem: Literal["linear", "conv"] = "linear"

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if (self.dim // self.heads) % 2:
            raise ValueError(f"head dim {self.dim // self.heads} must be even")
        if self.dim % 4:
            raise ValueError(f"dim {self.dim} must be a multiple of 4 (2D sin-cos positions)")
        if self.grid_position_units < 0:
            raise ValueError(f"grid_position_units must be >= 0, got {self.grid_position_units}")
        if self.grid_cross_bias and len(self.grid_cross_bias) != self.heads:
            raise ValueError(f"grid_cross_bias needs one slope per head ({self.heads}), got {len(self.grid_cross_bias)}")
        if any(v < 0 for v in self.grid_cross_bias):
            raise ValueError(f"grid_cross_bias slopes must be >= 0, got {list(self.grid_cross_bias)}")
        if not self.modalities:
            raise ValueError("a FourM needs at least one modality")
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"modalities listed twice: {names}")
        for name, features in self.code_appearance.items():
            if name not in names:
                raise ValueError(f"code_appearance: '{name}' is not one of the model's modalities {names}")
            if features < 1:
                raise ValueError(f"code_appearance: '{name}' needs a positive feature count, got {features}")
        bad = [k for k in self.causal_kinds if k not in ("text", "image_seq", "image_grid")]
        if bad:
            raise ValueError(f"causal_kinds: unknown kind {bad[0]!r}")

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def spec(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(f"the model has no modality '{name}' (has: {', '.join(self.modality_names)})")
