"""`fourm quickstart`: from nothing to the whole system working, one stage after another.

Each stage records a marker (`<out>/stages/<name>.json`, holding the stage's parameters) when it
finishes; a later run skips stages whose marker matches and redoes those whose parameters changed,
so an interrupted quickstart resumes where it stopped. Stages write their results under `data/`,
`runs/` and `<out>/`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartSize:
    """How big each stage is: the full run, or `--small` (same stages, worse pictures)."""

    train_samples: int = 2000
    val_samples: int = 200
    resolution: int = 64
    seed: int = 0
    overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)


FULL = QuickstartSize()
# --small: same stages on fewer samples and steps (worse pictures, same outputs).
SMALL = QuickstartSize(
    train_samples=400,
    val_samples=50,
    overrides={
        "depth": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "semseg": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
    },
)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[QuickstartSize, Path], dict]


def stage_scenes(size: QuickstartSize, out: Path) -> dict:
    from fourm.datasets.preview import make_preview
    from fourm.datasets.scenes.generate import generate_scenes

    manifest = generate_scenes("data/scenes", size.train_samples, resolution=size.resolution, seed=size.seed,
                               n_val=size.val_samples)
    make_preview("data/scenes", out / "scenes_preview.png", n=6, split="val")
    return {"samples": {k: v for k, v in manifest.get("counts", {}).items()}}


def stage_caption_tokenizer(size: QuickstartSize, out: Path) -> dict:
    from train.text_tokenizer import train_text_tokenizer

    return train_text_tokenizer("configs/tokenizers/text_caption.yaml", size.overrides.get("caption", ()))


def tokenizer_stage(modality: str) -> Stage:
    """Train one neural tokenizer with the config its registry entry names."""

    def run(size: QuickstartSize, out: Path) -> dict:
        from fourm.modalities import load_registry
        from train.launch import run_tokenizer_training

        spec = load_registry([modality])[modality]
        return run_tokenizer_training(spec.tokenizer_config, size.overrides.get(modality, ()))

    return Stage(f"{modality}_tokenizer", run)


def stage_tokenize(size: QuickstartSize, out: Path) -> dict:
    from fourm.tokenize import tokenize_dataset

    manifest = tokenize_dataset("data/scenes", "data/scenes_tok", ["depth", "semseg", "caption"])
    return {"splits": sorted(manifest.get("splits", {}))}


STAGES: tuple[Stage, ...] = (
    Stage("scenes", stage_scenes),
    Stage("caption_tokenizer", stage_caption_tokenizer),
    tokenizer_stage("depth"),
    tokenizer_stage("semseg"),
    Stage("tokenize", stage_tokenize),
)


def _marker(out: Path, stage: Stage) -> Path:
    return out / "stages" / f"{stage.name}.json"


def run_quickstart(out: str | os.PathLike = "quickstart", small: bool = False, only: tuple[str, ...] = ()) -> dict:
    """Run every stage not already finished with the same parameters; returns each stage's result."""
    from tqdm import tqdm

    size = SMALL if small else FULL
    out = Path(out)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    params = {"size": repr(size)}
    results = {}
    stages = [s for s in STAGES if not only or s.name in only]
    for stage in tqdm(stages, desc="quickstart", unit="stage"):
        marker = _marker(out, stage)
        if marker.is_file() and json.loads(marker.read_text()).get("params") == params:
            log.info("stage %s: done before, skipped", stage.name)
            results[stage.name] = json.loads(marker.read_text())["result"]
            continue
        start = time.time()
        log.info("stage %s: running", stage.name)
        result = stage.run(size, out)
        record = {"params": params, "result": result, "seconds": round(time.time() - start, 1)}
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, marker)
        results[stage.name] = result
        log.info("stage %s: finished in %.0f s", stage.name, record["seconds"])
    return results
