"""Legends shown beside colourised outputs: class swatches for class maps, a colour bar in metres
for depth. Dispatch on spec.data. Each returns uint8 (H, W, 3) or None."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from fourm.modalities import ModalitySpec


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    """The 2nd/98th percentile of the valid depths: the range `fourm.visuals.colorize_depth` maps."""
    d = np.asarray(depth, dtype=np.float64).squeeze()
    valid = d[np.isfinite(d) & (d > 0)]
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(valid, [2, 98])
    return float(lo), float(hi)


def depth_colorbar(depth: np.ndarray, width: int = 256, height: int = 44) -> np.ndarray:
    """A horizontal colour bar of the depth colouring, labelled near/far in metres."""
    from PIL import Image, ImageDraw, ImageFont

    from fourm.visuals import colorize_depth

    lo, hi = depth_range(depth)
    ramp = np.linspace(lo, hi, width, dtype=np.float64)[None].repeat(16, 0)  # (16, width)
    bar = colorize_depth(np.maximum(ramp, 1e-6), vmin=lo, vmax=hi)  # (16, width, 3)
    img = Image.new("RGB", (width, height), "white")
    img.paste(Image.fromarray(bar), (0, 0))
    draw, font = ImageDraw.Draw(img), ImageFont.load_default(size=12)
    draw.text((2, 20), f"near {lo:.2f} m", fill="black", font=font)
    right = f"far {hi:.2f} m"
    draw.text((width - 2 - draw.textlength(right, font=font), 20), right, fill="black", font=font)
    return np.asarray(img)


def class_legend(class_map: np.ndarray, class_names: Sequence[str], palette=None) -> np.ndarray:
    """Swatches for every class the names list (or, without names, every index up to the largest
    present); with many classes (more than 12), only those present in the map."""
    from fourm.visuals import class_palette, legend_image

    names = list(class_names) or [f"class {k}" for k in range(int(np.max(class_map)) + 1)]
    colours = np.asarray(palette if palette is not None else class_palette(len(names)), dtype=np.uint8)
    if len(names) > 12:
        present = [k for k in np.unique(class_map).tolist() if 0 <= k < len(names)]
        return legend_image([names[k] for k in present], colours[present], indices=present)
    return legend_image(names, colours)


def legend_for(spec: ModalitySpec, value: Any, class_names: Sequence[str]) -> Optional[np.ndarray]:
    if spec.data == "class_map":
        return class_legend(np.asarray(value), spec.class_names or class_names, spec.palette or None)
    if spec.data == "depth_map":
        return depth_colorbar(np.asarray(value))
    return None


def side_by_side(images: Sequence[np.ndarray], gap: int = 16) -> Optional[np.ndarray]:
    """uint8 (H_i, W_i, 3) images -> one white uint8 (max H, sum W + gaps, 3), top-aligned; None if none."""
    if not images:
        return None
    height = max(img.shape[0] for img in images)
    width = sum(img.shape[1] for img in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for img in images:
        out[: img.shape[0], x: x + img.shape[1]] = img
        x += img.shape[1] + gap
    return out
