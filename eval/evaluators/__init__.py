"""Evaluators, one module each, all with one contract:

    metrics = run(model, ctx)      # model: a FourM in eval mode; ctx: eval.context.EvalContext

`run` returns a dict of metrics (JSON-ready: floats, ints, None, nested dicts) and may add PNGs
to `ctx.figures`. `EVALUATORS` maps an EvalConfig `task` to its module; `KINDS` says what the
task's target modality must be (checked before any work)."""
from __future__ import annotations

import importlib

EVALUATORS = {
    "semseg": "eval.evaluators.dense",
    "depth": "eval.evaluators.dense",
    "normals": "eval.evaluators.dense",
    "flextok": "eval.evaluators.flextok",
    "caption": "eval.evaluators.caption",
    "consistency": "eval.evaluators.consistency",
    "probe": "eval.evaluators.probe",
}

# task -> (kind, raw data) the `target` modality must have (None: any)
KINDS = {
    "semseg": (None, "class_map"),
    "depth": (None, "depth_map"),
    "normals": (None, "normal_map"),
    "flextok": ("image_seq", "image_rgb"),
    "caption": ("text", "text"),
    "consistency": (None, "class_map"),
    "probe": (None, "class_map"),
}


def evaluator(task: str):
    """The `run` function of `task`."""
    if task not in EVALUATORS:
        raise ValueError(f"unknown eval task '{task}' (known: {', '.join(EVALUATORS)})")
    return importlib.import_module(EVALUATORS[task]).run
