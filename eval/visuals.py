"""Pictures of predictions: colourised depth, class maps and normals, labelled PNG grids and
line plots. Images here are numpy uint8 (H, W, 3); inputs may be numpy arrays or tensors
(one sample, no batch axis). Nothing is shown on screen; every writer saves atomically
(temp name, then rename), so a report never links a half-written file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np

# The colourisers live in fourm.visuals (fourm may not import eval); re-exported here.
from fourm.visuals import (_BASE_PALETTE, _font, _numpy, class_palette, colorize_classes, colorize_depth,  # noqa: F401
                           legend_image, normals_to_rgb, rgb_to_uint8, text_tile)

Tile = Union[np.ndarray, str, None]  # an image, a text (caption) tile, or an empty tile


def _save_png_atomic(image: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- tiles and grids

def _fit_tile(tile: Tile, size: tuple[int, int]) -> np.ndarray:
    """Any tile -> uint8 (H, W, 3) of `size`; images are scaled with nearest neighbour so class
    maps and pixels stay crisp."""
    from PIL import Image

    if tile is None:
        return np.full((*size, 3), 255, np.uint8)
    if isinstance(tile, str):
        return text_tile(tile, size)
    x = _numpy(tile)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.dtype != np.uint8 or x.shape[-1] != 3:
        raise ValueError(f"image tiles must be uint8 (H, W, 3) or (H, W), got {x.dtype} {x.shape} "
                         "(colourise depth/classes/normals first)")
    if x.shape[:2] != size:
        x = np.asarray(Image.fromarray(x).resize((size[1], size[0]), Image.NEAREST))
    return x


def make_grid(rows: Sequence[Sequence[Tile]], column_titles: Sequence[str] = (),
              row_titles: Sequence[str] = (), tile_size: tuple[int, int] = (128, 128),
              pad: int = 4, label_height: int = 16) -> np.ndarray:
    """Rows x columns of tiles on white, uint8 (H, W, 3): titles above the columns (e.g.
    input / prediction / ground truth) and left of the rows (e.g. sample keys)."""
    from PIL import Image, ImageDraw

    n_rows, n_cols = len(rows), max((len(r) for r in rows), default=0)
    th, tw = tile_size
    left = 0 if not row_titles else max(60, 7 * max(len(t) for t in row_titles))
    top = label_height if column_titles else 0
    canvas = Image.new("RGB", (left + n_cols * (tw + pad) + pad, top + n_rows * (th + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(column_titles):
        draw.text((left + pad + j * (tw + pad), 2), str(title), fill="black", font=_font(label_height - 4))
    for i, row in enumerate(rows):
        y = top + pad + i * (th + pad)
        if i < len(row_titles):
            draw.text((2, y + th // 2 - 6), str(row_titles[i]), fill="black", font=_font(11))
        for j, tile in enumerate(row):
            canvas.paste(Image.fromarray(_fit_tile(tile, tile_size)), (left + pad + j * (tw + pad), y))
    return np.asarray(canvas)


def write_grid(path: str | Path, rows: Sequence[Sequence[Tile]], column_titles: Sequence[str] = (),
               row_titles: Sequence[str] = (), tile_size: tuple[int, int] = (128, 128)) -> Path:
    """`make_grid` saved as a PNG at `path` (atomically); returns the path."""
    return _save_png_atomic(make_grid(rows, column_titles, row_titles, tile_size), path)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Save one uint8 (H, W, 3) image as PNG, atomically."""
    return _save_png_atomic(np.asarray(image, dtype=np.uint8), path)


# ----------------------------------------------------------------------------- plots

def write_line_plot(path: str | Path, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    xlabel: str, ylabel: str, title: str = "", log_x: bool = False) -> Path:
    """A PNG line plot of named series {name: (xs, ys)}, e.g. PSNR vs token count with
    `log_x=True` for token counts 1, 2, 4, ... 256. Saved atomically; returns the path."""
    from matplotlib.figure import Figure  # a bare Figure: no global pyplot state, no display

    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.add_subplot()
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o", label=name)
    if log_x:
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 2, 4 ... rather than 2^0, 2^1 ...
        ticks = sorted({float(x) for xs, _ in series.values() for x in xs})
        if len(ticks) <= 12:
            ax.set_xticks(ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
