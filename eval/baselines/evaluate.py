"""Run a trained U-Net baseline over a split: predictions, metrics, and a picture of examples."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from eval.baselines.data import SplitTensors, rgb_to_input


@torch.no_grad()
def predict(model: torch.nn.Module, rgb: torch.Tensor, task: str) -> torch.Tensor:
    """rgb float (B, 3, H, W) in [-1, 1] -> semseg: class map long (B, H, W);
    depth: metres float (B, 1, H, W) (the network outputs log depth)."""
    out = model(rgb.to(next(model.parameters()).dtype))  # (B, C, H, W)
    return out.argmax(1) if task == "semseg" else out.float().exp()


@torch.no_grad()
def evaluate_split(model: torch.nn.Module, split: SplitTensors, task: str, num_classes: Optional[int] = None,
                   class_names: Optional[Sequence[str]] = None, batch_size: int = 64,
                   device: str | torch.device = "cpu") -> dict:
    """Metrics of `model` on every sample of `split`: semseg -> miou, pixel_acc, per_class_iou;
    depth -> abs_rel, rmse, delta1..3 (valid pixels, GT > 0). Pooled over all pixels of the split."""
    from eval.meters import DepthMeter, SegmentationMeter

    was_training = model.training
    model.eval()
    meter = SegmentationMeter(num_classes, class_names=class_names) if task == "semseg" else DepthMeter()
    for start in range(0, len(split), batch_size):
        rgb = rgb_to_input(split.rgb[start:start + batch_size]).to(device)
        pred = predict(model, rgb, task).cpu()
        meter.update(pred, split.target[start:start + batch_size].long() if task == "semseg" else split.target[start:start + batch_size])
    model.train(was_training)
    return {**meter.compute(), "samples": len(split)}


@torch.no_grad()
def write_examples(path: str | Path, model: torch.nn.Module, split: SplitTensors, task: str, count: int,
                   class_names: Optional[Sequence[str]] = None, device: str | torch.device = "cpu") -> Path:
    """PNG grid of the first `count` samples: input | prediction | ground truth (+ a legend for semseg)."""
    from eval.visuals import class_palette, colorize_classes, colorize_depth, legend_image, write_grid

    was_training = model.training
    model.eval()
    count = min(count, len(split))
    pred = predict(model, rgb_to_input(split.rgb[:count]).to(device), task).cpu()
    model.train(was_training)
    if task == "semseg":
        palette = class_palette(len(class_names) if class_names else int(max(pred.max(), split.target[:count].max())) + 1)
    rows = []
    for i in range(count):
        rgb = split.rgb[i].permute(1, 2, 0).numpy()  # (H, W, 3) uint8
        if task == "semseg":
            rows.append([rgb, colorize_classes(pred[i], palette), colorize_classes(split.target[i], palette)])
        else:
            gt = split.target[i, 0]  # (H, W) metres
            valid = gt > 0
            lo, hi = (float(gt[valid].min()), float(gt[valid].max())) if valid.any() else (None, None)
            rows.append([rgb, colorize_depth(pred[i, 0], lo, hi, valid=valid), colorize_depth(gt, lo, hi)])
    if task == "semseg" and class_names:
        rows.append([legend_image(class_names, palette, width=128, min_height=128)])
    return write_grid(path, rows, ["input", "prediction", "ground truth"], [k[-8:] for k in split.keys[:count]])
