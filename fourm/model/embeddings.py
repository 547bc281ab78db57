"""Per-modality input embeddings and output heads, chosen by the modality's kind.

image_grid: token + fixed 2D sin-cos position of the grid cell + learned modality embedding
image_patches: linear map of the patch's pixels + 2D position of its cell + modality (inputs only)
image_seq:  token + fixed 1D sin-cos position (index in the ordered sequence) + modality embedding
text:       token + fixed 1D sin-cos position + modality embedding

Decoder queries are a learned mask token + position + (decoder) modality embedding; a causally
decoded modality instead feeds the embedding of the previous target token (teacher forcing),
with the mask token standing in for the first one.
"""
from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange
from torch import nn

from fourm.model.appearance import AppearanceEmbedding
from fourm.model.patch_stem import ConvPatchStem
from fourm.modalities import ModalitySpec


GRID_KINDS = ("image_grid", "image_patches")  # laid out on a 2D grid of cells over the image


def sincos(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sin-cos embedding (len(positions), dim) of (possibly fractional) positions."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.to(torch.float64)[:, None] * omega[None]  # (length, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_1d(length: int, dim: int) -> torch.Tensor:
    """Fixed sin-cos table (length, dim) of positions 0..length-1."""
    return sincos(torch.arange(length), dim)


def cell_centres(cells: int, units: float = 0.0) -> torch.Tensor:
    """Centres of `cells` equal cells along one image side, measured in 1/units of the side: (cells,).
    Cells of an 8x8 semseg grid and a 16x16 RGB grid over the same pixels get nearby positions,
    so cross-modal attention can find the aligned cell; with units 8 an 8x8 grid sits at 0..7.
    units 0: the cell indices 0..cells-1 whatever the grid (models saved before units existed)."""
    if units <= 0:
        return torch.arange(cells, dtype=torch.float64)
    return (torch.arange(cells, dtype=torch.float64) + 0.5) * units / cells - 0.5


def sincos_2d(height: int, width: int, dim: int, units: float = 0.0) -> torch.Tensor:
    """Fixed 2D sin-cos table (height * width, dim), row-major: half the channels encode the row."""
    rows = sincos(cell_centres(height, units), dim // 2)  # (H, D/2)
    cols = sincos(cell_centres(width, units), dim // 2)  # (W, D/2)
    table = torch.cat([rows[:, None].expand(-1, width, -1), cols[None].expand(height, -1, -1)], dim=-1)
    return rearrange(table, "h w d -> (h w) d")


def grid_cell_centres(specs: Sequence[ModalitySpec]) -> torch.Tensor:
    """(M, P, 2): (row, col) centre of each grid modality's cell p in image sides (NaN for other
    kinds and past the grid), P = the largest max_tokens; the distances of the cross-attention bias."""
    table = torch.full((len(specs), max(s.max_tokens for s in specs), 2), float("nan"))
    for m, spec in enumerate(specs):
        if spec.kind in GRID_KINDS:
            h, w = spec.grid_size
            rows, cols = (cell_centres(h, 1.0) + 0.5).float(), (cell_centres(w, 1.0) + 0.5).float()
            table[m, : h * w] = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1).reshape(h * w, 2)
    return table


def position_table(spec: ModalitySpec, dim: int, text_positions: int, grid_units: float) -> torch.Tensor:
    """The fixed position table of one modality, chosen by kind."""
    if spec.kind in GRID_KINDS:
        return sincos_2d(spec.grid_size[0], spec.grid_size[1], dim, grid_units)
    if spec.kind == "image_seq":
        return sincos_1d(spec.max_tokens, dim)
    return sincos_1d(spec.max_tokens * text_positions, dim)


def patch_embedding(spec: ModalitySpec, dim: int, stem: str) -> nn.Module:
    """The embedding of one pixel patch: 'linear' (4M's) or 'conv' (fourm/model/patch_stem.py)."""
    if stem == "conv":
        return ConvPatchStem(spec.patch_size, dim)
    if stem != "linear":
        raise ValueError(f"patch_stem must be 'linear' or 'conv', got {stem!r}")
    return nn.Linear(spec.values_per_token, dim)


class ModalityEmbedding(nn.Module):
    """Token, position and modality embeddings of one modality, for encoder inputs and decoder queries."""

    def __init__(self, spec: ModalitySpec, dim: int, text_positions: int, causal: bool, grid_units: float,
                 appearance_features: int = 0, patch_stem: str = "linear"):
        super().__init__()
        self.name = spec.name
        self.vocab_size = spec.vocab_size
        self.causal = causal
        self.is_patches = spec.kind == "image_patches"
        # pixel patches: a linear map of the patch's values (4M's RGB input) or a small CNN; else a token table
        self.tokens = (patch_embedding(spec, dim, patch_stem) if self.is_patches
                       else nn.Embedding(spec.vocab_size, dim))
        # what each code draws (fourm/model/appearance.py); None: the learned token table alone
        self.appearance = AppearanceEmbedding(spec.vocab_size, appearance_features, dim) if appearance_features else None
        self.register_buffer("positions", position_table(spec, dim, text_positions, grid_units), persistent=False)
        self.encoder_modality = nn.Parameter(torch.zeros(dim))
        # decoder query parts; an input-only modality has none (every parameter must take part in a step)
        self.decoder_modality = None if self.is_patches else nn.Parameter(torch.zeros(dim))
        self.mask_token = None if self.is_patches else nn.Parameter(torch.zeros(dim))

    @property
    def num_positions(self) -> int:
        return self.positions.shape[0]

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, is_first: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder inputs (is_first None) or decoder queries. Called through forward so that
        ZeRO-3 gathers this module's own parameters."""
        return self.inputs(ids, positions) if is_first is None else self.queries(ids, positions, is_first)

    def inputs(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """ids, positions (n,) -> encoder input embeddings (n, D)."""
        return self.token_embedding(ids) + self.positions[positions] + self.encoder_modality

    def token_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (n,) -> (n, D): the learned row of each token, plus its code's appearance if any;
        pixel patches (n, values) in 0..255 -> their linear map."""
        if self.is_patches:
            return self.tokens(ids.to(self.encoder_modality.dtype) / 127.5 - 1.0)
        rows = self.tokens(ids)
        return rows if self.appearance is None else rows + self.appearance(ids)

    def queries(self, prev_ids: torch.Tensor, positions: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Decoder queries (n, D). prev_ids: the previous target token (used only if causal);
        is_first (n,) bool: no previous target token (the mask token stands in)."""
        if self.is_patches:
            raise ValueError(f"modality '{self.name}' is image_patches, an encoder input only, never a target")
        base = self.mask_token.expand(positions.shape[0], -1)
        if self.causal:
            teacher = self.token_embedding(prev_ids.clamp(0, self.vocab_size - 1))
            base = torch.where(is_first[:, None], base, teacher)
        return base + self.positions[positions] + self.decoder_modality
