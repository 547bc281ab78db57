"""Classifier-free guidance: which model passes to run and how to mix their logits.

Plain guidance with scale s runs a conditional pass (every condition) and an unconditional one
(conditions dropped; the target's own decoded tokens stay):
    logits = u + s * (c - u)
Per-condition weights w_i run one pass per condition i (only that condition kept):
    logits = u + sum_i w_i * (c_i - u)      (conditions without a weight get w = s)
Scale 1 with no weights runs the conditional pass alone, so it equals no guidance exactly.

A guidance schedule (`GuidancePlan.at`) decays every scale towards 1 over the decoding steps: strong
guidance while the first tokens fix what the sample shows, none at the end, where guidance
would push every remaining token away from what the unconditional model expects (for a class
map: background cells turned into object colours).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch

from fourm.generation.sampling import TemperatureSchedule, temperature_at

GuidanceSchedule = TemperatureSchedule  # constant | linear | cosine, decaying to scale 1


@dataclass(frozen=True)
class GuidancePass:
    conditions: tuple[str, ...]  # names of the conditions this pass keeps
    weight: Optional[float]  # None for the unconditional pass


def plan_passes(condition_names: Sequence[str], scale: float = 1.0,
                weights: Optional[Mapping[str, float]] = None) -> list[GuidancePass]:
    """The passes to run; the unconditional one, when there is one, comes first."""
    names = tuple(condition_names)
    weights = dict(weights or {})
    unknown = [n for n in weights if n not in names]
    if unknown:
        raise ValueError(f"guidance weight for '{unknown[0]}', which is not a condition (conditions: {', '.join(names) or 'none'})")
    if not names or (scale == 1.0 and not weights):
        return [GuidancePass(names, 1.0)]
    unconditional = GuidancePass((), None)
    if not weights:
        return [unconditional, GuidancePass(names, scale)]
    return [unconditional, *(GuidancePass((n,), weights.get(n, scale)) for n in names)]


def combine(logits: Sequence[torch.Tensor], passes: Sequence[GuidancePass]) -> torch.Tensor:
    """Mix the logits of each pass (same shapes, in `passes` order) into guided logits."""
    if len(passes) == 1:
        return logits[0]
    uncond = logits[0].float()
    guided = uncond.clone()
    for lg, p in zip(logits[1:], passes[1:]):
        guided = guided + p.weight * (lg.float() - uncond)
    return guided


@dataclass(frozen=True)
class GuidancePlan:
    """The passes of `plan_passes` and how their weights move over the decoding steps."""

    passes: tuple[GuidancePass, ...]
    schedule: GuidanceSchedule = "constant"

    def at(self, step: int, num_steps: int, keep_all: bool = False) -> list[GuidancePass]:
        """The passes of step `step` (0-based) of `num_steps`: each weight moves from its planned
        value at the first step to 1 at the last (linear or half-cosine; constant keeps it).
        Plain guidance that has reached weight 1 drops its unconditional pass (it would change
        nothing) unless `keep_all` (callers whose passes hold state: one KV cache per pass)."""
        if self.schedule == "constant" or len(self.passes) == 1:
            return list(self.passes)
        stepped = [p if p.weight is None else
                   GuidancePass(p.conditions, temperature_at(step, num_steps, p.weight, self.schedule, end=1.0))
                   for p in self.passes]
        if not keep_all and len(stepped) == 2 and stepped[1].weight == 1.0:
            return [stepped[1]]
        return stepped
