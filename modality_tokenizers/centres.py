"""Object centres: a label map's objects, one token each, at the grid cell of the object's centre.

A caption names objects one by one; a dense layout (colorseg) spreads each over many cells that a
sampler must fill consistently, and it often paints one object in the colours of two (README,
caption -> rgb). Here each object is a single token that holds its whole label (shape and colour)
and its apparent size, so generating a layout from a caption places objects, not cells; the dense
layout is then drawn around the placed centres (configs/generate/caption_to_centres_to_rgb.yaml).
Nothing is learned: this is the grid form of a detection annotation (centre, class, size bucket).

    tok = ObjectCentreTokenizer(ObjectCentreTokenizer.Config(image_size=64, grid=8, num_labels=34,
                                                             first_object_label=2, size_edges=[50, 150]))
    ids = tok.encode(label_maps)   # long (B, 64, 64) -> long (B, 64): 0 = no centre in the cell,
                                   # else 1 + (label - first_object_label) * sizes + size bucket
    maps = tok.decode(ids)         # -> long (B, 64, 64): a disc per object (its size bucket's radius)

An object is a 4-connected region of one label with at least `min_pixels` pixels (an object cut in
two by another in front counts twice). Two centres in one cell: the larger object keeps the cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from modality_tokenizers.base import ConfigOnlyTokenizer, register_tokenizer


@register_tokenizer("object_centres")
class ObjectCentreTokenizer(ConfigOnlyTokenizer):
    # The raw file (a label map) is what the modality is read from, not what it shows: its ground
    # truth in a picture is decode(encode(raw)), one disc per object (eval/quickstart_report.py).
    summarises_raw = True

    @dataclass(frozen=True)
    class Config:
        image_size: int
        grid: int
        num_labels: int            # of the label map, background and floor included
        first_object_label: int    # labels below it are not objects (background, floor)
        size_edges: list[int] = field(default_factory=lambda: [50, 150])  # object area (pixels) bucket edges
        min_pixels: int = 4        # smaller regions are not objects (a few pixels peeking out)
        # object labels enumerate a product of factors, the last fastest (scenes: 4 shapes x 8
        # colours); [] = one factor, the label itself. Only the code appearance table reads it.
        label_factors: list[int] = field(default_factory=list)
        # also one column per whole label: additive factor logits can only say "red or blue, cube
        # or sphere", scoring a red sphere as high as a captioned red cube and blue sphere; a
        # label's own column can say "red cube or blue sphere" (README: no measurable gain in
        # binding at 3,000 steps). Only the code appearance table reads it.
        joint_label: bool = False

        def __post_init__(self) -> None:
            if self.grid < 1 or self.image_size % self.grid:
                raise ValueError(f"object centres: image_size {self.image_size} must be a multiple of grid {self.grid}")
            if not 0 < self.first_object_label < self.num_labels:
                raise ValueError(f"object centres: first_object_label must lie in 1..{self.num_labels - 1}, "
                                 f"got {self.first_object_label}")
            if list(self.size_edges) != sorted(set(self.size_edges)) or any(e < 1 for e in self.size_edges):
                raise ValueError(f"object centres: size_edges must be increasing positive areas, got {self.size_edges}")
            objects = self.num_labels - self.first_object_label
            if self.label_factors and int(np.prod(self.label_factors)) != objects:
                raise ValueError(f"object centres: label_factors {self.label_factors} multiply to "
                                 f"{int(np.prod(self.label_factors))}, not the {objects} object labels")

    def __init__(self, config: "ObjectCentreTokenizer.Config"):
        self.config = config
        self.grid = config.grid
        self.max_tokens = config.grid ** 2
        self.sizes = len(config.size_edges) + 1
        self.vocab_size = 1 + (config.num_labels - config.first_object_label) * self.sizes

    def object_id(self, label: int, bucket: int) -> int:
        """The id of an object of map label `label` in size bucket `bucket`."""
        return 1 + (label - self.config.first_object_label) * self.sizes + bucket

    def object_of(self, index: int) -> tuple[int, int]:
        """(map label, size bucket) of object id `index` >= 1."""
        label, bucket = divmod(index - 1, self.sizes)
        return label + self.config.first_object_label, bucket

    def encode(self, label_maps: torch.Tensor) -> torch.Tensor:
        """long (B, H, W), H = W = image_size -> long (B, grid * grid), cells in row-major order."""
        size = self.config.image_size
        if label_maps.dim() != 3 or tuple(label_maps.shape[-2:]) != (size, size):
            raise ValueError(f"object centres: expected label maps (B, {size}, {size}), got {tuple(label_maps.shape)}")
        return torch.from_numpy(np.stack([self._encode_one(m) for m in label_maps.cpu().numpy()]))

    def _encode_one(self, label_map: np.ndarray) -> np.ndarray:
        """(H, W) labels -> (grid * grid,) ids."""
        c, cell = self.config, self.config.image_size // self.config.grid
        ids, area_in_cell = np.zeros(self.max_tokens, dtype=np.int64), np.zeros(self.max_tokens, dtype=np.int64)
        for label in np.unique(label_map):
            if not c.first_object_label <= label < c.num_labels:
                continue
            regions, count = ndimage.label(label_map == label)
            for region in range(1, count + 1):
                ys, xs = np.nonzero(regions == region)
                if ys.size < c.min_pixels:
                    continue
                index = int(ys.mean()) // cell * c.grid + int(xs.mean()) // cell
                if ys.size > area_in_cell[index]:
                    area_in_cell[index] = ys.size
                    bucket = int(np.searchsorted(c.size_edges, ys.size, side="right"))
                    ids[index] = self.object_id(int(label), bucket)
        return ids

    def decode(self, ids: torch.Tensor, **_: object) -> torch.Tensor:
        """long (B, grid * grid) (or (B, grid, grid)) -> long (B, H, W): background (0) with a disc of
        each object's label at its cell's centre, of radius sqrt(area / pi) of its bucket's typical area."""
        c, cell = self.config, self.config.image_size // self.config.grid
        ids = ids.reshape(ids.shape[0], -1).cpu()
        if ids.shape[1] != self.max_tokens or (ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size)):
            raise ValueError(f"object centres: expected ids (B, {self.max_tokens}) in 0..{self.vocab_size - 1}, "
                             f"got {tuple(ids.shape)}")
        edges = [c.min_pixels, *c.size_edges]
        typical = [*(np.sqrt(a * b) for a, b in zip(edges, edges[1:])), 2 * edges[-1]]  # area per bucket
        yy, xx = np.mgrid[0:c.image_size, 0:c.image_size] + 0.5
        maps = np.zeros((ids.shape[0], c.image_size, c.image_size), dtype=np.int64)
        for b, index in zip(*np.nonzero(ids.numpy())):
            label, bucket = self.object_of(int(ids[b, index]))
            cy, cx = (index // c.grid + 0.5) * cell, (index % c.grid + 0.5) * cell
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= typical[bucket] / np.pi
            maps[b][disc] = label
        return torch.from_numpy(maps)

    def code_appearance(self) -> torch.Tensor:
        """(vocab_size, F): what each id says, factor by factor: [no object, one-hot of each label
        factor (shape, colour), with `joint_label` one-hot of the label, one-hot size bucket].
        With `model.code_appearance` FourM embeds and predicts ids through it (fourm/model/appearance.py), so what it learns of "green" in one
        id carries over to every green object, though each id occurs in few cells."""
        c = self.config
        labels = c.num_labels - c.first_object_label
        factors = list(c.label_factors) or [labels]
        joint = labels if c.joint_label and c.label_factors else 0  # without factors the label is the one factor
        table = torch.zeros(self.vocab_size, 1 + sum(factors) + joint + self.sizes)
        table[0, 0] = 1.0
        for index in range(1, self.vocab_size):
            label, bucket = self.object_of(index)
            offset = 1
            for size, digit in zip(factors, np.unravel_index(label - c.first_object_label, factors)):
                table[index, offset + int(digit)] = 1.0
                offset += size
            if joint:
                table[index, offset + label - c.first_object_label] = 1.0
                offset += joint
            table[index, offset + bucket] = 1.0
        return table

    @property
    def measured_appearance(self) -> torch.Tensor:
        """The table is exact (nothing to measure over data): see code_appearance."""
        return self.code_appearance()
