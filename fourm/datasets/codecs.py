"""Array encodings shared by the scenes generator, `pack`, `preview` and the tokenizers.

Normals PNG: uint8 = round(n * 127.5 + 127.5) per channel (x, y, z). A zero vector (background)
encodes as (128, 128, 128) and decodes back to exactly 0.
"""
from __future__ import annotations

import numpy as np


def encode_normals(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) float unit normals (0 for background) -> (H, W, 3) uint8."""
    return np.clip(np.round(normals * 127.5 + 127.5), 0, 255).astype(np.uint8)


def decode_normals(encoded: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) float32 unit normals; background (length < 0.5) -> 0."""
    normals = (encoded.astype(np.float32) - 127.5) / 127.5
    length = np.sqrt((normals * normals).sum(-1, keepdims=True))
    return np.where(length < 0.5, 0.0, normals / np.maximum(length, 1e-6)).astype(np.float32)

