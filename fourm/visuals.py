"""Pure colourisers for showing modalities as pictures: depth, class maps, normals, RGB and
text tiles, each -> numpy uint8 (H, W, 3). Inputs may be numpy arrays or tensors (one sample,
no batch axis). No file I/O here (eval.visuals writes grids and plots on top of these); fourm
code (generation outputs, the demo) uses them without importing eval/.
"""
from __future__ import annotations

import colorsys
import textwrap
from typing import Optional, Sequence

import numpy as np

# Hand-picked for contrast: background black, floor grey, then saturated distinct colours.
_BASE_PALETTE = [
    (0, 0, 0), (128, 128, 128), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25),
    (145, 30, 180), (70, 240, 240), (245, 130, 48), (240, 50, 230), (210, 245, 60), (0, 128, 128),
    (170, 110, 40), (128, 0, 0), (170, 255, 195), (0, 0, 128), (255, 215, 180), (128, 128, 0),
]


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


# ----------------------------------------------------------------------------- colourising

def colorize_depth(depth, vmin: Optional[float] = None, vmax: Optional[float] = None,
                   valid=None, cmap: str = "turbo_r") -> np.ndarray:
    """Depth (H, W) or (1, H, W) -> uint8 (H, W, 3); invalid pixels (depth <= 0, non-finite, or
    False in `valid`) are black. vmin/vmax default to the 2nd/98th percentile of the valid
    depths; pass the ground truth's range to show a prediction on the same scale.
    `turbo_r`: near is red, far is blue."""
    import matplotlib

    d = _numpy(depth).astype(np.float64).squeeze()
    if d.ndim != 2:
        raise ValueError(f"depth must be (H, W) or (1, H, W), got {_numpy(depth).shape}")
    mask = np.isfinite(d) & (d > 0)
    if valid is not None:
        mask &= _numpy(valid).astype(bool).reshape(d.shape)
    if mask.any():
        lo, hi = np.percentile(d[mask], [2, 98])
        vmin, vmax = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
    vmin, vmax = (0.0 if vmin is None else vmin), (1.0 if vmax is None else vmax)
    scaled = np.clip((np.nan_to_num(d) - vmin) / max(vmax - vmin, 1e-8), 0, 1)
    rgb = (matplotlib.colormaps[cmap](scaled)[..., :3] * 255).round().astype(np.uint8)
    rgb[~mask] = 0
    return rgb


def class_palette(num_classes: int) -> np.ndarray:
    """Fixed colours uint8 (num_classes, 3): class 0 black, class 1 grey, then distinct colours;
    past the hand-picked list, hues step by the golden ratio (deterministic, well spread)."""
    colours = list(_BASE_PALETTE[:num_classes])
    for k in range(len(colours), num_classes):
        r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.75, 0.95)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return np.array(colours, dtype=np.uint8).reshape(num_classes, 3)


def colorize_classes(class_map, palette: Optional[np.ndarray] = None, num_classes: int = 256) -> np.ndarray:
    """Class map (H, W) of integers -> uint8 (H, W, 3) through `palette` (default
    `class_palette(num_classes)`)."""
    c = _numpy(class_map).astype(np.int64)
    palette = class_palette(num_classes) if palette is None else np.asarray(palette, dtype=np.uint8)
    if c.min() < 0 or c.max() >= len(palette):
        raise ValueError(f"class map holds {c.min()}..{c.max()}, palette has {len(palette)} colours")
    return palette[c]


def legend_image(class_names: Sequence[str], palette: Optional[np.ndarray] = None,
                 swatch: int = 14, width: int = 160, min_height: int = 0,
                 indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """A white uint8 (H, width, 3) image listing each class: colour swatch, index and name;
    H fits the list, at least `min_height` (pass a grid's tile size to make it a tile).
    `indices`: the class index shown beside each name (default 0, 1, 2, ...)."""
    from PIL import Image, ImageDraw

    palette = class_palette(len(class_names)) if palette is None else palette
    row = swatch + 4
    img = Image.new("RGB", (width, max(min_height, row * len(class_names) + 4)), "white")
    draw = ImageDraw.Draw(img)
    for k, name in enumerate(class_names):
        y = 2 + k * row
        draw.rectangle([2, y, 2 + swatch, y + swatch], fill=tuple(int(v) for v in palette[k]), outline="black")
        index = k if indices is None else indices[k]
        draw.text((swatch + 8, y + 1), f"{index} {name}", fill="black", font=_font(swatch - 2))
    return np.asarray(img)


def normals_to_rgb(normals, channels_first: Optional[bool] = None) -> np.ndarray:
    """Unit normals (3, H, W) or (H, W, 3) in [-1, 1] -> uint8 (H, W, 3) = (n + 1) / 2 * 255;
    pixels whose normal is shorter than 0.5 (background) are black."""
    n = _numpy(normals).astype(np.float64)
    if channels_first is None:
        channels_first = n.shape[0] == 3 and n.shape[-1] != 3
    if channels_first:
        n = n.transpose(1, 2, 0)
    if n.ndim != 3 or n.shape[-1] != 3:
        raise ValueError(f"normals must be (3, H, W) or (H, W, 3), got {_numpy(normals).shape}")
    rgb = ((np.clip(n, -1, 1) + 1) * 127.5).round().astype(np.uint8)
    rgb[np.linalg.norm(n, axis=-1) < 0.5] = 0
    return rgb


def rgb_to_uint8(image) -> np.ndarray:
    """RGB float (3, H, W) in [-1, 1] (the raw tensor convention) or uint8 (H, W, 3) -> uint8 (H, W, 3)."""
    x = _numpy(image)
    if x.dtype == np.uint8:
        return x
    if x.ndim == 3 and x.shape[0] == 3:
        x = x.transpose(1, 2, 0)
    return ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)


def text_tile(text: str, size: tuple[int, int] = (128, 128), font_size: int = 10) -> np.ndarray:
    """White uint8 (H, W, 3) tile with `text` wrapped to its width (e.g. a caption); text that
    does not fit is cut with an ellipsis."""
    from PIL import Image, ImageDraw

    height, width = size
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    chars_per_line = max(4, int(width / (0.55 * font_size)))
    lines = textwrap.wrap(str(text), chars_per_line) or [""]
    max_lines = max(1, (height - 4) // (font_size + 2))
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, chars_per_line - 3)] + "..."
    for k, line in enumerate(lines):
        draw.text((3, 2 + k * (font_size + 2)), line, fill="black", font=_font(font_size))
    return np.asarray(img)
