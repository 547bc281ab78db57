"""How much of the scene an RGB grid tokenizer keeps for segmentation: the U-Net judge (trained on
real images, `configs/baselines/unet_semseg.yaml`) segments the real val images and the same
images encoded and decoded by the tokenizer. FourM's rgb -> semseg reads those tokens, so the
judge's mIoU on the reconstructions is a rough ceiling for it (rough: the judge never saw
reconstructions in training, so the ceiling may be somewhat higher).

    PYTHONPATH=. .venv/bin/python bench/judge_on_reconstructions.py [--tokenizer runs/tokenizers/rgb_grid] \
        [--judge runs/baselines/unet_semseg] [--split data/scenes/val] [--samples 200]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@torch.no_grad()
def judge_scores(tokenizer_dir: str, judge_dir: str, split: str, samples: int, batch_size: int = 25) -> dict:
    """{'real': segmentation metrics, 'reconstructed': the same on tokenizer reconstructions}."""
    from eval.baselines.evaluate import predict
    from eval.baselines.train_unet import load_unet_baseline
    from eval.context import read_samples
    from eval.meters import SegmentationMeter
    from modality_tokenizers.base import load_tokenizer
    from modality_tokenizers.raw import to_tensor

    tokenizer = load_tokenizer(tokenizer_dir).eval()
    unet, _ = load_unet_baseline(judge_dir, "cpu")
    rows, manifest = read_samples(split, samples)
    names = manifest["class_names"]
    meters = {k: SegmentationMeter(len(names), class_names=names) for k in ("real", "reconstructed")}
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        truth = to_tensor("class_map", [r["semseg"] for r in batch])  # (B, H, W)
        real = to_tensor("image_rgb", [r["rgb"] for r in batch])  # (B, 3, H, W) in [-1, 1]
        recon = tokenizer.decode(tokenizer.encode(real)).clamp(-1, 1)  # (B, 3, H, W)
        for key, images in (("real", real), ("reconstructed", recon)):
            meters[key].update(predict(unet, images, "semseg").cpu(), truth)
    return {key: m.compute() for key, m in meters.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default="runs/tokenizers/rgb_grid")
    parser.add_argument("--judge", default="runs/baselines/unet_semseg")
    parser.add_argument("--split", default="data/scenes/val")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    result = judge_scores(args.tokenizer, args.judge, args.split, args.samples)
    for key, scores in result.items():
        per_class = ", ".join(f"{n} {v:.3f}" for n, v in scores["per_class_iou"].items())
        print(f"{key:>13}: mIoU {scores['miou']:.3f}, pixel acc {scores['pixel_acc']:.3f} ({per_class})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
