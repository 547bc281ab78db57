"""Turning logits into token ids: temperature schedules, top-k / top-p filtering, sampling.

All randomness comes from the `torch.Generator` passed in, so a seeded generator gives the same
tokens on every run. Temperature 0 means greedy (argmax), with no random draw at all.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch

TemperatureSchedule = Literal["constant", "linear", "cosine"]


def temperature_at(step: int, num_steps: int, start: float, schedule: TemperatureSchedule = "constant",
                   end: float = 0.0) -> float:
    """Temperature of step `step` (0-based) of `num_steps`: constant, or decaying from `start`
    at the first step towards `end` at the last (linear or half-cosine)."""
    if schedule == "constant" or num_steps <= 1:
        return start
    r = step / (num_steps - 1)  # 0 at the first step, 1 at the last
    if schedule == "linear":
        return start + (end - start) * r
    if schedule == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * r))
    raise ValueError(f"unknown temperature schedule {schedule!r} (known: constant, linear, cosine)")


def filter_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the `top_k` largest logits of the last axis, -inf elsewhere (0 or >= V: keep all)."""
    if top_k <= 0 or top_k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of tokens whose probability sums to >= top_p
    (the most likely token always stays). top_p >= 1 keeps all."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    mass_before = probs.cumsum(-1) - probs  # probability of the tokens ranked above each one
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_tokens(logits: torch.Tensor, temperature: float, generator: Optional[torch.Generator],
                  top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """logits (..., V) -> ids (...) long. Greedy at temperature 0, else a draw from the
    temperature-scaled, top-k / top-p filtered distribution."""
    logits = logits.float()
    if temperature <= 0.0:
        return logits.argmax(-1)
    logits = filter_top_p(filter_top_k(logits / temperature, top_k), top_p)
    probs = logits.softmax(-1).reshape(-1, logits.shape[-1])  # (n, V)
    ids = torch.multinomial(probs.to(draw_device(generator, probs.device)), 1, generator=generator)  # (n, 1)
    return ids.to(logits.device).view(logits.shape[:-1])


def draw_device(generator: Optional[torch.Generator], device: torch.device) -> torch.device:
    """Where a draw happens: on the generator's own device. A seeded CPU generator then gives
    the same draws whether the model runs on the CPU or a GPU (torch refuses a CPU generator
    for CUDA tensors)."""
    return generator.device if generator is not None else device


def uniform(shape: tuple[int, ...], generator: Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """U[0, 1) of `shape` on `device`, drawn on the generator's device."""
    return torch.rand(shape, generator=generator, device=draw_device(generator, device)).to(device)
