"""Convert raw decoded samples (numpy arrays from shards) into the tensor conventions of
`modality_tokenizers.base`, and back. Dispatch is on the kind of raw data, never a modality name."""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

RawData = Literal["image_rgb", "depth_map", "class_map", "normal_map", "text"]
RAW_DATA_KINDS: tuple[str, ...] = ("image_rgb", "depth_map", "class_map", "normal_map", "text")


def _stack(arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"{what}: samples in one batch have different shapes {sorted(shapes)}")
    return np.stack(arrays)


def to_tensor(data: str, arrays: Sequence) -> torch.Tensor | list[str]:
    """Stack a list of raw samples into a batch tensor.

    image_rgb uint8 (H, W, 3) -> float (B, 3, H, W) in [-1, 1]
    depth_map float (H, W)    -> float (B, 1, H, W)
    class_map int (H, W)      -> long (B, H, W)
    normal_map uint8 (H, W, 3) encoded n*127.5+127.5, or float (H, W, 3) -> float (B, 3, H, W);
               vectors shorter than 0.5 (background, stored as 128,128,128) become exactly 0
    text str                  -> list[str]
    """
    if data == "text":
        return [str(a) for a in arrays]
    x = _stack([np.asarray(a) for a in arrays], data)
    if data == "image_rgb":
        return torch.from_numpy(x).float().permute(0, 3, 1, 2) / 127.5 - 1.0
    if data == "depth_map":
        return torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    if data == "class_map":
        return torch.from_numpy(x.astype(np.int64))
    if data == "normal_map":
        if x.dtype == np.uint8:
            n = torch.from_numpy(x).float() / 127.5 - 1.0
        else:
            n = torch.from_numpy(x.astype(np.float32))
        n = torch.where(n.norm(dim=-1, keepdim=True) < 0.5, 0.0, n)
        return n.permute(0, 3, 1, 2)
    raise ValueError(f"unknown raw data kind {data!r} (known: {', '.join(RAW_DATA_KINDS)})")


def to_numpy(data: str, batch: torch.Tensor | list[str]) -> list:
    """Inverse of `to_tensor`: a batch back into a list of raw numpy samples (or strings)."""
    if data == "text":
        return list(batch)
    x = batch.detach().cpu()
    if data == "image_rgb":
        return list(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    if data == "depth_map":
        return list(x[:, 0].float().numpy())
    if data == "class_map":
        return list(x.to(torch.uint8).numpy())
    if data == "normal_map":
        return list(x.float().permute(0, 2, 3, 1).numpy())
    raise ValueError(f"unknown raw data kind {data!r} (known: {', '.join(RAW_DATA_KINDS)})")
