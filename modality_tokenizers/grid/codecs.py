"""Codecs: how one kind of raw map enters the network and how the network's output becomes a loss
and a decoded map again. Chosen by the raw data kind (`image_rgb`, `depth_map`, `class_map`,
`normal_map`), never by a modality name.

Each codec has `in_channels`, `out_channels` and
    features(x) -> (B, in_channels, H, W)     network input built from a raw batch
    loss(out, x) -> (scalar, {name: float})   out (B, out_channels, H, W) against the raw batch
    to_batch(out) -> raw batch                 decoded map in the raw tensor convention
    appearance(out) -> (B, C, H, W)            a soft, bounded view of the output (probabilities,
                                               not argmax) that describes what a code draws
    content(x) -> (B, C, H, W)                 the same view of a raw batch (one-hot classes, ...)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` where `mask` is true (same shape); 0 if nothing is valid."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def _regression(pred: Tensor, target: Tensor, kind: str, delta: float) -> Tensor:
    """Elementwise robust regression loss."""
    if kind == "l1":
        return (pred - target).abs()
    return F.huber_loss(pred, target, reduction="none", delta=delta)


class DepthCodec(nn.Module):
    """Metric depth (B, 1, H, W), 0 = invalid. The network sees normalised log-depth
    (log d - mean) / std plus a validity channel, and predicts both; `to_batch` returns metres."""

    in_channels = 2
    out_channels = 2  # normalised log-depth, validity logit

    def __init__(self, log_mean: float, log_std: float, loss: str, delta: float, valid_weight: float) -> None:
        super().__init__()
        self.log_mean, self.log_std = log_mean, log_std
        self.loss_kind, self.delta, self.valid_weight = loss, delta, valid_weight

    def normalise(self, depth: Tensor) -> tuple[Tensor, Tensor]:
        valid = depth > 0  # (B, 1, H, W)
        norm = (torch.log(depth.clamp(min=1e-6)) - self.log_mean) / self.log_std
        return torch.where(valid, norm, torch.zeros_like(norm)), valid

    def features(self, x: Tensor) -> Tensor:
        norm, valid = self.normalise(x.float())
        return torch.cat([norm, valid.float()], 1)  # (B, 2, H, W)

    def loss(self, out: Tensor, x: Tensor) -> tuple[Tensor, dict]:
        norm, valid = self.normalise(x.float())
        rec = _masked_mean(_regression(out[:, :1], norm, self.loss_kind, self.delta), valid)
        bce = F.binary_cross_entropy_with_logits(out[:, 1:], valid.float())
        pred = self.to_batch(out.detach())
        abs_rel = _masked_mean((pred - x).abs() / x.clamp(min=1e-6), valid & (pred > 0))
        return rec + self.valid_weight * bce, {"rec": rec.item(), "valid_bce": bce.item(), "abs_rel": abs_rel.item()}

    def to_batch(self, out: Tensor) -> Tensor:
        depth = torch.exp(out[:, :1].float() * self.log_std + self.log_mean)
        return torch.where(out[:, 1:] > 0, depth, torch.zeros_like(depth))  # (B, 1, H, W) metres

    def appearance(self, out: Tensor) -> Tensor:
        return torch.cat([out[:, :1].float(), out[:, 1:].float().sigmoid()], 1)  # log-depth, P(valid)

    def content(self, x: Tensor) -> Tensor:
        return self.features(x)  # normalised log-depth, valid


class ClassMapCodec(nn.Module):
    """Class-index maps (B, H, W) long. Input through a class embedding, output logits, cross-entropy."""

    out_channels: int

    def __init__(self, num_classes: int, embed_dim: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.in_channels = embed_dim
        self.out_channels = num_classes
        self.label_smoothing = label_smoothing

    def _check(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"class maps must be (B, H, W) class indices, got shape {tuple(x.shape)}")
        x = x.long()
        if x.numel() and (x.min() < 0 or x.max() >= self.num_classes):
            raise ValueError(f"class index {int(x.max())} outside 0..{self.num_classes - 1} (config num_classes={self.num_classes})")
        return x

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self._check(x)).permute(0, 3, 1, 2)  # (B, E, H, W)

    def loss(self, out: Tensor, x: Tensor) -> tuple[Tensor, dict]:
        x = self._check(x)
        ce = F.cross_entropy(out.float(), x, label_smoothing=self.label_smoothing)
        acc = (out.argmax(1) == x).float().mean()
        return ce, {"ce": ce.item(), "pixel_acc": acc.item()}

    def to_batch(self, out: Tensor) -> Tensor:
        return out.argmax(1)  # (B, H, W) long

    def appearance(self, out: Tensor) -> Tensor:
        return out.float().softmax(1)  # (B, num_classes, H, W) class probabilities

    def content(self, x: Tensor) -> Tensor:
        return F.one_hot(self._check(x), self.num_classes).permute(0, 3, 1, 2).float()


class NormalCodec(nn.Module):
    """Unit normals (B, 3, H, W), zero vectors = invalid. Cosine + L1 loss on valid pixels, plus a
    validity logit; `to_batch` returns unit normals and zeros where predicted invalid."""

    in_channels = 4
    out_channels = 4

    def __init__(self, valid_weight: float) -> None:
        super().__init__()
        self.valid_weight = valid_weight

    @staticmethod
    def _valid(x: Tensor) -> Tensor:
        # Unit vectors are valid; zero (or near-zero, e.g. a PNG background of 128s) is not.
        return x.float().norm(dim=1, keepdim=True) > 0.5  # (B, 1, H, W)

    def features(self, x: Tensor) -> Tensor:
        valid = self._valid(x)
        return torch.cat([torch.where(valid, x.float(), torch.zeros_like(x, dtype=torch.float32)), valid.float()], 1)

    def loss(self, out: Tensor, x: Tensor) -> tuple[Tensor, dict]:
        valid = self._valid(x)
        pred = F.normalize(out[:, :3].float(), dim=1)
        cos = (pred * x.float()).sum(1, keepdim=True)
        cos_loss = _masked_mean(1 - cos, valid)
        l1 = _masked_mean((pred - x.float()).abs().mean(1, keepdim=True), valid)
        bce = F.binary_cross_entropy_with_logits(out[:, 3:], valid.float())
        angle = _masked_mean(torch.rad2deg(torch.acos(cos.detach().clamp(-1, 1))), valid)
        return cos_loss + l1 + self.valid_weight * bce, {"cos": cos_loss.item(), "l1": l1.item(), "angle_deg": angle.item()}

    def to_batch(self, out: Tensor) -> Tensor:
        normals = F.normalize(out[:, :3].float(), dim=1)
        return torch.where(out[:, 3:] > 0, normals, torch.zeros_like(normals))

    def appearance(self, out: Tensor) -> Tensor:
        return torch.cat([F.normalize(out[:, :3].float(), dim=1), out[:, 3:].float().sigmoid()], 1)

    def content(self, x: Tensor) -> Tensor:
        return self.features(x)  # normals (0 where invalid), valid


class RGBCodec(nn.Module):
    """RGB in [-1, 1] (B, 3, H, W) with an L1 + MSE loss (a baseline; FlexTok is the RGB tokenizer)."""

    in_channels = 3
    out_channels = 3

    def features(self, x: Tensor) -> Tensor:
        return x.float()

    def loss(self, out: Tensor, x: Tensor) -> tuple[Tensor, dict]:
        l1 = (out.float() - x).abs().mean()
        mse = F.mse_loss(out.float(), x)
        return l1 + mse, {"l1": l1.item(), "mse": mse.item()}

    def to_batch(self, out: Tensor) -> Tensor:
        return out.float().clamp(-1, 1)

    def appearance(self, out: Tensor) -> Tensor:
        return self.to_batch(out)

    def content(self, x: Tensor) -> Tensor:
        return x.float()


def build_codec(cfg) -> nn.Module:
    """The codec for `cfg.data` (a GridTokenizer.Config)."""
    if cfg.data == "depth_map":
        return DepthCodec(cfg.depth_log_mean, cfg.depth_log_std, cfg.regression_loss, cfg.huber_delta, cfg.valid_weight)
    if cfg.data == "class_map":
        return ClassMapCodec(cfg.num_classes, cfg.class_embed_dim, cfg.label_smoothing)
    if cfg.data == "normal_map":
        return NormalCodec(cfg.valid_weight)
    if cfg.data == "image_rgb":
        return RGBCodec()
    raise ValueError(f"grid tokenizer: no codec for raw data kind {cfg.data!r}")
