"""Accumulators over a whole split: `update(pred, target)` per batch, `compute()` once.

Each meter keeps only additive statistics, so memory does not grow with the split, and its
result equals the pure function of `eval/metrics.py` applied to all batches at once (up to the
0.01 degree histogram resolution of the median angular error).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from eval.image_metrics import psnr, ssim
from eval.metrics import (ANGLE_THRESHOLDS_DEG, angular_errors_deg, class_confusion, confusion_matrix, depth_scores,
                          depth_stats, segmentation_scores)


class SegmentationMeter:
    """Sums confusion matrices; `compute()` -> miou, pixel_acc, per_class_iou (+ names, and with
    them `confusion`: the share of each true class's pixels given each class)."""

    def __init__(self, num_classes: int, ignore_index: Optional[int] = None,
                 class_names: Optional[Sequence[str]] = None):
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes, self.ignore_index, self.class_names = num_classes, ignore_index, class_names
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred, target: class maps long (B, H, W)."""
        self.confusion += confusion_matrix(pred.cpu(), target.cpu(), self.num_classes, self.ignore_index)

    def compute(self) -> dict:
        scores = segmentation_scores(self.confusion)
        if self.class_names is not None:
            scores["per_class_iou"] = dict(zip(self.class_names, scores["per_class_iou"]))
            scores["confusion"] = class_confusion(self.confusion, self.class_names)
        return scores


class DepthMeter:
    """Sums `depth_stats`; `compute()` -> abs_rel, rmse, delta1..3, valid_pixels."""

    def __init__(self, align: str = "none"):
        self.align = align
        self.stats: dict = {}

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> None:
        """pred, target: depth float (B, 1, H, W) in metres, 0 in target = no ground truth."""
        batch = depth_stats(pred.cpu(), target.cpu(), None if valid is None else valid.cpu(), self.align)
        for k, v in batch.items():
            self.stats[k] = self.stats.get(k, 0.0) + v

    def compute(self) -> dict:
        return depth_scores(self.stats or {"count": 0.0, "abs_rel": 0.0, "sq_err": 0.0,
                                           "delta1": 0.0, "delta2": 0.0, "delta3": 0.0})


class NormalsMeter:
    """Angular errors into a 0.01-degree histogram (exact mean and threshold percentages,
    median to within one bin); `compute()` -> the keys of `metrics.normals_scores`."""

    BIN_DEG = 0.01

    def __init__(self):
        self.bins = int(round(180.0 / self.BIN_DEG))
        self.histogram = torch.zeros(self.bins, dtype=torch.float64)
        self.total, self.count = 0.0, 0
        self.within = {thr: 0 for thr in ANGLE_THRESHOLDS_DEG}

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> None:
        """pred, target: normals float (B, 3, H, W); valid: optional bool (B, H, W)."""
        errors = angular_errors_deg(pred.cpu(), target.cpu(), None if valid is None else valid.cpu())  # (N,)
        index = (errors / self.BIN_DEG).long().clamp(0, self.bins - 1)
        self.histogram += torch.bincount(index, minlength=self.bins).double()
        self.total += float(errors.sum())
        self.count += errors.numel()
        for thr in self.within:
            self.within[thr] += int((errors < thr).sum())

    def _median(self) -> float:
        """Lower median (the ceil(N/2)-th smallest error), as the centre of the histogram bin
        that holds it: within half a bin of the exact value."""
        rank = (self.count + 1) // 2
        b = int(torch.searchsorted(self.histogram.cumsum(0), torch.tensor(float(rank), dtype=torch.float64)))
        return (b + 0.5) * self.BIN_DEG

    def compute(self) -> dict:
        n = self.count
        scores = {"mean_angle": self.total / n if n else None, "median_angle": self._median() if n else None}
        for thr, k in self.within.items():
            scores[f"within_{thr:g}"] = 100.0 * k / n if n else None
        scores["valid_pixels"] = n
        return scores


class ReconstructionMeter:
    """Mean per-image PSNR (dB) and SSIM over all images seen."""

    def __init__(self, data_range: float = 2.0):
        self.data_range = data_range
        self.psnr_sum = self.ssim_sum = 0.0
        self.images = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred, target: images float (B, C, H, W) in a range of width `data_range`."""
        pred, target = pred.cpu(), target.cpu()
        self.psnr_sum += float(psnr(pred, target, self.data_range).sum())
        self.ssim_sum += float(ssim(pred, target, self.data_range).sum())
        self.images += pred.shape[0]

    def compute(self) -> dict:
        n = self.images
        return {"psnr": self.psnr_sum / n if n else None, "ssim": self.ssim_sum / n if n else None, "images": n}
