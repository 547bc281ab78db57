"""A contact sheet of a shard dataset: one row per sample,
RGB | depth (turbo, black = invalid) | semseg (fixed palette) | normals | caption."""
from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np

from fourm.datasets.codecs import decode_normals
from fourm.shards import MANIFEST_NAME, ReadStats, iter_samples, list_shards

log = logging.getLogger(__name__)

COLUMNS = ("rgb", "depth", "semseg", "normals", "caption")
# Class colours: background black, floor gray, then distinct hues (indices past the list cycle).
CLASS_COLORS = np.array([
    (0, 0, 0), (150, 150, 150), (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0),
], dtype=np.uint8)


def colorize_classes(class_map: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8."""
    return CLASS_COLORS[class_map.astype(np.int64) % len(CLASS_COLORS)]


def colorize_depth(depth: np.ndarray) -> tuple[np.ndarray, str]:
    """(H, W) metres (0 = invalid) -> (H, W, 3) float in [0, 1] and a 'near-far m' label."""
    from matplotlib import colormaps

    valid = depth > 0
    if not valid.any():
        return np.zeros(depth.shape + (3,)), "no valid depth"
    near, far = float(depth[valid].min()), float(depth[valid].max())
    scaled = (depth - near) / max(far - near, 1e-6)
    rgb = colormaps["turbo"](np.clip(scaled, 0, 1))[..., :3]
    rgb[~valid] = 0.0
    return rgb, f"{near:.1f}-{far:.1f} m"


def _sample_folder(data_dir: Path, split: str) -> Path:
    return data_dir / split if (data_dir / split).is_dir() else data_dir


def _class_names(data_dir: Path) -> list[str]:
    path = data_dir / MANIFEST_NAME
    return json.loads(path.read_text()).get("class_names", []) if path.is_file() else []


def _draw_cell(ax, column: str, value, fontsize: float) -> None:
    ax.set_axis_off()
    if value is None:
        ax.text(0.5, 0.5, "(missing)", ha="center", va="center", fontsize=fontsize, color="gray")
    elif column == "caption":
        ax.text(0.0, 1.0, textwrap.fill(value, width=46), ha="left", va="top", fontsize=fontsize, wrap=True)
    elif column == "depth":
        image, label = colorize_depth(value)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(label, fontsize=fontsize - 1, pad=2)
    elif column == "semseg":
        ax.imshow(colorize_classes(value), interpolation="nearest")
    elif column == "normals":
        normals = decode_normals(value) if value.dtype == np.uint8 else value
        valid = np.abs(normals).sum(-1, keepdims=True) > 0
        ax.imshow(np.where(valid, normals * 0.5 + 0.5, 0.0), interpolation="nearest")
    else:
        ax.imshow(value, interpolation="nearest")


def _legend(fig, class_names: list[str], present: set[int]) -> None:
    from matplotlib.patches import Patch

    def label(i: int) -> str:
        return class_names[i] if i < len(class_names) else f"class {i}"

    handles = [Patch(color=CLASS_COLORS[i % len(CLASS_COLORS)] / 255.0, label=label(i)) for i in sorted(present)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False, title="semseg classes")


def make_preview(data_dir: str | Path, out_path: str | Path, n: int = 6, split: str = "val") -> Path:
    """Draw the first `n` samples of DATA_DIR/<split> (or of DATA_DIR itself) to `out_path` (PNG)."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    data_dir = Path(data_dir)
    stats = ReadStats()
    samples = []
    for sample in iter_samples(list_shards(_sample_folder(data_dir, split)), modalities=None, on_error="skip", stats=stats):
        samples.append(sample)
        if len(samples) == n:
            break
    if not samples:
        raise ValueError(f"{data_dir}: no readable samples in split '{split}' ({stats})")
    columns = [c for c in COLUMNS if any(c in s for s in samples)]
    widths = [3.0 if c == "caption" else 1.0 for c in columns]
    fig = Figure(figsize=(1.9 * sum(widths), 2.0 * len(samples) + 0.8))
    axes = fig.subplots(len(samples), len(columns), gridspec_kw={"width_ratios": widths}, squeeze=False)
    present: set[int] = set()
    for row, sample in enumerate(samples):
        for col, column in enumerate(columns):
            _draw_cell(axes[row, col], column, sample.get(column), fontsize=9)
            if row == 0:
                title = f"depth\n{axes[row, col].get_title()}" if column == "depth" else column
                axes[row, col].set_title(title, fontsize=10, loc="left" if column == "caption" else "center")
        axes[row, 0].text(-0.05, 0.5, sample["__key__"], rotation=90, ha="right", va="center", fontsize=7,
                          transform=axes[row, 0].transAxes)
        if "semseg" in sample:
            present |= set(np.unique(sample["semseg"]).tolist())
    if "semseg" in columns:
        _legend(fig, _class_names(data_dir), present)
    fig.tight_layout(rect=(0.02, 0.06 if "semseg" in columns else 0.0, 1, 1))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    log.info("wrote preview of %d samples to %s", len(samples), out_path)
    return out_path
