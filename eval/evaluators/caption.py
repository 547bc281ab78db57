"""Captioning: generate the target text from the inputs (e.g. rgb -> caption) and score the
objects it names against the scene graph stored with each raw sample (`scene.json`).

An object of the scene graph is *recalled* when the caption contains its colour and shape as
one phrase, "<colour> [small|large] <shape>[s]" (case-insensitive, whole words), which is how
the scenes captions name every object. Colours and shapes are the manifest's palette and shape
names (else those seen in the scene graphs).
    object_recall     recalled objects / all objects (pooled over samples)
    object_precision  named (colour, shape) pairs that exist in the scene / all named pairs
    exact_set         fraction of samples whose set of named pairs equals the scene's set
"""
from __future__ import annotations

import re
from typing import Iterable

import torch

from eval.context import EvalContext


def scene_objects(sample: dict) -> list[tuple[str, str]]:
    """(colour, shape) of each object of the sample's scene graph."""
    scene = sample.get("scene")
    if not isinstance(scene, dict) or "objects" not in scene:
        raise ValueError(f"sample {sample.get('__key__', '?')} has no scene graph (scene.json with 'objects')")
    return [(str(o["color"]).lower(), str(o["shape"]).lower()) for o in scene["objects"]]


def vocabulary(ctx: EvalContext) -> tuple[list[str], list[str]]:
    colours = list(ctx.manifest.get("palette", {})) or sorted({c for s in ctx.samples for c, _ in scene_objects(s)})
    shapes = list(ctx.manifest.get("shapes", [])) or sorted({h for s in ctx.samples for _, h in scene_objects(s)})
    return [c.lower() for c in colours], [h.lower() for h in shapes]


def named_objects(text: str, colours: Iterable[str], shapes: Iterable[str]) -> set[tuple[str, str]]:
    """(colour, shape) pairs a text names as '<colour> [small|large] <shape>[s]'."""
    pattern = re.compile(r"\b(%s)\s+(?:(?:small|large)\s+)?(%s)(?:e?s)?\b"
                         % ("|".join(map(re.escape, colours)), "|".join(map(re.escape, shapes))))
    return {(m.group(1), m.group(2)) for m in pattern.finditer(text.lower())}


def object_scores(texts: list[str], truths: list[list[tuple[str, str]]], colours, shapes) -> dict:
    recalled = total = named_ok = named = exact = 0
    for text, truth in zip(texts, truths):
        found, true_set = named_objects(text, colours, shapes), set(truth)
        recalled += sum(1 for obj in truth if obj in found)
        total += len(truth)
        named_ok += len(found & true_set)
        named += len(found)
        exact += int(found == true_set)
    return {"object_recall": recalled / total if total else None,
            "object_precision": named_ok / named if named else None,
            "exact_set": exact / len(texts) if texts else None}


@torch.no_grad()
def run(model, ctx: EvalContext) -> dict:
    from fourm.generation import generate_target

    cfg = ctx.cfg
    spec = model.config.spec(cfg.target)
    colours, shapes = vocabulary(ctx)
    texts, truths, rows = [], [], []
    for batch in ctx.batches():
        truths += [scene_objects(s) for s in batch]  # a missing scene graph fails before generating
        conds = ctx.conditions(batch, model, cfg.inputs)
        ids = generate_target(model, conds, spec.name, ctx.target_config(model, spec.name), ctx.generator)
        texts += ctx.decode(spec, ids)
    scores = object_scores(texts, truths, colours, shapes)
    write_examples(model, ctx, texts)
    return {**scores, "reference_object_recall": object_scores(
        [str(s.get(spec.raw_ext.rsplit(".", 1)[0], "")) for s in ctx.samples], truths, colours, shapes)["object_recall"],
        "samples": len(texts), "examples": [{"key": s.get("__key__", ""), "caption": t} for s, t in zip(ctx.samples, texts[:cfg.examples])]}


def write_examples(model, ctx: EvalContext, texts: list[str]) -> None:
    from eval.visuals import write_grid
    from fourm.generation.outputs import preview_image

    cfg, spec = ctx.cfg, model.config.spec(ctx.cfg.target)
    rows = []
    for sample, text in list(zip(ctx.samples, texts))[: cfg.examples]:
        images = [preview_image(model.config.spec(n), ctx.ground_truth([sample], model.config.spec(n))[0].numpy())
                  for n in cfg.inputs if model.config.spec(n).kind != "text"]
        rows.append([*images, text, str(ctx.values([sample], spec)[0])])
    path = write_grid(ctx.out_dir / "caption_examples.png", rows, ["input", "generated", "ground truth"], tile_size=(160, 160))
    ctx.add_figure(path, "input | generated caption | ground-truth caption")
