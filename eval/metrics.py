"""Dense-prediction metrics as pure functions on tensors (no model, no I/O).

Conventions follow `modality_tokenizers.raw.to_tensor`:
    class maps  long (B, H, W)          depth  float (B, 1, H, W) metres, 0 = invalid
    normals     float (B, 3, H, W)      rgb    float (B, 3, H, W) in [-1, 1]
Every metric pools over all valid pixels of the batch (not a mean of per-image means), so the
additive statistics (`*_stats`) of several batches can be summed and scored once: that is
what the meters in `eval/meters.py` do for a whole validation split.

Values come back as plain Python floats (JSON-ready); a score with nothing to average over is
None, never NaN. Reconstruction metrics (PSNR, SSIM) live in `eval/image_metrics.py`.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

DELTA_THRESHOLDS = (1.25, 1.25 ** 2, 1.25 ** 3)
ANGLE_THRESHOLDS_DEG = (11.25, 22.5, 30.0)


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den > 0 else None


# ----------------------------------------------------------------------------- segmentation

def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: Optional[int] = None) -> torch.Tensor:
    """Confusion counts, long (C, C): entry [t, p] = pixels of true class t predicted as p.

    pred, target: integer class maps of the same shape, e.g. (B, H, W). Pixels whose target is
    `ignore_index` are left out. Any other value outside [0, C) is an error (a wrong num_classes
    or an unconverted colour image), not something to drop silently.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, x in (("target", target), ("pred", pred)):
        if x.numel() and (x.min() < 0 or x.max() >= num_classes):
            raise ValueError(f"{name} holds class {int(x.min() if x.min() < 0 else x.max())}, "
                             f"outside [0, {num_classes}) (num_classes={num_classes})")
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_scores(confusion: torch.Tensor) -> dict:
    """Scores from a confusion matrix (C, C) (rows = truth, columns = prediction).

    per_class_iou[c] = TP / (TP + FP + FN); None for a class absent from both prediction and
        ground truth (its IoU is undefined, and counting it as 0 or 1 would bias the mean).
    miou      = mean of the defined per-class IoUs (same as torchmetrics' macro Jaccard index).
    pixel_acc = correctly classified pixels / all counted pixels.
    """
    confusion = confusion.double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    per_class = [_ratio(t, u) for t, u in zip(tp.tolist(), union.tolist())]
    defined = [v for v in per_class if v is not None]
    return {
        "miou": sum(defined) / len(defined) if defined else None,
        "pixel_acc": _ratio(tp.sum(), confusion.sum()),
        "per_class_iou": per_class,
    }


def class_confusion(confusion: torch.Tensor, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Confusion (C, C) as shares per true class: {true name: {predicted name: share of that class's
    pixels}}, each row summing to 1; classes absent from the ground truth are left out. Tells which
    class a model takes an object for, where per-class IoU only says that it is wrong."""
    rows = {}
    for t, name in enumerate(class_names):
        total = float(confusion[t].sum())
        if total > 0:
            rows[name] = {p: float(confusion[t, j]) / total for j, p in enumerate(class_names)}
    return rows


def segmentation_metrics(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                         ignore_index: Optional[int] = None) -> dict:
    """mIoU, pixel accuracy and per-class IoU of class maps pred, target (B, H, W); see
    `segmentation_scores`."""
    return segmentation_scores(confusion_matrix(pred, target, num_classes, ignore_index))


# ----------------------------------------------------------------------------- depth

def median_scale(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """pred rescaled per image so its median over valid pixels equals the target's: for
    predictions known only up to scale (e.g. a depth tokenizer that normalises each map).
    Shapes (B, ...); images without valid pixels are left as they are."""
    scaled = pred.clone()
    for i in range(pred.shape[0]):
        if valid[i].any():
            ratio = target[i][valid[i]].median() / pred[i][valid[i]].median().clamp_min(1e-8)
            scaled[i] = pred[i] * ratio
    return scaled


def depth_stats(pred: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor] = None,
                align: str = "none") -> dict:
    """Additive depth statistics over valid pixels (sum these over batches, then `depth_scores`).

    pred, target: float depth in metres, same shape, batch first, e.g. (B, 1, H, W).
    valid: optional bool mask of that shape; pixels count only where it is True AND target > 0
        (0 marks no ground truth) and target is finite.
    align: "none" (metric depth) or "median" (per-image median scaling, see `median_scale`).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.double(), target.double()
    mask = (target > 0) & torch.isfinite(target)
    if valid is not None:
        mask &= valid.bool()
    if align == "median":
        pred = median_scale(pred, target, mask)
    elif align != "none":
        raise ValueError(f"align must be 'none' or 'median', got {align!r}")
    p, t = pred[mask].clamp_min(1e-6), target[mask]  # a non-positive prediction is a large error, not a crash
    ratio = torch.maximum(p / t, t / p)
    stats = {"count": float(t.numel()), "abs_rel": float(((p - t).abs() / t).sum()),
             "sq_err": float(((p - t) ** 2).sum())}
    for k, thr in enumerate(DELTA_THRESHOLDS, start=1):
        stats[f"delta{k}"] = float((ratio < thr).sum())
    return stats


def depth_scores(stats: dict) -> dict:
    """abs_rel = mean |p - t| / t;  rmse = sqrt(mean (p - t)^2) in metres;
    delta1/2/3 = fraction of pixels with max(p/t, t/p) < 1.25, 1.25^2, 1.25^3;
    valid_pixels = how many pixels were scored. None where no pixel was valid."""
    n = stats["count"]
    scores = {"abs_rel": _ratio(stats["abs_rel"], n),
              "rmse": math.sqrt(stats["sq_err"] / n) if n > 0 else None}
    for k in range(1, len(DELTA_THRESHOLDS) + 1):
        scores[f"delta{k}"] = _ratio(stats[f"delta{k}"], n)
    scores["valid_pixels"] = int(n)
    return scores


def depth_metrics(pred: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor] = None,
                  align: str = "none") -> dict:
    """abs-rel, RMSE and delta accuracies of one batch (B, 1, H, W); see `depth_stats`."""
    return depth_scores(depth_stats(pred, target, valid, align))


# ----------------------------------------------------------------------------- surface normals

def valid_normals_mask(normals: torch.Tensor) -> torch.Tensor:
    """bool (B, H, W): pixels whose ground-truth normal (B, 3, H, W) has length > 0.5.

    Background is the zero vector, which decodes from a uint8 PNG either to exactly 0 or (with
    the scenes' (128, 128, 128) encoding) to a vector of length ~0.007: both fall below 0.5."""
    return normals.norm(dim=1) > 0.5


def angular_errors_deg(pred: torch.Tensor, target: torch.Tensor,
                       valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Angle in degrees between predicted and true normals, float (N,) over valid pixels.

    pred, target: (B, 3, H, W); pred need not be unit length (it is normalised here).
    valid: optional bool (B, H, W), combined with `valid_normals_mask(target)`."""
    if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
        raise ValueError(f"normals must both be (B, 3, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}")
    mask = valid_normals_mask(target)
    if valid is not None:
        mask &= valid.bool()
    p = torch.nn.functional.normalize(pred.double(), dim=1, eps=1e-8)
    t = torch.nn.functional.normalize(target.double(), dim=1, eps=1e-8)
    cos = (p * t).sum(1)[mask].clamp(-1.0, 1.0)  # (N,)
    return torch.rad2deg(torch.acos(cos))


def normals_scores(errors_deg: torch.Tensor) -> dict:
    """From angular errors (N,) in degrees: mean, median (the lower median for even N) and the
    percentage of pixels within 11.25, 22.5 and 30 degrees. None where N = 0."""
    n = errors_deg.numel()
    scores = {"mean_angle": float(errors_deg.mean()) if n else None,
              "median_angle": float(errors_deg.median()) if n else None}
    for thr in ANGLE_THRESHOLDS_DEG:
        scores[f"within_{thr:g}"] = 100.0 * float((errors_deg < thr).sum()) / n if n else None
    scores["valid_pixels"] = n
    return scores


def normals_metrics(pred: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> dict:
    """Angular error statistics of one batch of normals (B, 3, H, W); see `normals_scores`."""
    return normals_scores(angular_errors_deg(pred, target, valid))
