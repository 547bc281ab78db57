"""What the layout step of a caption route drew: generated colorseg maps (`fourm generate` writes
<key>.colorseg.npy) against the raw val samples they were generated for.

    object px:        pixels of object labels per map (true: the sample's own colorseg)
    labels:           distinct object labels per map (true: distinct captioned objects)
    on captioned:     share of object pixels whose label (shape + colour) the caption names
    colour / shape:   share of the other object pixels that carry a captioned colour / shape
    drawn:            share of the caption's labels drawn with at least `--min-pixels` pixels

    PYTHONPATH=. .venv/bin/python bench/generated_layouts.py GEN_DIR [--split data/scenes/val] \
        [--samples 64] [--min-pixels 8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.layout_binding import FIRST_OBJECT_LABEL, captioned_labels  # noqa: E402


def layout_figures(generated: np.ndarray, sample: dict, min_pixels: int) -> dict[str, float]:
    """Figures of one generated (H, W) label map against its raw sample."""
    from fourm.datasets.scenes.world import COLORSEG_NAMES

    parts = {label: tuple(COLORSEG_NAMES[label].split()[::-1]) for label in range(FIRST_OBJECT_LABEL, len(COLORSEG_NAMES))}
    named = set(captioned_labels(sample))
    colours = {c for _, c in (parts[label] for label in named)}
    shapes = {s for s, _ in (parts[label] for label in named)}
    labels, counts = np.unique(generated[generated >= FIRST_OBJECT_LABEL], return_counts=True)
    pixels = dict(zip(labels.tolist(), counts.tolist()))
    total = sum(pixels.values())
    wrong = {label: n for label, n in pixels.items() if label not in named}
    wrong_total = sum(wrong.values())
    share = lambda n, d: n / d if d else float("nan")
    truth = np.asarray(sample["colorseg"])
    return {
        "object_px": total, "true_object_px": int((truth >= FIRST_OBJECT_LABEL).sum()),
        "labels": len(pixels), "true_labels": len(named),
        "on_captioned": share(total - wrong_total, total),
        "wrong_colour": share(sum(n for label, n in wrong.items() if parts[label][1] in colours), wrong_total),
        "wrong_shape": share(sum(n for label, n in wrong.items() if parts[label][0] in shapes), wrong_total),
        "drawn": share(sum(pixels.get(label, 0) >= min_pixels for label in named), len(named)),
    }


def generated_layouts(gen_dir: str, split: str, samples: int, min_pixels: int) -> dict[str, float]:
    """Mean figures over the raw samples that have a generated map in `gen_dir`."""
    from eval.context import read_samples

    rows, _ = read_samples(split, samples)
    figures = []
    for sample in rows:
        path = Path(gen_dir) / f"{Path(sample['__key__']).name}.colorseg.npy"
        if path.is_file():
            figures.append(layout_figures(np.load(path), sample, min_pixels))
    if not figures:
        raise FileNotFoundError(f"{gen_dir}: no <key>.colorseg.npy for the first {samples} samples of {split}")
    mean = {k: float(np.nanmean([f[k] for f in figures])) for k in figures[0]}
    return {"maps": len(figures), **mean}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gen_dir")
    parser.add_argument("--split", default="data/scenes/val")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--min-pixels", type=int, default=8)
    args = parser.parse_args()
    r = generated_layouts(args.gen_dir, args.split, args.samples, args.min_pixels)
    print(f"{r['maps']} maps: object px {r['object_px']:.0f} (true {r['true_object_px']:.0f}), "
          f"labels {r['labels']:.1f} (true {r['true_labels']:.1f}), on captioned labels {r['on_captioned']:.3f}; "
          f"of the rest, captioned colour {r['wrong_colour']:.3f}, captioned shape {r['wrong_shape']:.3f}; "
          f"captioned labels drawn (>= {args.min_pixels} px) {r['drawn']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
