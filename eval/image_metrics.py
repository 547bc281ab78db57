"""Reconstruction metrics for images: PSNR and SSIM, per image.

Images are float (B, C, H, W). The default `data_range=2.0` fits the repository's RGB
convention ([-1, 1], see `modality_tokenizers.raw.to_tensor`); pass 1.0 or 255.0 for others.
Both return one value per image (B,), so a caller can average, or plot per-image spread.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_PSNR_DB = 100.0  # identical images: cap instead of +inf, which JSON cannot hold


def _check_images(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"images must both be (B, C, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}")


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, float (B,): 10 log10(range^2 / MSE), the MSE
    over all channels and pixels of the image; capped at MAX_PSNR_DB for identical images."""
    _check_images(pred, target)
    mse = ((pred.double() - target.double()) ** 2).mean(dim=(1, 2, 3))  # (B,)
    floor = data_range ** 2 * 10 ** (-MAX_PSNR_DB / 10)
    return (10 * torch.log10(data_range ** 2 / mse.clamp_min(floor))).float()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1D Gaussian weights, float64 (size,)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return w / w.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0,
         window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image, float (B,) (Wang et al. 2004, Gaussian window).

    Local means, variances and covariance come from a separable Gaussian filter applied only
    where the window fits inside the image (no padding: the border of window//2 pixels is left
    out, as torchmetrics and scikit-image do); the SSIM map is averaged over pixels and channels.
    Images must be at least `window` pixels on each side.
    """
    _check_images(pred, target)
    b, c, h, w = pred.shape
    if h < window or w < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {h}x{w}")
    g = gaussian_window(window, sigma)
    kernel_h = g.view(1, 1, window, 1).expand(c, 1, window, 1)
    kernel_w = g.view(1, 1, 1, window).expand(c, 1, 1, window)

    def blur(x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H-window+1, W-window+1)
        return F.conv2d(F.conv2d(x, kernel_h, groups=c), kernel_w, groups=c)

    x, y = pred.double(), target.double()
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3)).float()


def reconstruction_metrics(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> dict:
    """Mean PSNR (dB) and SSIM over a batch of images (B, C, H, W), as floats."""
    return {"psnr": float(psnr(pred, target, data_range).mean()),
            "ssim": float(ssim(pred, target, data_range).mean())}
