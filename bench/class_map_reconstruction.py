"""How much of each object a class-map tokenizer (colorseg, semseg) keeps through encode -> decode:
pixel accuracy is mostly floor, so this scores the objects alone.

    object IoU:    per object of the raw map (labels >= --first-object), the IoU of its pixels
                   with the decoded map's pixels of the same label, averaged over objects
    kept:          share of objects whose label still covers >= half their pixels after decoding
    small IoU:     object IoU over objects of under 50 pixels

    PYTHONPATH=. .venv/bin/python bench/class_map_reconstruction.py --tokenizer runs/tokenizers/colorseg \
        [--modality colorseg] [--split data/scenes/val] [--samples 200]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def object_scores(raw: np.ndarray, decoded: np.ndarray, first_object: int) -> list[tuple[int, float, bool]]:
    """(pixels, IoU, kept) per object label of one raw map (H, W) against its decoding (H, W)."""
    out = []
    for label in np.unique(raw):
        if label < first_object:
            continue
        truth, made = raw == label, decoded == label
        overlap = (truth & made).sum()
        out.append((int(truth.sum()), float(overlap / (truth | made).sum()), bool(overlap * 2 >= truth.sum())))
    return out


@torch.no_grad()
def reconstruction(tokenizer_dir: str, modality: str, split: str, samples: int, first_object: int) -> dict:
    from eval.context import encode_values, read_samples, raw_key
    from fourm.generation.outputs import decode_tokens
    from fourm.modalities import load_registry
    from modality_tokenizers import load_tokenizer

    spec = load_registry([modality])[modality]
    tokenizer = load_tokenizer(tokenizer_dir)
    rows, _ = read_samples(split, samples)
    scores = []
    for start in range(0, len(rows), 32):
        raw = [np.asarray(s[raw_key(spec)], dtype=np.int64) for s in rows[start:start + 32]]
        decoded = decode_tokens(spec, tokenizer, encode_values(spec, tokenizer, raw))
        for r, d in zip(raw, decoded):
            scores += object_scores(r, d, first_object)
    small = [iou for pixels, iou, _ in scores if pixels < 50]
    return {"objects": len(scores), "object_iou": float(np.mean([s[1] for s in scores])),
            "kept": float(np.mean([s[2] for s in scores])), "small_iou": float(np.mean(small)) if small else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default="runs/tokenizers/colorseg")
    parser.add_argument("--modality", default="colorseg")
    parser.add_argument("--split", default="data/scenes/val")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--first-object", type=int, default=2, help="labels below it (background, floor) are not objects")
    args = parser.parse_args()
    torch.set_num_threads(1)
    r = reconstruction(args.tokenizer, args.modality, args.split, args.samples, args.first_object)
    print(f"{args.tokenizer}: {r['objects']} objects, object IoU {r['object_iou']:.3f}, kept {r['kept']:.3f}, "
          f"objects under 50 px IoU {r['small_iou']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
