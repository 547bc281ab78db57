"""Rectified flow: x_t = t * noise + (1 - t) * x0, velocity v = noise - x0, t = 1 is pure noise.

Sampling integrates Euler from t = 1 to 0 (x <- x - v / T), as the official MinRF pipeline,
with classifier-free guidance and optional norm guidance (APG, arXiv 2410.02416).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

# velocity_fn(x (B, C, H, W), t (B,), null (bool)) -> v (B, C, H, W)
VelocityFn = Callable[[Tensor, Tensor, bool], Tensor]


def sample_logit_normal_t(batch: int, mean: float, std: float, generator: torch.Generator | None = None) -> Tensor:
    """(B,) t = sigmoid(N(mean, std)): most samples at mid noise levels (SD3 / official recipe)."""
    return torch.sigmoid(mean + std * torch.randn(batch, generator=generator))


def add_noise(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return t * noise + (1.0 - t) * x0


def velocity_from_x0(x_t: Tensor, x0_hat: Tensor, t: Tensor, min_t: float) -> Tensor:
    """v = (x_t - x0_hat) / t, with t clamped at min_t so the division stays bounded near t = 0."""
    t = t.clamp(min=min_t).view(-1, *([1] * (x_t.dim() - 1)))
    return (x_t - x0_hat) / t


@dataclass
class GuidanceConfig:
    scale: float = 1.0  # 1.0 = no guidance (one forward pass per step)
    norm_guidance: bool = False  # APG: clip and keep only the component orthogonal to v_cond
    norm_threshold: float = 2.5  # official defaults
    momentum: float = -0.5
    eta: float = 0.0


def _per_sample_dims(x: Tensor) -> list[int]:
    return list(range(1, x.dim()))


def adaptive_projected_guidance(v_cond: Tensor, v_uncond: Tensor, g: GuidanceConfig, running: Tensor | None) -> tuple[Tensor, Tensor]:
    """APG: momentum-averaged difference, norm-clipped, split into parts parallel/orthogonal to v_cond."""
    diff = v_cond - v_uncond
    if running is not None:
        diff = diff + g.momentum * running
    running = diff  # the momentum average is kept before clipping, as in the APG paper
    dims = _per_sample_dims(diff)
    if g.norm_threshold > 0:
        norm = diff.norm(p=2, dim=dims, keepdim=True)
        diff = diff * torch.clamp(g.norm_threshold / norm.clamp(min=1e-12), max=1.0)
    unit = torch.nn.functional.normalize(v_cond.double().flatten(1), dim=1).view_as(v_cond)
    parallel = (diff.double() * unit).sum(dim=dims, keepdim=True) * unit
    orthogonal = diff.double() - parallel
    update = (orthogonal + g.eta * parallel).to(v_cond.dtype)
    return v_cond + (g.scale - 1.0) * update, running


def guided_velocity(fn: VelocityFn, x: Tensor, t: Tensor, g: GuidanceConfig, running: Tensor | None) -> tuple[Tensor, Tensor | None]:
    v_cond = fn(x, t, False)
    if g.scale == 1.0:
        return v_cond, running
    v_uncond = fn(x, t, True)
    if g.norm_guidance:
        return adaptive_projected_guidance(v_cond, v_uncond, g, running)
    return v_uncond + g.scale * (v_cond - v_uncond), running


@torch.no_grad()
def euler_sample(fn: VelocityFn, noise: Tensor, steps: int, guidance: GuidanceConfig | None = None) -> Tensor:
    """Integrate from x_1 = noise (B, C, H, W) to x_0 in `steps` Euler steps at t = k/steps."""
    g = guidance or GuidanceConfig()
    x, running = noise, None
    for k in range(steps, 0, -1):
        t = torch.full((x.shape[0],), k / steps, device=x.device)
        v, running = guided_velocity(fn, x, t, g, running)
        x = x - v / steps
    return x
