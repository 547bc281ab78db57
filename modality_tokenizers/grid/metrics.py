"""Reconstruction metrics of a grid tokenizer over a whole split, accumulated batch by batch:
mIoU for class maps, abs-rel / RMSE / delta<1.25 for depth, angular error for normals, PSNR for
RGB, and codebook usage (distinct codes / vocab) for all."""
from __future__ import annotations

import math

import torch
from torch import Tensor


class ReconstructionMeter:
    """`update(x, x_rec, ids)` per batch, then `result()` -> {name: float}."""

    def __init__(self, data: str, vocab_size: int, num_classes: int = 0) -> None:
        self.data, self.vocab_size, self.num_classes = data, vocab_size, num_classes
        self.code_counts = torch.zeros(vocab_size, dtype=torch.int64)
        self.sums: dict[str, float] = {}
        self.pixels = 0.0
        if data == "class_map":
            self.intersection = torch.zeros(num_classes, dtype=torch.float64)
            self.union = torch.zeros(num_classes, dtype=torch.float64)

    def _add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(value)

    def update(self, x: Tensor, x_rec: Tensor, ids: Tensor) -> None:
        """x, x_rec: raw batches (ground truth, reconstruction); ids (B, N) the tokens."""
        self.code_counts += torch.bincount(ids.reshape(-1).cpu(), minlength=self.vocab_size)
        x, x_rec = x.cpu(), x_rec.cpu()
        if self.data == "class_map":
            self._update_classes(x.long(), x_rec.long())
        elif self.data == "depth_map":
            valid = x > 0
            gt, pred = x[valid].double(), x_rec[valid].double().clamp(min=1e-6)
            self._add("abs_rel", ((pred - gt).abs() / gt).sum())
            self._add("sq_err", ((pred - gt) ** 2).sum())
            self._add("delta1", (torch.maximum(pred / gt, gt / pred) < 1.25).sum())
            self._add("valid_px", valid.sum())
        elif self.data == "normal_map":
            valid = x.float().norm(dim=1) > 0.5  # (B, H, W): unit normals; zero / PNG background not
            cos = (x * x_rec).sum(1).clamp(-1, 1)[valid].double()
            self._add("angle_deg", torch.rad2deg(torch.acos(cos)).sum())
            self._add("valid_px", valid.sum())
        else:  # image_rgb in [-1, 1]
            self._add("sq_err", ((x - x_rec) ** 2).double().sum())
            self._add("values", x.numel())

    def _update_classes(self, x: Tensor, x_rec: Tensor) -> None:
        for c in range(self.num_classes):
            gt, pred = x == c, x_rec == c
            self.intersection[c] += (gt & pred).sum()
            self.union[c] += (gt | pred).sum()
        self._add("correct_px", (x == x_rec).sum())
        self._add("px", x.numel())

    def result(self) -> dict:
        used = int((self.code_counts > 0).sum())
        probs = self.code_counts.double() / self.code_counts.sum().clamp(min=1)
        entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum().item()
        out = {"codebook_usage": used / self.vocab_size, "codes_used": used, "code_perplexity": math.exp(entropy)}
        s = self.sums
        if self.data == "class_map":
            present = self.union > 0  # classes absent from both maps do not count
            iou = self.intersection[present] / self.union[present]
            out.update(miou=iou.mean().item(), pixel_acc=s["correct_px"] / s["px"])
        elif self.data == "depth_map":
            n = max(s.get("valid_px", 0.0), 1.0)
            out.update(abs_rel=s.get("abs_rel", 0.0) / n, rmse=math.sqrt(s.get("sq_err", 0.0) / n), delta1=s.get("delta1", 0.0) / n)
        elif self.data == "normal_map":
            out.update(angle_deg=s.get("angle_deg", 0.0) / max(s.get("valid_px", 0.0), 1.0))
        else:
            mse = s.get("sq_err", 0.0) / max(s.get("values", 0.0), 1.0)
            out.update(psnr=10 * math.log10(4.0 / max(mse, 1e-12)))  # range [-1, 1] has peak-to-peak 2
        return out


@torch.no_grad()
def evaluate_reconstruction(tokenizer, batches) -> dict:
    """Encode and decode every batch (raw tensors) and return the split's metrics."""
    cfg = tokenizer.config
    meter = ReconstructionMeter(cfg.data, tokenizer.vocab_size, cfg.num_classes)
    tokenizer.eval()
    for x in batches:
        ids = tokenizer.encode(x)
        meter.update(x, tokenizer.decode(ids), ids)
    return meter.result()
