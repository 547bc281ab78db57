"""How well a FourM binds a caption's objects in caption -> colorseg, before any sampling: the
first decoding step's distribution over every cell (nothing decoded yet), mapped to labels
through the colorseg tokenizer's code appearance table (the mean label fractions of each code).

    object cells:  expected cells of object labels over the map (of h * w)
    on captioned:  the share of that object mass on labels (shape + colour) the caption names
    on other:      the same share for another sample's caption's labels (chance)
    colour / shape: the share on labels of a captioned colour (any shape) / captioned shape (any colour)

One line per guidance scale: strong guidance binds better but also paints objects everywhere.

    PYTHONPATH=. .venv/bin/python bench/layout_binding.py [--model runs/fourm_tiny/model] \
        [--split data/scenes/val] [--samples 128] [--cfg 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIRST_OBJECT_LABEL = 2  # colorseg: 0 background, 1 floor, then shape x colour (fourm.datasets.scenes.world)


def captioned_labels(sample: dict) -> list[int]:
    from fourm.datasets.scenes.world import colorseg_label

    return sorted({colorseg_label(o["shape"], o["color"]) for o in sample["scene"]["objects"]})


def label_sets(sample: dict) -> dict[str, list[int]]:
    """Object labels (colorseg) of: the captioned objects, any captioned colour, any captioned shape."""
    from fourm.datasets.scenes.world import COLOR_NAMES, SHAPES, colorseg_label

    objects = sample["scene"]["objects"]
    colours, shapes = {o["color"] for o in objects}, {o["shape"] for o in objects}
    every = [(s, c) for s in SHAPES for c in COLOR_NAMES]
    return {"captioned": captioned_labels(sample),
            "colour": sorted(colorseg_label(s, c) for s, c in every if c in colours),
            "shape": sorted(colorseg_label(s, c) for s, c in every if s in shapes)}


def first_step_label_mass(model, tokenizers, batch: list[dict], scale: float) -> torch.Tensor:
    """(B, labels): expected label mass summed over the map at the first step, guidance `scale`."""
    from eval.context import encode_values
    from fourm.generation.generate import condition_tokens
    from fourm.generation.guidance import combine, plan_passes
    from fourm.model import ModalityTokens

    spec, text = model.config.spec("colorseg"), model.config.spec("caption")
    caption = condition_tokens(text, encode_values(text, tokenizers["caption"], [s["caption"] for s in batch]))
    B, N = len(batch), spec.max_tokens
    empty = torch.zeros(B, N, dtype=torch.long)
    block = ModalityTokens(empty, empty.bool(), torch.ones(B, N, dtype=torch.bool), torch.arange(N).expand(B, -1))
    passes = plan_passes(["caption"], scale)
    logits = combine([model.target_logits({**({"caption": caption} if p.conditions else {}), "colorseg": block})["colorseg"]
                      for p in passes], passes)  # (B, N, V)
    table = tokenizers["colorseg"].code_appearance()  # (V, labels * s * s)
    labels = tokenizers["colorseg"].config.num_classes
    per_code = table.view(table.shape[0], labels, -1).mean(-1)  # (V, labels)
    return (logits.float().softmax(-1) @ per_code).sum(1)  # (B, labels)


@torch.no_grad()
def binding(model_dir: str, split: str, samples: int, scales: list[float], batch_size: int = 32) -> list[dict]:
    from eval.context import read_samples
    from fourm.generation.outputs import load_modality_tokenizers
    from fourm.model import FourM

    model = FourM.from_pretrained(model_dir).eval()
    tokenizers = load_modality_tokenizers({n: model.config.spec(n) for n in ("caption", "colorseg")})
    rows, _ = read_samples(split, samples)
    results = []
    for scale in scales:
        captioned, other, colour, shape, cells = [], [], [], [], []
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            objects = first_step_label_mass(model, tokenizers, batch, scale)[:, FIRST_OBJECT_LABEL:]  # (B, object labels)
            for i, sample in enumerate(batch):
                total = objects[i].sum()
                share = lambda labels: float(objects[i, torch.tensor(labels) - FIRST_OBJECT_LABEL].sum() / total)
                own = label_sets(sample)
                captioned.append(share(own["captioned"]))
                colour.append(share(own["colour"]))
                shape.append(share(own["shape"]))
                other.append(share(captioned_labels(batch[(i + 1) % len(batch)])))
                cells.append(float(total))
        mean = lambda xs: sum(xs) / len(xs)
        results.append({"cfg_scale": scale, "object_cells": mean(cells), "on_captioned": mean(captioned),
                        "on_other": mean(other), "on_colour": mean(colour), "on_shape": mean(shape), "cells": model.config.spec("colorseg").max_tokens})
    return results


def binding_parser(description: str, cfg_scales: list[float]) -> argparse.ArgumentParser:
    """The options every binding bench takes: the model, the raw split, how many samples, the CFG scales."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/fourm_tiny/model")
    parser.add_argument("--split", default="data/scenes/val")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--cfg", type=float, nargs="+", default=cfg_scales)
    return parser


def main() -> int:
    args = binding_parser(__doc__, [1.0, 2.0, 3.0]).parse_args()
    torch.set_num_threads(2)
    for r in binding(args.model, args.split, args.samples, args.cfg):
        print(f"cfg {r['cfg_scale']:g}: object cells {r['object_cells']:.1f} of {r['cells']}, "
              f"object mass on captioned labels {r['on_captioned']:.3f}, on another caption's {r['on_other']:.3f}; "
              f"on captioned colours {r['on_colour']:.3f}, on captioned shapes {r['on_shape']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
