"""Train any tokenizer that implements the training contract on the DeepSpeed engine:

    training_loss(x, generator=None) -> (loss, {name: float})
    validation_metrics(x) -> {name: float}
    set_train_step(step)   (optional: for recipes that change with the step, e.g. FlexTok's
                            nested-dropout warm-up)
    save_pretrained(folder); TOKENIZER_TYPES[type](Config) builds it

Raw batches stream from webdataset shards (each rank its own shards, seeded shuffles, endless
epochs), optionally with random crops/flips. Checkpoints + auto-resume, periodic validation, a
progress bar and JSON-lines log on rank 0, optional wandb (offline by default). The trained
tokenizer is saved to `cfg.out` so that `load_tokenizer(cfg.out)` works.

    python -m train.tokenizer_trainer --config configs/tokenizers/depth_scenes.yaml train.steps=100
    torchrun --standalone --nproc_per_node=2 -m train.tokenizer_trainer --config ...
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from fourm.shards import iter_samples, list_shards
from train.tokenizer_config import TokenizerTrainConfig, fill_schedule, load_tokenizer_train_config

log = logging.getLogger(__name__)


def rank_samples(shards: list[str], modality: str, rank: int, world: int, on_error: str) -> Iterator:
    """This rank's share of the samples of `shards`, in order (values of `modality` only)."""
    own_shards = len(shards) >= world
    mine = shards[rank::world] if own_shards else shards
    for i, sample in enumerate(iter_samples(mine, [modality], on_error=on_error)):
        if own_shards or i % world == rank:
            yield sample[modality]


def epoch_stream(shards: list[str], modality: str, seed: int, rank: int, world: int, on_error: str) -> Iterator:
    """Endless samples; the shard order of epoch e is a permutation drawn from (seed, e)."""
    epoch = 0
    while True:
        order = torch.randperm(len(shards), generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
        yield from rank_samples([shards[i] for i in order], modality, rank, world, on_error)
        epoch += 1


def shuffle_buffer(items: Iterator, size: int, generator: torch.Generator) -> Iterator:
    """Reservoir-style streaming shuffle over `size` items (endless input: nothing is flushed)."""
    buffer = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(torch.randint(len(buffer), (1,), generator=generator))
        yield buffer[j]
        buffer[j] = item


def train_batches(data_cfg, modality: str, data_kind: str, batch_size: int, image_size: Optional[int],
                  seed: int, rank: int, world: int, start_batch: int = 0) -> Iterator[torch.Tensor]:
    """Endless raw batches for this rank (see modality_tokenizers.raw.to_tensor), with optional
    random resized crops / flips; the first `start_batch` batches are skipped (resume)."""
    from fourm.tokenize import apply_crop, sample_crop
    from modality_tokenizers.raw import to_tensor

    shards = list_shards(data_cfg.train)
    samples = epoch_stream(shards, modality, seed, rank, world, data_cfg.on_error)
    if data_cfg.shuffle_buffer > 1:
        samples = shuffle_buffer(samples, data_cfg.shuffle_buffer, torch.Generator().manual_seed(seed * 31 + rank))
    augment = data_cfg.crop_min_scale < 1.0 or data_cfg.flip
    index = 0
    while True:
        items = [next(samples) for _ in range(batch_size)]
        index += 1
        if index <= start_batch:
            continue
        batch = to_tensor(data_kind, items)
        if augment:
            gen = torch.Generator().manual_seed(hash((seed, rank, index)) % 2**63)
            size = (image_size, image_size) if image_size else tuple(batch.shape[-2:])
            crops = [sample_crop(gen, batch.shape[-2], batch.shape[-1], data_cfg.crop_min_scale, data_cfg.flip) for _ in items]
            batch = torch.stack([apply_crop(data_kind, x, c, size) for x, c in zip(batch, crops)])
        yield resize_batch(data_kind, batch, image_size)


def model_image_size(tokenizer: nn.Module) -> Optional[int]:
    """The square input size a tokenizer was built for, if its config names one."""
    config = getattr(tokenizer, "config", None) or getattr(tokenizer, "cfg", None)
    return getattr(config, "image_size", None)


def resize_batch(data_kind: str, batch: Any, image_size: Optional[int]) -> Any:
    """Whole-image resize (nearest for class maps, see apply_crop) when the data's size differs."""
    if not image_size or not isinstance(batch, torch.Tensor) or tuple(batch.shape[-2:]) == (image_size, image_size):
        return batch
    from fourm.tokenize import Crop, apply_crop

    full = Crop(0, 0, batch.shape[-2], batch.shape[-1], False)
    return torch.stack([apply_crop(data_kind, x, full, (image_size, image_size)) for x in batch])


def val_batches(data_cfg, modality: str, data_kind: str, batch_size: int, rank: int, world: int,
                count_per_rank: int, image_size: Optional[int] = None) -> Iterator[torch.Tensor]:
    """This rank's first `count_per_rank` validation samples (every world-th), in batches."""
    from modality_tokenizers.raw import to_tensor

    items = []
    for i, sample in enumerate(iter_samples(list_shards(data_cfg.val), [modality], on_error=data_cfg.on_error)):
        if i % world != rank:
            continue
        if count_per_rank <= 0:
            break
        items.append(sample[modality])
        count_per_rank -= 1
        if len(items) == batch_size:
            yield resize_batch(data_kind, to_tensor(data_kind, items), image_size)
            items = []
    if items:
        yield resize_batch(data_kind, to_tensor(data_kind, items), image_size)


def pass_batches(source: str, modality: str, data_kind: str, batch_size: int, image_size: Optional[int],
                 on_error: str) -> Iterator[torch.Tensor]:
    """Every sample of `source` once, in shard order, in raw batches (no augmentation)."""
    from modality_tokenizers.raw import to_tensor

    items = []
    for sample in iter_samples(list_shards(source), [modality], on_error=on_error):
        items.append(sample[modality])
        if len(items) == batch_size:
            yield resize_batch(data_kind, to_tensor(data_kind, items), image_size)
            items = []
    if items:
        yield resize_batch(data_kind, to_tensor(data_kind, items), image_size)


def describe_codes(tokenizer: nn.Module, cfg: TokenizerTrainConfig, data_kind: str) -> dict:
    """What each code draws, measured over the training data (grid tokenizers, for FourM's code
    appearance embeddings; see modality_tokenizers/grid/appearance.py). {} for other tokenizers."""
    if not hasattr(tokenizer, "describe_codes"):
        return {}
    batches = pass_batches(cfg.data.train, raw_field(cfg.modality), data_kind, cfg.train.batch_size, model_image_size(tokenizer),
                           cfg.data.on_error)
    result = tokenizer.describe_codes(batches)
    log.info("%s: measured what its codes draw (%d of %d codes seen)", cfg.modality, result["codes_seen"],
             result["vocab_size"])
    return result


def count_samples(source: str, on_error: str) -> int:
    return sum(1 for _ in iter_samples(list_shards(source), [], on_error=on_error))


# ----------------------------------------------------------------------------- model + validation

class TrainingLoss(nn.Module):
    """Puts the tokenizer's training contract behind `forward`, so DeepSpeed's hooks (ZeRO-3
    parameter gathering) run: forward(x, generator) -> (loss, metrics); validate=True -> metrics."""

    def __init__(self, tokenizer: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None, validate: bool = False) -> Any:
        # Under DeepSpeed bf16 the weights are bf16 while images, noise and fixed tables are fp32:
        # autocast inside the engine (it switches an outer one off) casts wherever they meet.
        dtype = next(self.parameters()).dtype
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            if validate:
                return self.tokenizer.validation_metrics(x)
            return self.tokenizer.training_loss(x, generator=generator)

    def no_weight_decay(self) -> set:
        inner = self.tokenizer.no_weight_decay() if hasattr(self.tokenizer, "no_weight_decay") else set()
        return {f"tokenizer.{name}" for name in inner}


def build_tokenizer(cfg: TokenizerTrainConfig) -> nn.Module:
    from modality_tokenizers.base import TOKENIZER_TYPES

    model_cfg = cfg.model_config()
    return TOKENIZER_TYPES[cfg.model_type](model_cfg)


def raw_field(modality: str) -> str:
    """The field of `modality` in raw shards (its raw_ext stem): two modalities may tokenize one file,
    e.g. rgb (FlexTok) and rgb_grid both read <key>.rgb.png."""
    from fourm.modalities import load_registry
    from fourm.tokenize import shard_field

    return shard_field(load_registry([modality])[modality])


def validate(engine, cfg: TokenizerTrainConfig, data_kind: str, val_count: int) -> dict:
    """Mean validation metrics over this split's first `val_count` samples, across all ranks."""
    from train.engine import rank, world_size

    per_rank = val_count // world_size()
    sums: dict[str, float] = {}
    seen = 0
    engine.eval()
    with torch.no_grad():
        size = model_image_size(engine.module.tokenizer)
        for x in val_batches(cfg.data, raw_field(cfg.modality), data_kind, cfg.train.batch_size, rank(), world_size(), per_rank, size):
            metrics = engine(_to_device(x, engine.device), validate=True)
            for name, value in metrics.items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(x)
            seen += len(x)
    engine.train()
    names = sorted(sums)
    totals = engine.all_reduce_sum(torch.tensor([sums[n] for n in names] + [seen], dtype=torch.float64))
    return {f"val/{n}": float(totals[i] / max(float(totals[-1]), 1.0)) for i, n in enumerate(names)}


def _to_device(x: Any, device: torch.device) -> Any:
    return x.to(device) if isinstance(x, torch.Tensor) else x


# ----------------------------------------------------------------------------- logging

class RunLog:
    """JSON lines in out/log.jsonl (+ wandb when enabled), rank 0 only."""

    def __init__(self, cfg: TokenizerTrainConfig, enabled: bool) -> None:
        self.enabled = enabled
        self.path = Path(cfg.out) / "log.jsonl"
        self.wandb = None
        if enabled and cfg.wandb.enabled:
            import wandb

            from fourm.config import to_dict

            self.wandb = wandb.init(project=cfg.wandb.project, mode=cfg.wandb.mode, name=cfg.wandb.name or None,
                                    dir=str(Path(cfg.out)), config=to_dict(cfg), resume="allow")

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()


# ----------------------------------------------------------------------------- the loop

def train_tokenizer(cfg: TokenizerTrainConfig) -> dict:
    """Train (or resume training) the tokenizer of `cfg`; returns the final validation metrics
    plus {"step", "minutes", "skipped_steps"}. Saves the tokenizer to `cfg.out`."""
    from fourm.config import save_config
    from fourm.modalities import load_registry
    from train.engine import Engine, is_main, rank, seed_everything, world_size

    cfg = fill_schedule(cfg)
    spec = load_registry([cfg.modality])[cfg.modality]
    out, ckpt_dir = Path(cfg.out), Path(cfg.out) / "checkpoints"
    seed_everything(cfg.engine.seed)
    tokenizer = build_tokenizer(cfg)
    _check_fits(tokenizer, spec)
    engine = Engine(TrainingLoss(tokenizer), cfg.engine, micro_batch_size=cfg.train.batch_size)
    main = is_main()
    check_resumable(cfg)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "train_config.yaml")
    step = int((engine.load(ckpt_dir) or {}).get("step", 0))
    val_count = _val_count(cfg)
    run_log = RunLog(cfg, main)
    start = time.time()
    step = _run_steps(engine, cfg, spec.data, step, val_count, run_log)
    final = validate(engine, cfg, spec.data, val_count) if val_count else {}
    engine.save(ckpt_dir, {"step": step})
    _save_tokenizer(engine, cfg, out, main, spec.data)
    result = {**final, "step": step, "minutes": (time.time() - start) / 60, "skipped_steps": engine.skipped_steps}
    run_log.write({"event": "final", **result})
    run_log.close()
    if main:
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        log.info("saved tokenizer to %s: %s", out, result)
    return result


def saved_model_differs(cfg: TokenizerTrainConfig) -> bool:
    """True when `cfg.out` holds a run whose model section is not `cfg`'s (its checkpoints would
    load into the wrong network). Other changes, such as more steps, resume the run."""
    from fourm.config import read_yaml, to_dict

    saved = Path(cfg.out) / "train_config.yaml"
    return saved.is_file() and read_yaml(saved).get("model") != to_dict(cfg)["model"]


def check_resumable(cfg: TokenizerTrainConfig) -> None:
    if saved_model_differs(cfg) and any((Path(cfg.out) / "checkpoints").glob("*")):
        raise ValueError(f"{cfg.out}: holds checkpoints of a different model (train_config.yaml 'model' "
                         "differs from this config); delete the folder or set another 'out'")


def _check_fits(tokenizer, spec) -> None:
    """The tokenizer must take the modality's raw data and emit what the registry declares."""
    data = getattr(getattr(tokenizer, "config", None), "data", spec.data)
    if data != spec.data:
        raise ValueError(f"model.data is {data!r} but modality '{spec.name}' holds {spec.data!r}")
    if tokenizer.vocab_size != spec.vocab_size or tokenizer.max_tokens != spec.max_tokens:
        log.warning("tokenizer gives vocab %d / %d tokens but configs/modalities/%s.yaml says %d / %d",
                    tokenizer.vocab_size, tokenizer.max_tokens, spec.name, spec.vocab_size, spec.max_tokens)


def _val_count(cfg: TokenizerTrainConfig) -> int:
    if not cfg.data.val:
        return 0
    total = count_samples(cfg.data.val, cfg.data.on_error)
    return min(total, cfg.data.val_samples) if cfg.data.val_samples > 0 else total


def _run_steps(engine, cfg: TokenizerTrainConfig, data_kind: str, step: int, val_count: int, run_log: RunLog) -> int:
    """Optimizer steps from `step` to cfg.train.steps; returns the last step."""
    from tqdm import tqdm

    from train.engine import is_main, rank, world_size

    loop, accum = cfg.train, cfg.engine.grad_accum
    image_size = model_image_size(engine.module.tokenizer)
    batches = train_batches(cfg.data, raw_field(cfg.modality), data_kind, loop.batch_size, image_size, loop.seed,
                            rank(), world_size(), start_batch=step * accum)
    bar = tqdm(total=loop.steps, initial=step, disable=not (is_main() and loop.progress), desc=f"tokenizer {cfg.modality}")
    tick, tick_step = time.time(), step
    while step < loop.steps:
        if hasattr(engine.module.tokenizer, "set_train_step"):
            engine.module.tokenizer.set_train_step(step)
        for micro in range(accum):
            # a CPU generator: tokenizers draw on the CPU and move the draws (same draws on any device)
            gen = torch.Generator().manual_seed(loop.seed * 100_003 + rank() * 10_007 + step * accum + micro)
            loss, metrics = engine(_to_device(next(batches), engine.device), generator=gen)
            info = engine.step(loss)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{info['loss']:.4f}")
        if loop.log_every and step % loop.log_every == 0:
            rate = (step - tick_step) / max(time.time() - tick, 1e-9)
            tick, tick_step = time.time(), step
            run_log.write({"step": step, **{k: v for k, v in info.items() if k in ("loss", "lr", "grad_norm")},
                           **{f"train/{k}": v for k, v in metrics.items()}, "it_s": rate})
        if loop.val_every and step % loop.val_every == 0 and step < loop.steps and val_count:
            run_log.write({"step": step, **validate(engine, cfg, data_kind, val_count)})
        if loop.ckpt_every and step % loop.ckpt_every == 0 and step < loop.steps:
            engine.save(Path(cfg.out) / "checkpoints", {"step": step})
    bar.close()
    return step


def _save_tokenizer(engine, cfg: TokenizerTrainConfig, out: Path, main: bool, data_kind: str) -> None:
    """Consolidated weights (gathered under ZeRO-3) into a fresh CPU fp32 tokenizer, saved on rank 0
    (the trained module itself may hold partitioned or bf16 parameters) with what its codes draw."""
    state = engine.consolidated_state_dict()
    if main:
        prefix = "tokenizer."
        tokenizer = build_tokenizer(cfg)
        tokenizer.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        describe_codes(tokenizer.eval(), cfg, data_kind)
        tokenizer.save_pretrained(out)
    engine.barrier()


# ----------------------------------------------------------------------------- entry point

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a modality tokenizer on the DeepSpeed engine.")
    parser.add_argument("--config", required=True, help="YAML under configs/tokenizers/")
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from train.engine import is_main

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if is_main() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_tokenizer_train_config(args.config, args.overrides)
    result = train_tokenizer(cfg)
    if is_main():
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
