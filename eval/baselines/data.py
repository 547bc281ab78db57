"""Raw aligned samples for the baselines: a whole split held in memory as tensors (the scenes
dataset at 64 x 64 is ~30 kB per sample), and seeded batches drawn from it.

Targets by task:  semseg -> uint8 class map (N, H, W);  depth -> float32 metres (N, 1, H, W), 0 = invalid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

TARGET_MODALITY = {"semseg": "semseg", "depth": "depth"}


@dataclass
class SplitTensors:
    rgb: torch.Tensor  # uint8 (N, 3, H, W)
    target: torch.Tensor  # uint8 (N, H, W) class map, or float32 (N, 1, H, W) depth
    keys: list[str]

    def __len__(self) -> int:
        return self.rgb.shape[0]


def load_split(source: str, task: str, resolution: int, max_samples: Optional[int] = None) -> SplitTensors:
    """Read `source` shards (a folder, glob or list, see `fourm.shards.list_shards`) into memory,
    resized to `resolution` x `resolution`. Raises ShardError naming shard and key on bad data."""
    from fourm.paths import resolve
    from fourm.shards import iter_samples, list_shards

    modality = TARGET_MODALITY[task]
    rgbs, targets, keys = [], [], []
    for sample in iter_samples(list_shards(resolve(source)), modalities=["rgb", modality]):
        if max_samples is not None and len(keys) >= max_samples:
            break
        rgbs.append(sample["rgb"][..., :3])
        targets.append(sample[modality])
        keys.append(sample["__key__"])
    if not keys:
        raise ValueError(f"{source}: no samples")
    rgb = torch.from_numpy(np.stack(rgbs)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
    if task == "semseg":
        target = torch.from_numpy(np.stack(targets).astype(np.uint8))  # (N, H, W)
    else:
        target = torch.from_numpy(np.stack(targets).astype(np.float32)).unsqueeze(1)  # (N, 1, H, W)
    return resize_split(SplitTensors(rgb, target, keys), resolution)


def resize_split(split: SplitTensors, resolution: int) -> SplitTensors:
    """RGB bilinear (antialiased), targets nearest: a class or a valid-depth mask is never blended."""
    if split.rgb.shape[-2:] == (resolution, resolution):
        return split
    size = (resolution, resolution)
    rgb = F.interpolate(split.rgb.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    rgb = rgb.round().clamp(0, 255).to(torch.uint8)
    if split.target.ndim == 3:
        target = F.interpolate(split.target[:, None].float(), size=size, mode="nearest")[:, 0].to(torch.uint8)
    else:
        target = F.interpolate(split.target, size=size, mode="nearest")
    return SplitTensors(rgb, target, split.keys)


def rgb_to_input(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, H, W) in [-1, 1], the repository's RGB convention."""
    return rgb.float() / 127.5 - 1.0


def training_batches(split: SplitTensors, batch_size: int, generator: torch.Generator,
                     hflip: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (rgb uint8 (B, 3, H, W), target) batches: shuffled epochs without replacement,
    each sample flipped left-right with probability 1/2 when `hflip`. Fully set by `generator`."""
    while True:
        order = torch.randperm(len(split), generator=generator)
        last_start = max(len(order) - batch_size, 0)  # drop the ragged tail (a split smaller than a batch: one batch)
        for start in range(0, last_start + 1, batch_size):
            index = order[start:start + batch_size]
            rgb, target = split.rgb[index], split.target[index]
            if hflip:
                flip = torch.rand(len(index), generator=generator) < 0.5
                rgb = torch.where(flip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
                target = torch.where(flip.view(-1, *[1] * (target.ndim - 1)), target.flip(-1), target)
            yield rgb, target
