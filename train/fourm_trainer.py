"""FourM pre-training on the DeepSpeed engine: masked token batches in, checkpoints and metrics out.

    fourm train --config configs/train/tiny.yaml [key.sub=value ...]             # 1 process
    fourm train --config configs/train/micro.yaml --nproc 2                       # 2 CPU processes (gloo)
    torchrun --standalone --nproc_per_node=2 -m fourm train --config ...          # the same by hand
    deepspeed --hostfile hostfile --num_gpus 8 --module fourm train --config ...  # GPUs, multi-node

A hostfile lists one node per line, `worker-1 slots=8`; every node needs the repository and the
data at the same paths and passwordless ssh from the first node. On GPUs set `engine.precision=bf16`
and usually `engine.zero_stage=2`.

The run directory holds `checkpoints/` (DeepSpeed checkpoints carrying the number of batches
consumed, so a restarted run resumes the data stream exactly where it stopped), `metrics.jsonl`
(one JSON object per logged step / validation), `config.yaml` and, at the end, `model/`
(`FourM.from_pretrained` loads it).
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import torch

from train.fourm_config import FourMTrainConfig

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- building

def build_model(cfg: FourMTrainConfig):
    """A new FourM of `cfg.model`, with the code appearance tables of its grid tokenizers filled in."""
    from fourm.modalities import load_registry
    from fourm.model import FourM, preset_config
    from fourm.paths import resolve
    from train.code_appearance import code_appearance_tables

    m = cfg.model
    folder = resolve(m.modality_folder) if m.modality_folder else None
    specs = load_registry(m.modalities, folder)
    fields = ("dim", "encoder_depth", "decoder_depth", "heads", "mlp_ratio", "norm", "qk_norm", "bias",
              "block_cross_modality", "causal_kinds", "grid_position_units", "grid_cross_bias", "patch_stem")
    overrides = {k: getattr(m, k) for k in fields if getattr(m, k) is not None}
    tables = code_appearance_tables(specs, m.code_appearance)
    if tables:
        overrides["code_appearance"] = {name: table.shape[1] for name, table in tables.items()}
    model = FourM(preset_config(m.preset, list(specs.values()), **overrides))
    if tables:
        model.set_code_appearance(tables)
    return model


class MetricsLog:
    """JSON lines + console + optional wandb, on rank 0 only."""

    def __init__(self, cfg: FourMTrainConfig, main: bool):
        self.main = main
        self.path = Path(cfg.run_dir) / "metrics.jsonl"
        self.wandb = None
        if main and cfg.wandb != "off":
            import wandb

            from fourm.config import to_dict

            self.wandb = wandb.init(project=cfg.wandb_project, dir=cfg.run_dir, mode=cfg.wandb, config=to_dict(cfg), resume="allow")

    def write(self, record: dict) -> None:
        if not self.main:
            return
        record = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in record.items() if k != "step" and v is not None}, step=record["step"])

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()


# ----------------------------------------------------------------------------- steps

def _reduce_losses(engine, losses: Mapping[str, torch.Tensor], names, tokens: int) -> tuple[dict, int]:
    """Per-modality losses averaged over the ranks that had them; token count summed over ranks."""
    values = [float(losses[n]) if n in losses else 0.0 for n in names]
    present = [1.0 if n in losses else 0.0 for n in names]
    total = engine.all_reduce_sum(torch.tensor(values + present + [float(tokens)]))
    k = len(names)
    out = {n: float(total[i] / total[k + i]) for i, n in enumerate(names) if total[k + i] > 0}
    return out, int(total[-1])


def train_step(engine, loader: Iterator, names, grad_accum: int) -> dict:
    """One optimizer step of `grad_accum` micro-batches. Returns loss, per-modality losses, tokens."""
    from fourm.model import batch_to, count_tokens

    sums: dict[str, list[float]] = {}
    losses, tokens, skipped = [], 0, 0
    for _ in range(grad_accum):
        batch = batch_to(next(loader), engine.device)
        n_in, n_tgt = count_tokens(batch)
        out = engine(batch)
        info = engine.step(out.loss)
        per_mod, all_tokens = _reduce_losses(engine, {k: v.detach() for k, v in out.losses.items()}, names, n_in + n_tgt)
        tokens += all_tokens
        skipped += int(info["skipped"])
        if not info["skipped"]:
            losses.append(info["loss"])
            for k, v in per_mod.items():
                sums.setdefault(k, []).append(v)
    loss = sum(losses) / len(losses) if losses else float("nan")
    return {"loss": loss, "losses": {k: sum(v) / len(v) for k, v in sums.items()}, "tokens": tokens,
            "skipped": skipped, "lr": info["lr"], "grad_norm": info.get("grad_norm", float("nan"))}


@torch.no_grad()
def evaluate(engine, val_batches: Mapping[str, list]) -> dict:
    """Mean validation loss per task: 'mixed' (+ its per-modality losses) and each direction."""
    from fourm.model import batch_to

    engine.eval()
    out = {}
    for task, batches in val_batches.items():
        totals: dict[str, list[float]] = {}
        for batch in batches:
            result = engine(batch_to(batch, engine.device))
            totals.setdefault("loss", []).append(float(result.loss))
            if task == "mixed":
                for k, v in result.losses.items():
                    totals.setdefault(k, []).append(float(v))
        for k, v in totals.items():
            out[f"val/{task}" if k == "loss" else f"val/{task}/{k}"] = sum(v) / len(v)
    engine.train()
    return out


# ----------------------------------------------------------------------------- the run

def train(cfg: FourMTrainConfig, stop_after: Optional[int] = None, text_tokenizers: Optional[Mapping[str, Any]] = None) -> dict:
    """Train (resuming from run_dir/checkpoints if there is one). `stop_after`: return after that
    optimizer step without the final checkpoint, as if killed (for tests). Returns the last
    metrics."""
    from train.engine import seed_everything

    seed_everything(cfg.engine.seed)
    return train_model(cfg, build_model(cfg), stop_after, text_tokenizers)


def train_model(cfg: FourMTrainConfig, model, stop_after: Optional[int] = None,
                text_tokenizers: Optional[Mapping[str, Any]] = None, masker=None, export=None) -> dict:
    """The training run of `train` on a model built by the caller (fine-tuning reuses it with a
    partly frozen or LoRA-wrapped model). `masker`: replaces the one of cfg.data.masking (any
    callable (sample, generator) -> masked sample with a `direction` method); `export(engine,
    folder)`: replaces the default export of the consolidated weights to run_dir/model."""
    import dataclasses

    from fourm.config import save_config
    from fourm.data import TokenStream, build_masker, load_text_tokenizers, make_loader, validation_batches
    from train.engine import Engine, is_main, rank, world_size

    engine_cfg = cfg.engine if cfg.engine.total_steps else dataclasses.replace(cfg.engine, total_steps=cfg.steps)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = model.config
    engine = Engine(model, engine_cfg, micro_batch_size=cfg.data.batch_size)
    if is_main():
        save_config(cfg, run_dir / "config.yaml")
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log.info("FourM dim %d: %.2fM parameters (%.2fM trained), %d rank(s)", model_cfg.dim,
                 engine.module.num_parameters() / 1e6, trainable / 1e6, world_size())
    state = engine.load(run_dir / "checkpoints") or {}
    batches = int(state.get("batches", 0))

    specs = list(model_cfg.modalities)
    names = [s.name for s in specs]
    tokenizers = dict(text_tokenizers) if text_tokenizers is not None else load_text_tokenizers(cfg.data, specs)
    masker = masker or build_masker(cfg.data, specs, tokenizers)
    stream = TokenStream(cfg.data, specs, masker, tokenizers, seed=engine_cfg.seed, rank=rank(),
                         world_size=world_size(), start_batch=batches)
    loader = iter(make_loader(stream, cfg.data.num_workers))
    val = validation_batches(cfg.data, specs, masker, tokenizers, engine_cfg.seed) if cfg.data.val else {}
    metrics = MetricsLog(cfg, is_main())
    last = _loop(cfg, engine, loader, names, val, metrics, batches, stop_after)
    metrics.close()
    if stop_after is None or engine.global_step >= cfg.steps:
        if export is not None:
            export(engine, run_dir / "model")
        else:
            _export(engine, model_cfg, run_dir / "model")
    return last


def _loop(cfg, engine, loader, names, val, metrics, batches: int, stop_after) -> dict:
    from train.engine import is_main

    grad_accum = engine.cfg.grad_accum
    bar = _progress(cfg, engine.global_step) if is_main() else None
    last, window_tokens, window_start = {}, 0, time.perf_counter()
    while engine.global_step < cfg.steps:
        result = train_step(engine, loader, names, grad_accum)
        batches += grad_accum
        step = engine.global_step
        window_tokens += result["tokens"]
        elapsed = time.perf_counter() - window_start
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{result['loss']:.3f}", tok_s=f"{window_tokens / max(elapsed, 1e-9):.0f}")
        if cfg.log_every and (step % cfg.log_every == 0 or step == cfg.steps):
            last = {"step": step, "loss": result["loss"], "lr": result["lr"], "grad_norm": result["grad_norm"],
                    "tokens_per_s": window_tokens / max(elapsed, 1e-9), "skipped_steps": engine.skipped_steps,
                    **{f"loss/{k}": v for k, v in result["losses"].items()}}
            metrics.write(last)
            log.info("step %d loss %.4f %s", step, result["loss"],
                     " ".join(f"{k}={v:.3f}" for k, v in result["losses"].items()))
            window_tokens, window_start = 0, time.perf_counter()
        final = step >= cfg.steps
        if val and ((cfg.val_every and step % cfg.val_every == 0) or final):
            record = {"step": step, **evaluate(engine, val)}
            metrics.write(record)
            log.info("validation at step %d: %s", step, " ".join(f"{k}={v:.3f}" for k, v in record.items() if k != "step"))
            last = {**last, **record}
        if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or final:
            engine.save(Path(cfg.run_dir) / "checkpoints", {"batches": batches, "step": step})
        if stop_after is not None and step >= stop_after:
            break
    if bar is not None:
        bar.close()
    return last


def _progress(cfg: FourMTrainConfig, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, initial=start, desc="fourm train", disable=not cfg.progress, dynamic_ncols=True)


def _export(engine, model_cfg, folder: Path) -> None:
    """Consolidated weights (all ranks take part under ZeRO-3) -> FourM.save_pretrained on rank 0."""
    from fourm.model import FourM

    state = engine.consolidated_state_dict()
    if state is not None:
        model = FourM(model_cfg)
        model.load_state_dict(state, strict=True)
        model.save_pretrained(folder)
        log.info("saved the trained model to %s", folder)
    engine.barrier()
