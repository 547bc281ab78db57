"""Train a U-Net baseline directly on raw shards (rgb -> semseg or rgb -> depth) for a fixed
budget, on the shared DeepSpeed engine, then score it on the val split.

    python -m eval.baselines.train_unet --config configs/baselines/unet_semseg.yaml [key.sub=value ...]

One process (the U-Net is small; a launcher would give every rank the same batches).
`out_dir` receives model.safetensors + config.yaml (everything `load_unet_baseline` needs),
metrics.json (val metrics, and the budget: samples seen, wall-clock, estimated FLOPs) and
examples.png (input | prediction | ground truth on the first val samples).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from eval.baselines.config import UNetBaselineConfig
from eval.baselines.data import SplitTensors, load_split, rgb_to_input, training_batches
from eval.baselines.unet import UNet

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- model and loss

def build_unet(cfg: UNetBaselineConfig) -> UNet:
    """semseg: `num_classes` logits per pixel; depth: one channel, log depth in metres."""
    if cfg.task == "semseg" and not cfg.num_classes:
        raise ValueError("semseg baseline needs num_classes (set it, or give shards with a manifest)")
    out_channels = cfg.num_classes if cfg.task == "semseg" else 1
    m = cfg.model
    return UNet(3, out_channels, width=m.width, levels=m.levels, norm_groups=m.norm_groups)


def baseline_loss(cfg: UNetBaselineConfig, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """output (B, C, H, W); target: class map (B, H, W) or depth (B, 1, H, W) with 0 = invalid."""
    if cfg.task == "semseg":
        return F.cross_entropy(output, target.long())
    valid = target > 0
    if not valid.any():
        return output.sum() * 0.0  # nothing to learn from this batch, keep the graph
    diff = output[valid] - target[valid].log()  # (N_valid,) log-depth error
    if cfg.depth_loss == "log_l1":
        return diff.abs().mean()
    # Scale-invariant log loss (Eigen et al.): silog_lambda = 1 ignores global scale entirely.
    return (diff.square().mean() - cfg.silog_lambda * diff.mean().square()).clamp_min(1e-12).sqrt()


def init_depth_head(model: UNet, train: SplitTensors) -> None:
    """Start the log-depth output at the training set's mean log depth (a sane first guess)."""
    depth = train.target[train.target > 0]
    with torch.no_grad():
        model.head.bias.fill_(float(depth.log().mean()) if depth.numel() else 0.0)


def forward_flops_per_sample(model: torch.nn.Module, resolution: int) -> int:
    """FLOPs of one forward pass on one (1, 3, R, R) input, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, resolution, resolution, device=next(model.parameters()).device))
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------- data

def _class_names(cfg: UNetBaselineConfig) -> Optional[list[str]]:
    from fourm.paths import resolve
    from fourm.shards import find_manifest, list_shards

    manifest = find_manifest(list_shards(resolve(cfg.data.train))[0])
    return list(manifest["class_names"]) if manifest and "class_names" in manifest else None


def resolve_num_classes(cfg: UNetBaselineConfig) -> tuple[UNetBaselineConfig, Optional[list[str]]]:
    """Fill num_classes from the manifest's class_names when the config leaves it out."""
    if cfg.task != "semseg":
        return cfg, None
    names = _class_names(cfg)
    if cfg.num_classes is None:
        if names is None:
            raise ValueError(f"{cfg.data.train}: no manifest with class_names; set num_classes in the config")
        cfg = dataclasses.replace(cfg, num_classes=len(names))
    if names is not None and len(names) != cfg.num_classes:
        names = None  # the names do not describe these classes
    return cfg, names


# ----------------------------------------------------------------------------- training

def train_loop(cfg: UNetBaselineConfig, engine, train: SplitTensors) -> dict:
    """`cfg.train.steps` micro-steps of `batch_size` samples (stops early only past
    max_wall_s). Returns steps, samples_seen, train_wall_s, stopped_early, loss_curve."""
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(cfg.engine.seed)
    batches = training_batches(train, cfg.train.batch_size, generator, cfg.data.hflip)
    engine.train()
    curve, recent, samples, step = [], [], 0, 0
    start = time.perf_counter()
    bar = tqdm(total=cfg.train.steps, desc=f"unet {cfg.task}", unit="step", mininterval=5)
    for step in range(1, cfg.train.steps + 1):
        rgb, target = next(batches)  # uint8 (B, 3, H, W), target (B, H, W) | (B, 1, H, W)
        output = engine(rgb_to_input(rgb).to(engine.device, engine.dtype))
        info = engine.step(baseline_loss(cfg, output, target.to(engine.device)))
        samples += rgb.shape[0]
        recent.append(info["loss"])
        if step % cfg.train.log_every == 0 or step == cfg.train.steps:
            curve.append({"step": step, "loss": sum(recent) / len(recent), "lr": info["lr"]})
            bar.set_postfix(loss=f"{curve[-1]['loss']:.4f}")
            recent = []
        bar.update(1)
        past_wall = cfg.train.max_wall_s is not None and time.perf_counter() - start > cfg.train.max_wall_s
        if past_wall and step < cfg.train.steps:
            log.warning("stopping at step %d of %d: past max_wall_s=%s", step, cfg.train.steps, cfg.train.max_wall_s)
            break
    bar.close()
    return {"steps": step, "samples_seen": samples, "train_wall_s": time.perf_counter() - start,
            "stopped_early": step < cfg.train.steps, "loss_curve": curve}


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def train_unet_baseline(cfg: UNetBaselineConfig) -> dict:
    """Load data, train for the budget, save weights + config, score the val split; returns
    (and writes to out_dir/metrics.json) {task, metrics, budget, data, loss_curve}."""
    threads = torch.get_num_threads()
    if cfg.engine.cpu_threads > 0:  # for loading and scoring too, not only the engine's steps
        torch.set_num_threads(cfg.engine.cpu_threads)
    try:
        return _train_and_evaluate(cfg)
    finally:
        torch.set_num_threads(threads)  # a library call leaves the process as it found it


def _train_and_evaluate(cfg: UNetBaselineConfig) -> dict:
    from fourm.config import save_config
    from eval.baselines.evaluate import evaluate_split, write_examples
    from train.engine import Engine, seed_everything

    cfg, class_names = resolve_num_classes(cfg)
    if cfg.engine.total_steps == 0:  # the LR schedule spans the budget (in optimizer steps)
        total = max(1, cfg.train.steps // cfg.engine.grad_accum)
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, total_steps=total))
    t0 = time.perf_counter()
    train = load_split(cfg.data.train, cfg.task, cfg.data.resolution, cfg.data.max_train_samples)
    val = load_split(cfg.data.val, cfg.task, cfg.data.resolution, cfg.data.max_val_samples)
    load_s = time.perf_counter() - t0
    log.info("loaded %d train + %d val samples in %.1f s", len(train), len(val), load_s)

    seed_everything(cfg.engine.seed)
    model = build_unet(cfg)
    if cfg.task == "depth":
        init_depth_head(model, train)
    flops = forward_flops_per_sample(model, cfg.data.resolution)
    engine = Engine(model, cfg.engine, micro_batch_size=cfg.train.batch_size)
    run = train_loop(cfg, engine, train)

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    engine.export_safetensors(out / "model.safetensors")
    save_config(cfg, out / "config.yaml")
    t1 = time.perf_counter()
    metrics = evaluate_split(engine.module, val, cfg.task, cfg.num_classes, class_names, cfg.train.eval_batch_size, engine.device)
    eval_s = time.perf_counter() - t1
    if cfg.train.example_images:
        write_examples(out / "examples.png", engine.module, val, cfg.task, cfg.train.example_images, class_names, engine.device)
    result = _result(cfg, run, metrics, model, flops, len(train), len(val), load_s, eval_s, engine.device)
    _write_json_atomic(out / "metrics.json", result)
    log.info("%s baseline: %s", cfg.task, {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))})
    return result


def _result(cfg, run, metrics, model, flops, n_train, n_val, load_s, eval_s, device) -> dict:
    samples = run["samples_seen"]
    budget = {
        "steps": run["steps"], "batch_size": cfg.train.batch_size, "samples_seen": samples,
        "epochs": samples / n_train, "train_wall_s": round(run["train_wall_s"], 1),
        "load_wall_s": round(load_s, 1), "eval_wall_s": round(eval_s, 1), "stopped_early": run["stopped_early"],
        "params": sum(p.numel() for p in model.parameters()), "forward_flops_per_sample": flops,
        "train_flops_estimate": 3 * flops * samples,  # backward ~ 2x forward
        "device": str(device), "torch_threads": torch.get_num_threads(),
    }
    data = {"train": cfg.data.train, "val": cfg.data.val, "train_samples": n_train, "val_samples": n_val,
            "resolution": cfg.data.resolution}
    return {"task": cfg.task, "metrics": metrics, "budget": budget, "data": data, "loss_curve": run["loss_curve"]}


# ----------------------------------------------------------------------------- loading and CLI

def load_unet_baseline(folder: str | Path, device: str = "cpu") -> tuple[UNet, UNetBaselineConfig]:
    """A trained baseline from its out_dir (model.safetensors + config.yaml), in eval mode.
    Use `eval.baselines.evaluate.predict(model, rgb, cfg.task)` to run it."""
    from safetensors.torch import load_file

    from fourm.config import load_config

    folder = Path(folder)
    cfg = load_config(folder / "config.yaml", UNetBaselineConfig)
    model = build_unet(cfg)
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device=device))
    return model.to(device).eval(), cfg


def main(argv: Optional[Sequence[str]] = None) -> dict:
    from fourm.config import load_config

    parser = argparse.ArgumentParser(description="Train a U-Net baseline (rgb -> semseg | depth) on raw shards.")
    parser.add_argument("--config", required=True, help="configs/baselines/unet_semseg.yaml or unet_depth.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value, e.g. train.steps=50 data.train=DIR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = train_unet_baseline(load_config(args.config, UNetBaselineConfig, args.overrides))
    print(json.dumps({"task": result["task"], "metrics": result["metrics"], "budget": result["budget"]}, indent=2))
    return result


if __name__ == "__main__":
    main()
