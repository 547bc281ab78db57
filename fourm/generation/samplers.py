"""Sampler objects: `set_steps(...)` once, then `step(logits, ...)` per model call, each step
returning a small dataclass. The samplers never call the model; `fourm.generation.generate`
runs the model and hands them logits.

Parallel samplers (MaskGIT, ROAR) work on a whole target block of N tokens per sample:
    sampler.set_steps(steps, N, generator)
    for t in range(sampler.num_steps):
        query = sampler.query(done)                  # (B, N) bool: positions to get logits for
        out = sampler.step(logits, ids, done, generator)   # ParallelStep
The autoregressive sampler emits one token per sample per step (left to right).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch

from fourm.generation.sampling import TemperatureSchedule, sample_tokens, temperature_at, uniform

TokenSchedule = Literal["cosine", "linear"]


def tokens_per_step(num_tokens: int, num_steps: int, schedule: TokenSchedule) -> list[int]:
    """How many tokens each step decodes: every step at least one, all N by the last step.
    The masked fraction after step t is cos(pi/2 * (t+1)/T) (cosine) or 1 - (t+1)/T (linear)."""
    num_steps = max(1, min(num_steps, num_tokens))
    ratio = (lambda r: math.cos(math.pi / 2 * r)) if schedule == "cosine" else (lambda r: 1.0 - r)
    counts, decoded = [], 0
    for t in range(num_steps):
        steps_left = num_steps - t - 1
        target = num_tokens - math.floor(num_tokens * ratio((t + 1) / num_steps))
        target = max(target, decoded + 1)  # progress every step
        target = min(target, num_tokens - steps_left)  # leave one token for each later step
        counts.append(target - decoded)
        decoded = target
    return counts


@dataclass
class ParallelStep:
    ids: torch.Tensor  # (B, N) long, token ids so far (0 where not decoded yet)
    done: torch.Tensor  # (B, N) bool, decoded positions
    new: torch.Tensor  # (B, N) bool, positions decoded by this step


@dataclass
class SamplingParams:
    """How one step turns logits into ids."""

    temperature: float = 1.0
    temperature_schedule: TemperatureSchedule = "constant"
    top_k: int = 0
    top_p: float = 1.0

    def sample(self, logits: torch.Tensor, step: int, num_steps: int, generator) -> torch.Tensor:
        temp = temperature_at(step, num_steps, self.temperature, self.temperature_schedule)
        return sample_tokens(logits, temp, generator, self.top_k, self.top_p)


class _ParallelSampler:
    def __init__(self, params: SamplingParams, schedule: TokenSchedule = "cosine"):
        self.params = params
        self.schedule = schedule
        self.counts: list[int] = []
        self.step_index = 0

    @property
    def num_steps(self) -> int:
        return len(self.counts)

    def set_steps(self, num_steps: int, num_tokens: int, generator: Optional[torch.Generator] = None,
                  batch_size: int = 1) -> None:
        self.counts = tokens_per_step(num_tokens, num_steps, self.schedule)
        self.step_index = 0

    def _commit(self, ids, done, sampled, chosen) -> ParallelStep:
        """Write `sampled` (B, N) at `chosen` (B, N) bool positions."""
        self.step_index += 1
        return ParallelStep(torch.where(chosen, sampled, ids), done | chosen, chosen)


class MaskGITSampler(_ParallelSampler):
    """Confidence-ranked parallel decoding: each step samples every undecoded position and keeps
    the ones whose sampled token is most probable; the rest are masked again.

    `choice_temperature` > 0 ranks by log p + tau_t * Gumbel noise with tau_t decaying linearly
    from `choice_temperature` at the first step to 0 at the last (MaskGIT's "choice temperature"):
    without it the most confident positions (background, for a class map) always go first."""

    def __init__(self, params: SamplingParams, schedule: TokenSchedule = "cosine", choice_temperature: float = 0.0):
        super().__init__(params, schedule)
        self.choice_temperature = choice_temperature

    def query(self, done: torch.Tensor) -> torch.Tensor:
        return ~done  # (B, N): logits are needed for every undecoded position

    def step(self, logits: torch.Tensor, ids: torch.Tensor, done: torch.Tensor, generator) -> ParallelStep:
        """logits (B, N, V) (only undecoded positions are read)."""
        t = self.step_index
        sampled = self.params.sample(logits, t, self.num_steps, generator)  # (B, N)
        confidence = logits.float().log_softmax(-1).gather(-1, sampled[..., None])[..., 0]  # (B, N)
        tau = self.choice_temperature * (1.0 - t / self.num_steps)
        if tau > 0:
            u = uniform(confidence.shape, generator, confidence.device).clamp(1e-20, 1.0)
            gumbel = -torch.log((-torch.log(u)).clamp_min(1e-20))  # (B, N)
            confidence = confidence + tau * gumbel
        confidence = confidence.masked_fill(done, float("-inf"))
        keep = torch.topk(confidence, self.counts[t], dim=-1).indices  # (B, k)
        chosen = torch.zeros_like(done).scatter(-1, keep, True)
        return self._commit(ids, done, sampled, chosen)


class ROARSampler(_ParallelSampler):
    """Random-order decoding, several tokens per step: a random permutation per sample (drawn
    in `set_steps`) fixes the order; each step decodes the next `counts[t]` positions of it.
    `order='left_to_right'` gives raster order instead (autoregressive for non-causal modalities)."""

    def __init__(self, params: SamplingParams, schedule: TokenSchedule = "linear", order: str = "random"):
        super().__init__(params, schedule)
        self.order = order
        self.permutation: Optional[torch.Tensor] = None  # (B, N)

    def set_steps(self, num_steps, num_tokens, generator=None, batch_size=1) -> None:
        super().set_steps(num_steps, num_tokens)
        if self.order == "random":
            device = generator.device if generator is not None else "cpu"
            keys = torch.rand(batch_size, num_tokens, generator=generator, device=device)
            self.permutation = keys.argsort(-1)
        else:
            self.permutation = torch.arange(num_tokens).expand(batch_size, -1)

    def query(self, done: torch.Tensor) -> torch.Tensor:
        start = sum(self.counts[: self.step_index])
        chosen = self.permutation[:, start: start + self.counts[self.step_index]].to(done.device)  # (B, k)
        return torch.zeros_like(done).scatter(-1, chosen, True)

    def step(self, logits: torch.Tensor, ids: torch.Tensor, done: torch.Tensor, generator) -> ParallelStep:
        chosen = self.query(done)
        sampled = self.params.sample(logits, self.step_index, self.num_steps, generator)  # (B, N)
        return self._commit(ids, done, sampled, chosen)


@dataclass
class TokenStep:
    ids: torch.Tensor  # (B,) long, the new token of each sample (pad_id once finished)
    finished: torch.Tensor  # (B,) bool, the sample has emitted stop_id (now or before)


class AutoregressiveSampler:
    """Left to right, one token per sample per step. With `stop_id` (text [EOS]) a sample stops
    at its first stop token and gets `pad_id` afterwards."""

    def __init__(self, params: SamplingParams, stop_id: Optional[int] = None, pad_id: int = 0):
        self.params = params
        self.stop_id = stop_id
        self.pad_id = pad_id
        self.num_steps = 0
        self.step_index = 0
        self.finished: Optional[torch.Tensor] = None

    def set_steps(self, num_tokens: int, batch_size: int = 1, device="cpu") -> None:
        self.num_steps = num_tokens
        self.step_index = 0
        self.finished = torch.zeros(batch_size, dtype=torch.bool, device=device)

    def step(self, logits: torch.Tensor, generator) -> TokenStep:
        """logits (B, V) of the next position."""
        ids = self.params.sample(logits, self.step_index, self.num_steps, generator)  # (B,)
        ids = ids.masked_fill(self.finished, self.pad_id)
        if self.stop_id is not None:
            self.finished = self.finished | (ids == self.stop_id)
        self.step_index += 1
        return TokenStep(ids, self.finished.clone())

    @property
    def all_finished(self) -> bool:
        return self.stop_id is not None and bool(self.finished.all())
