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
        "rgb_grid": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "rgb_vae": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "rgb": ("train.steps=300", "train.val_every=300", "train.ckpt_every=300", "model.nested_dropout_start=200"),
        "fourm": ("steps=100", "val_every=100", "checkpoint_every=100", "data.val_samples=32"),
        "judge": ("train.steps=100",),
        "eval": ("max_samples=32",),
    },
)
TOKEN_DIR = "data/scenes_tokens"
FOURM_CONFIG = "configs/train/tiny.yaml"
JUDGE_CONFIG = "configs/baselines/unet_semseg.yaml"
CAPTION_CONFIG = "configs/tokenizers/text_caption.yaml"
# The KL autoencoder under FlexTok: the rgb tokenizer's config (flextok_scenes_vae.yaml) reads it
# through vae_init, so it trains first.
RGB_VAE_CONFIG = "configs/tokenizers/rgb_vae_scenes.yaml"
ADAPTIVE_PSNR_DB = 20.0


def config_fingerprints(paths: tuple[str, ...]) -> dict[str, str]:
    """Each config's path -> a hash of its text: recorded in a stage's marker, so editing the file
    reruns the stage."""
    import hashlib

    from fourm.paths import resolve

    return {path: hashlib.sha256(resolve(path).read_bytes()).hexdigest()[:16] for path in paths}


@dataclass(frozen=True)
class Stage:
    """One step of the quickstart. `params` and the text of the `configs` it reads (paths, looked up
    when the quickstart runs) are recorded in its marker: changing either reruns it. `needs` names
    the earlier stages whose results it reads: it reruns when one of them finished after it (and
    only then: retraining rgb_grid does not retrain FlexTok)."""

    name: str
    run: Callable[[QuickstartSize, Path], dict]
    params: tuple = ()
    configs: Callable[[], tuple[str, ...]] = tuple
    needs: tuple[str, ...] = ()


def stage_scenes(size: QuickstartSize, out: Path) -> dict:
    from fourm.datasets.preview import make_preview
    from fourm.datasets.scenes.generate import generate_scenes

    manifest = generate_scenes("data/scenes", size.train_samples, resolution=size.resolution, seed=size.seed,
                               n_val=size.val_samples)
    make_preview("data/scenes", out / "scenes_preview.png", n=6, split="val")
    return {"samples": {k: v for k, v in manifest.get("counts", {}).items()}}


def stage_caption_tokenizer(size: QuickstartSize, out: Path) -> dict:
    from train.text_tokenizer import train_text_tokenizer

    return train_text_tokenizer(CAPTION_CONFIG, size.overrides.get("caption", ()))


def tokenizer_stage(modality: str, needs: tuple[str, ...] = ()) -> Stage:
    """Train one neural tokenizer with the config its registry entry names (after the scenes and
    the stages in `needs`)."""

    def config() -> str:
        from fourm.modalities import load_registry

        return load_registry([modality])[modality].tokenizer_config

    def run(size: QuickstartSize, out: Path) -> dict:
        return train_fresh_if_changed(config(), size.overrides.get(modality, ()))

    return Stage(f"{modality}_tokenizer", run, (modality,), lambda: (config(),), needs=("scenes",) + needs)


def train_fresh_if_changed(config: str, overrides: tuple[str, ...]) -> dict:
    """Train a tokenizer; an interrupted run of the same model resumes, a run of another model
    in the same folder (an older recipe) is removed first."""
    import shutil

    from train.launch import run_tokenizer_training
    from train.tokenizer_config import load_tokenizer_train_config
    from train.tokenizer_trainer import saved_model_differs

    cfg = load_tokenizer_train_config(config, overrides)
    if saved_model_differs(cfg):
        log.info("%s holds another model's run: removed", cfg.out)
        shutil.rmtree(cfg.out)
    return run_tokenizer_training(config, overrides)


def stage_rgb_vae(size: QuickstartSize, out: Path) -> dict:
    """The KL autoencoder whose latents FlexTok tokenizes (pixels <-> 4x16x16 latents)."""
    return train_fresh_if_changed(RGB_VAE_CONFIG, size.overrides.get("rgb_vae", ()))


TOKENIZED = ("rgb", "rgb_grid", "depth", "semseg", "caption")


def stage_tokenize(size: QuickstartSize, out: Path) -> dict:
    """Token shards for every modality FourM trains on. Always from scratch: the tokenizers may
    have been retrained since (a few seconds per 1,000 samples)."""
    import shutil

    from fourm.tokenize import tokenize_dataset

    shutil.rmtree(TOKEN_DIR, ignore_errors=True)
    manifest = tokenize_dataset("data/scenes", TOKEN_DIR, list(TOKENIZED))
    return {"splits": sorted(manifest.get("splits", {}))}


def stage_fourm(size: QuickstartSize, out: Path) -> dict:
    """The tiny FourM on the token shards (fresh run dir: its inputs may have changed)."""
    import shutil

    from train.fourm_config import load_train_config
    from train.fourm_trainer import train

    cfg = load_train_config(FOURM_CONFIG, list(size.overrides.get("fourm", ())))
    shutil.rmtree(cfg.run_dir, ignore_errors=True)
    return train(cfg)


def fourm_configs() -> tuple[str, ...]:
    """The FourM training config and the masking config it names."""
    from train.fourm_config import load_train_config

    return FOURM_CONFIG, load_train_config(FOURM_CONFIG).data.masking


def stage_judge(size: QuickstartSize, out: Path) -> dict:
    """The U-Net segmentation baseline on the real images: the independent judge of caption -> rgb
    consistency (configs/eval/consistency.yaml `judge`), and the baseline beside FourM's mIoU."""
    from eval.baselines.config import UNetBaselineConfig
    from eval.baselines.train_unet import train_unet_baseline
    from fourm.config import load_config

    cfg = load_config(JUDGE_CONFIG, UNetBaselineConfig, list(size.overrides.get("judge", ())))
    return train_unet_baseline(cfg)["metrics"]


def stage_report(size: QuickstartSize, out: Path) -> dict:
    """Generation grids, evaluator scores and FlexTok reconstructions -> <out>/report.html."""
    from eval.quickstart_report import EVALS, write_quickstart_report
    from fourm.adaptive_tokens import mean_adaptive_tokens
    from fourm.modalities import load_registry
    from modality_tokenizers import load_tokenizer
    from train.fourm_config import load_train_config

    rgb = load_registry(["rgb"])["rgb"]
    auto = mean_adaptive_tokens("data/scenes/val", load_tokenizer(rgb.tokenizer), psnr_db=ADAPTIVE_PSNR_DB,
                                limit=size.val_samples)
    extra = {f"FlexTok mean tokens for PSNR ≥ {ADAPTIVE_PSNR_DB:g} dB (--rgb-tokens auto)": auto["mean_tokens"]}
    run_dir = load_train_config(FOURM_CONFIG, list(size.overrides.get("fourm", ()))).run_dir
    overrides = {task: size.overrides.get("eval", ()) for task in EVALS}
    return write_quickstart_report(f"{run_dir}/model", "data/scenes/val", out, eval_overrides=overrides, extra=extra)


STAGES: tuple[Stage, ...] = (
    Stage("scenes", stage_scenes),
    Stage("caption_tokenizer", stage_caption_tokenizer, configs=lambda: (CAPTION_CONFIG,), needs=("scenes",)),
    tokenizer_stage("depth"),
    tokenizer_stage("semseg"),
    tokenizer_stage("rgb_grid"),
    Stage("rgb_vae", stage_rgb_vae, configs=lambda: (RGB_VAE_CONFIG,), needs=("scenes",)),
    tokenizer_stage("rgb", needs=("rgb_vae",)),
    Stage("tokenize", stage_tokenize, TOKENIZED, needs=("scenes", *(f"{name}_tokenizer" for name in TOKENIZED))),
    Stage("fourm", stage_fourm, configs=fourm_configs, needs=("tokenize",)),
    Stage("judge", stage_judge, configs=lambda: (JUDGE_CONFIG,), needs=("scenes",)),
    # bump the params when a shipped generation config changes
    Stage("report", stage_report, ("v5",), needs=("scenes", "rgb_tokenizer", "fourm", "judge")),
)


def _marker(out: Path, stage: Stage) -> Path:
    return out / "stages" / f"{stage.name}.json"


def read_marker(out: Path, stage: Stage) -> dict:
    """The stage's last record ({} when it never finished)."""
    marker = _marker(out, stage)
    return json.loads(marker.read_text()) if marker.is_file() else {}


def run_quickstart(out: str | os.PathLike = "quickstart", small: bool = False, only: tuple[str, ...] = ()) -> dict:
    """Run every stage not already finished with the same parameters; returns each stage's result."""
    from tqdm import tqdm

    size = SMALL if small else FULL
    out = Path(out)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    results = {}
    stages = [s for s in STAGES if not only or s.name in only]
    records = {s.name: read_marker(out, s) for s in STAGES}
    finished = {name: record.get("finished", 0.0) for name, record in records.items()}  # 0: never
    for stage in tqdm(stages, desc="quickstart", unit="stage"):
        params = {"size": repr(size), "stage": list(stage.params), "configs": config_fingerprints(stage.configs())}
        marker, record = _marker(out, stage), records[stage.name]
        inputs_newer = any(finished[need] > record.get("finished", 0) for need in stage.needs)
        if record.get("params") == params and not inputs_newer:
            log.info("stage %s: done before, skipped", stage.name)
            results[stage.name] = record["result"]
            continue
        start = time.time()
        log.info("stage %s: running", stage.name)
        result = stage.run(size, out)
        finished[stage.name] = time.time()
        record = {"params": params, "result": result, "seconds": round(finished[stage.name] - start, 1),
                  "finished": finished[stage.name]}
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, marker)
        results[stage.name] = result
        log.info("stage %s: finished in %.0f s", stage.name, record["seconds"])
    return results
