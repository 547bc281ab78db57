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
    transfer_samples: int = 10000  # the rgb -> semseg transfer's own labelled train set (stage transfer_data)
    resolution: int = 64
    seed: int = 0
    overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)


FULL = QuickstartSize()
# --small: same stages on fewer samples and steps (worse pictures, same outputs).
SMALL = QuickstartSize(
    train_samples=400,
    val_samples=50,
    transfer_samples=400,
    overrides={
        "depth": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "semseg": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "colorseg": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "rgb_grid": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "rgb_vae": ("train.steps=150", "train.val_every=150", "train.ckpt_every=150"),
        "rgb": ("train.steps=300", "train.val_every=300", "train.ckpt_every=300", "model.nested_dropout_start=200"),
        "fourm": ("steps=100", "val_every=100", "checkpoint_every=100", "data.val_samples=32"),
        "caption_route": ("steps=100", "val_every=100", "checkpoint_every=100", "data.val_samples=32"),
        "semseg_transfer": ("steps=100", "val_every=100", "checkpoint_every=100", "data.val_samples=32"),
        "judge": ("train.steps=100",),
        "eval": ("max_samples=32",),
    },
)
TOKEN_DIR = "data/scenes_tokens"
# The rgb -> semseg transfer's train set: more scenes of the same world, as a downstream task brings
# its own labelled images. 10,000 instead of FourM's 2,000 end the transfer's overfitting (README,
# FourM); only its input and target are tokenized.
TRANSFER_DATA, TRANSFER_TOKEN_DIR = "data/scenes_transfer", "data/scenes_transfer_tokens"
TRANSFER_MODALITIES = ("rgb_pixels", "semseg")
FOURM_CONFIG = "configs/train/tiny.yaml"
JUDGE_CONFIG = "configs/baselines/unet_semseg.yaml"
# The KL autoencoder under FlexTok: the rgb tokenizer's config (flextok_scenes_vae.yaml) reads it
# through vae_init, so it trains first.
RGB_VAE_CONFIG = "configs/tokenizers/rgb_vae_scenes.yaml"
# The caption route's specialist, fine-tuned from FourM (configs/generate/caption_to_objects_to_rgb.yaml)
ROUTE_CONFIG = "configs/finetune/caption_route.yaml"
SEMSEG_TRANSFER_CONFIG = "configs/finetune/rgb_to_semseg.yaml"
# Specialist stages, fine-tuned from FourM after it, as 4M ships task-tuned models beside its own.
SPECIALISTS = {"caption_route": ROUTE_CONFIG, "semseg_transfer": SEMSEG_TRANSFER_CONFIG}
SPECIALIST_DATA = {"semseg_transfer": ("transfer_data",)}  # stages writing a specialist's own train set
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
    only then: retraining rgb_grid does not retrain FlexTok). `threads`: the CPU threads it uses
    (a tokenizer training: `cpu_threads` in its config), so that stages that do not
    read each other's results run side by side."""

    name: str
    run: Callable[[QuickstartSize, Path], dict]
    params: tuple = ()
    configs: Callable[[], tuple[str, ...]] = tuple
    needs: tuple[str, ...] = ()
    threads: int | Callable[[], int] = 1

    def thread_count(self) -> int:
        return self.threads() if callable(self.threads) else self.threads


def is_outdated(manifest: dict) -> bool:
    """Whether a scenes manifest was written by an older generator than this one."""
    from fourm.datasets.scenes.generate import FILE_EXTENSIONS
    from fourm.datasets.scenes.world import GENERATOR_VERSION

    return bool(set(FILE_EXTENSIONS) - set(manifest.get("files", []))) or manifest.get("generator_version") != GENERATOR_VERSION


def stage_scenes(size: QuickstartSize, out: Path) -> dict:
    from fourm.datasets.preview import make_preview

    manifest = render_scenes("data/scenes", size.train_samples, size.val_samples, size)
    make_preview("data/scenes", out / "scenes_preview.png", n=6, split="val")
    return {"samples": {k: v for k, v in manifest.get("counts", {}).items()}}


def render_scenes(folder: str, n_train: int, n_val: int, size: QuickstartSize) -> dict:
    """Render (or finish rendering) a scenes dataset; one made by an older generator is rendered again."""
    import shutil

    from fourm.datasets.scenes.generate import generate_scenes

    manifest_path = Path(folder) / "manifest.json"
    if manifest_path.is_file() and is_outdated(json.loads(manifest_path.read_text())):
        shutil.rmtree(folder)
    return generate_scenes(folder, n_train, resolution=size.resolution, seed=size.seed, n_val=n_val)


def text_tokenizer_stage(modality: str) -> Stage:
    """Fit one text tokenizer (caption, objects) with the config its registry entry names."""

    def run(size: QuickstartSize, out: Path) -> dict:
        from train.text_tokenizer import train_text_tokenizer

        return train_text_tokenizer(registry_tokenizer_config(modality), size.overrides.get(modality, ()))

    return Stage(f"{modality}_tokenizer", run, (modality,), lambda: (registry_tokenizer_config(modality),),
                 needs=("scenes",))


def registry_tokenizer_config(modality: str) -> str:
    """The tokenizer config that the modality's registry entry names."""
    from fourm.modalities import load_registry

    return load_registry([modality])[modality].tokenizer_config


def tokenizer_stage(modality: str, needs: tuple[str, ...] = (), recipe: tuple[str, ...] = ()) -> Stage:
    """Train one neural tokenizer with the config its registry entry names (after the scenes and
    the stages in `needs`). `recipe`: extra marker params; changing them reruns the stage, and a
    finished run is resumed at its last step (validation and saving only)."""

    def config() -> str:
        return registry_tokenizer_config(modality)

    def run(size: QuickstartSize, out: Path) -> dict:
        return train_fresh_if_changed(config(), size.overrides.get(modality, ()))

    return Stage(f"{modality}_tokenizer", run, (modality, *recipe), lambda: (config(),), needs=("scenes",) + needs,
                 threads=lambda: config_threads(config()))


def fixed_tokenizer_stage(modality: str) -> Stage:
    """Save a tokenizer that learns nothing (pixel patches, object centres) from the config its
    registry entry names."""

    def run(size: QuickstartSize, out: Path) -> dict:
        from train.fixed_tokenizer import save_fixed_tokenizer

        return save_fixed_tokenizer(registry_tokenizer_config(modality), size.overrides.get(modality, ()))

    return Stage(f"{modality}_tokenizer", run, (modality,), lambda: (registry_tokenizer_config(modality),))


def available_threads() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def config_threads(config: str) -> int:
    """The CPU threads a tokenizer training config asks for (`engine.cpu_threads`; 0 or unset:
    torch's default, every core)."""
    from fourm.config import read_yaml
    from fourm.paths import resolve

    return int(read_yaml(resolve(config)).get("engine", {}).get("cpu_threads") or available_threads())


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


TOKENIZED = ("rgb", "rgb_pixels", "rgb_grid", "depth", "semseg", "colorseg", "objects", "caption")


def stage_tokenize(size: QuickstartSize, out: Path) -> dict:
    """Token shards for every modality FourM trains on. Always from scratch: the tokenizers may
    have been retrained since (a few seconds per 1,000 samples)."""
    import shutil

    from fourm.tokenize import tokenize_dataset

    shutil.rmtree(TOKEN_DIR, ignore_errors=True)
    manifest = tokenize_dataset("data/scenes", TOKEN_DIR, list(TOKENIZED))
    return {"splits": sorted(manifest.get("splits", {}))}


def stage_transfer_data(size: QuickstartSize, out: Path) -> dict:
    """Render the transfer's train scenes (train split only: it is validated on data/scenes/val) and
    tokenize its input and target. Tokens always from scratch: the semseg tokenizer may be new."""
    import shutil

    from fourm.tokenize import tokenize_dataset

    render_scenes(TRANSFER_DATA, size.transfer_samples, 0, size)
    shutil.rmtree(TRANSFER_TOKEN_DIR, ignore_errors=True)
    tokenize_dataset(TRANSFER_DATA, TRANSFER_TOKEN_DIR, list(TRANSFER_MODALITIES), splits=["train"])
    return {"samples": size.transfer_samples}


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


def finetune_stage(name: str, config: str) -> Stage:
    """A specialist fine-tuned from the quickstart FourM with `config` (`--small`: the overrides
    under `name`), in a fresh run dir since FourM may have changed; after the stages that write
    its data (SPECIALIST_DATA)."""

    def run(size: QuickstartSize, out: Path) -> dict:
        import shutil

        from train.finetune import finetune
        from train.finetune_config import load_finetune_config

        cfg = load_finetune_config(config, list(size.overrides.get(name, ())))
        shutil.rmtree(cfg.run_dir, ignore_errors=True)
        return finetune(cfg)

    def configs() -> tuple[str, ...]:
        from train.finetune_config import load_finetune_config

        cfg = load_finetune_config(config)
        return (config,) if cfg.task else (config, cfg.data.masking)  # a fixed `task` reads no masking config

    return Stage(name, run, configs=configs, needs=("fourm", *SPECIALIST_DATA.get(name, ())), threads=available_threads)


def specialist_models(size: QuickstartSize) -> tuple[str, ...]:
    """The models the specialist stages write (the report runs the configs naming them on them)."""
    from train.finetune_config import load_finetune_config

    return tuple(f"{load_finetune_config(config, list(size.overrides.get(name, ()))).run_dir}/model"
                 for name, config in SPECIALISTS.items())


def report_configs() -> tuple[str, ...]:
    """The shipped generation and evaluation configs the report runs: editing one reruns it."""
    from eval.quickstart_report import EVALS, GENERATIONS

    return (*(f"configs/generate/{name}.yaml" for name in GENERATIONS), *(f"configs/eval/{task}.yaml" for task in EVALS))


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
    return write_quickstart_report(f"{run_dir}/model", "data/scenes/val", out, eval_overrides=overrides, extra=extra,
                                   specialists=specialist_models(size))


# Grid tokenizers save what their codes draw (FourM's model.code_appearance) since 2026-12-03: a
# tokenizer trained before is resumed at its last step, which measures them.
GRID_RECIPE = ("codes described",)

# In this order: a stage starts once the stages it needs are done and a core is free. On 2 cores
# the two longest jobs start first, side by side: rgb_vae -> FlexTok on one core and the rgb_grid
# tokenizer (~30 min on one thread) on the other; the short tokenizers and the judge fill in after,
# depth and semseg before colorseg, so that the judge and colorseg end at about the same time.
# (FlexTok on 2 threads would wait for a free machine and hold everything after it back.)
STAGES: tuple[Stage, ...] = (
    Stage("scenes", stage_scenes, ("objects",)),
    text_tokenizer_stage("caption"),
    text_tokenizer_stage("objects"),
    Stage("rgb_vae", stage_rgb_vae, configs=lambda: (RGB_VAE_CONFIG,), needs=("scenes",)),
    tokenizer_stage("rgb_grid", recipe=GRID_RECIPE),
    tokenizer_stage("rgb", needs=("rgb_vae",)),
    tokenizer_stage("depth", recipe=GRID_RECIPE),
    tokenizer_stage("semseg", recipe=GRID_RECIPE),
    tokenizer_stage("colorseg", recipe=GRID_RECIPE),
    fixed_tokenizer_stage("rgb_pixels"),
    Stage("judge", stage_judge, configs=lambda: (JUDGE_CONFIG,), needs=("scenes",)),
    Stage("transfer_data", stage_transfer_data, (TRANSFER_DATA, *TRANSFER_MODALITIES),
          needs=tuple(f"{name}_tokenizer" for name in TRANSFER_MODALITIES)),
    Stage("tokenize", stage_tokenize, TOKENIZED, needs=("scenes", *(f"{name}_tokenizer" for name in TOKENIZED)),
          threads=available_threads),
    Stage("fourm", stage_fourm, configs=fourm_configs, needs=("tokenize",), threads=available_threads),
    *(finetune_stage(name, config) for name, config in SPECIALISTS.items()),
    Stage("report", stage_report, ("v8",), report_configs,
          needs=("scenes", "rgb_tokenizer", "fourm", *SPECIALISTS, "judge"),
          threads=available_threads),
)


def _marker(out: Path, stage: Stage) -> Path:
    return out / "stages" / f"{stage.name}.json"


def read_marker(out: Path, stage: Stage) -> dict:
    """The stage's last record ({} when it never finished)."""
    marker = _marker(out, stage)
    return json.loads(marker.read_text()) if marker.is_file() else {}


class UnknownStage(ValueError):
    """A stage name (`--only`, a worker's argument) the quickstart does not have."""


def stage_by_name(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise UnknownStage(f"no quickstart stage named {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def stage_params(stage: Stage, size: QuickstartSize) -> dict:
    return {"size": repr(size), "stage": list(stage.params), "configs": config_fingerprints(stage.configs())}


def stage_is_current(stage: Stage, size: QuickstartSize, out: Path, finished: dict[str, float]) -> bool:
    """Finished before with the same parameters, and after every stage it reads (`finished`: each
    stage's finish time, 0 for never)."""
    record = read_marker(out, stage)
    inputs_newer = any(finished.get(need, 0.0) > record.get("finished", 0) for need in stage.needs)
    return record.get("params") == stage_params(stage, size) and not inputs_newer


def run_stage(name: str, out: Path, small: bool) -> dict:
    """Run one stage and record its marker (written under a temporary name, then renamed)."""
    stage, size = stage_by_name(name), SMALL if small else FULL
    params, start = stage_params(stage, size), time.time()
    log.info("stage %s: running", name)
    result = stage.run(size, out)
    finished = time.time()
    record = {"params": params, "result": result, "seconds": round(finished - start, 1), "finished": finished}
    marker = _marker(out, stage)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, marker)
    log.info("stage %s: finished in %.0f s", name, record["seconds"])
    return result


def run_quickstart(out: str | os.PathLike = "quickstart", small: bool = False, only: tuple[str, ...] = (),
                   parallel: bool = True) -> dict:
    """Run every stage not already finished with the same parameters; returns each stage's result.
    `parallel`: each stage in its own process, independent ones side by side within the machine's
    cores (`fourm.stage_scheduler`); otherwise one after another in this process."""
    size = SMALL if small else FULL
    out = Path(out)
    for name in only:  # an unknown name fails here, before anything runs
        stage_by_name(name)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    stages = [s for s in STAGES if not only or s.name in only]
    finished = {s.name: read_marker(out, s).get("finished", 0.0) for s in STAGES}
    if parallel:
        run_stages_in_processes(stages, size, out, small, finished)
    else:
        run_stages_here(stages, size, out, small, finished)
    return {s.name: read_marker(out, s).get("result") for s in stages}


def run_stages_here(stages: list[Stage], size: QuickstartSize, out: Path, small: bool,
                    finished: dict[str, float]) -> None:
    from tqdm import tqdm

    for stage in tqdm(stages, desc="quickstart", unit="stage"):
        if stage_is_current(stage, size, out, finished):
            log.info("stage %s: done before, skipped", stage.name)
            continue
        run_stage(stage.name, out, small)
        finished[stage.name] = read_marker(out, stage)["finished"]


def run_stages_in_processes(stages: list[Stage], size: QuickstartSize, out: Path, small: bool,
                            finished: dict[str, float]) -> None:
    """Each stage as `python -m fourm.quickstart_worker NAME`, its output in <out>/logs/NAME.log;
    one progress bar over the stages shows the running ones and their step counts."""
    import subprocess
    import sys

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from fourm.stage_scheduler import Job, run_jobs

    (out / "logs").mkdir(exist_ok=True)
    by_name = {stage.name: stage for stage in stages}
    bar = tqdm(total=len(stages), desc="quickstart", unit="stage")

    def launch(job: Job):
        stage = by_name[job.name]
        if stage_is_current(stage, size, out, finished):
            log.info("stage %s: done before, skipped", stage.name)
            return None
        log_file = out / "logs" / f"{stage.name}.log"
        command = [sys.executable, "-m", "fourm.quickstart_worker", stage.name, "--out", str(out)]
        env = dict(os.environ, OMP_NUM_THREADS=str(job.threads))
        with open(log_file, "w") as handle:
            process = subprocess.Popen(command + (["--small"] if small else []), stdout=handle,
                                       stderr=subprocess.STDOUT, env=env)
        log.info("stage %s: running (log %s)", stage.name, log_file)
        return process, log_file

    def on_finish(job: Job, ran: bool) -> None:
        if ran:
            record = read_marker(out, by_name[job.name])
            finished[job.name] = record["finished"]
            log.info("stage %s: finished in %.0f s", job.name, record["seconds"])
        bar.update(1)

    def on_poll(progress: dict[str, str]) -> None:
        bar.set_postfix_str(", ".join(f"{name} {count}".strip() for name, count in progress.items()))

    jobs = [Job(stage.name, stage.needs, stage.thread_count()) for stage in stages]
    try:
        with logging_redirect_tqdm():  # log lines above the bar, not through it
            run_jobs(jobs, launch, available_threads(), on_finish, on_poll)
    finally:
        bar.close()
