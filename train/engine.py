"""The DeepSpeed engine behind every training run (tokenizers and FourM). The only module in the
project that imports deepspeed, and only inside functions, so importing it is cheap.

    engine = Engine(model, EngineConfig(zero_stage=2), micro_batch_size=32)
    client_state = engine.load(ckpt_dir) or {}        # auto-resume from the latest checkpoint
    loss, metrics = engine(x)                         # the model's forward (any signature)
    info = engine.step(loss)                          # backward, clip, optimizer + LR step
    engine.save(ckpt_dir, {"step": step})             # DeepSpeed checkpoint, old ones pruned
    state = engine.consolidated_state_dict()          # full fp32 weights on rank 0 (ZeRO-3 too)

Runs with 1 process without any launcher, under `torchrun --standalone --nproc_per_node=N` and
under the `deepspeed` launcher; on CPU it uses gloo and skips DeepSpeed's shared-memory op build.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import torch
from torch import nn

log = logging.getLogger(__name__)
DEFAULT_CPU_THREADS = torch.get_num_threads()  # torch's choice (OMP_NUM_THREADS or the cores) before any engine


@dataclass(frozen=True)
class EngineConfig:
    """How a model is optimised.

    zero_stage:   DeepSpeed ZeRO stage 0-3
    precision:    fp32 | bf16 (bf16 is ~45x slower on CPUs without native bf16: use it on GPUs)
    device:       auto (cuda when available) | cpu | cuda
    lr, weight_decay, betas, eps: AdamW; no weight decay on 1-D params (norms, biases) nor on
                  names the model lists in `no_weight_decay()`
    grad_clip:    max global gradient norm (0: off)
    grad_accum:   micro-batches per optimizer step
    warmup_steps: linear warmup, in optimizer steps
    total_steps:  length of the cosine schedule in optimizer steps (0: the trainer fills it in)
    schedule:     cosine (to min_lr_ratio * lr) | constant (after warmup)
    seed:         seed of model init and data order
    keep_checkpoints: how many checkpoints `save` keeps
    cpu_threads:  torch threads per process on CPU (0: torch's default at import). On a busy shared CPU, 1 is
                  ~15x faster than 2 (oversubscribed OpenMP threads spin-wait)
    """

    zero_stage: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0
    grad_accum: int = 1
    warmup_steps: int = 0
    total_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1
    seed: int = 0
    keep_checkpoints: int = 2
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        if self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum must be >= 1, got {self.grad_accum}")


# ----------------------------------------------------------------------------- process group

def rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", 0))


def world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return rank() == 0


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_distributed(device: str = "auto") -> None:
    """Start the process group once. Without a launcher, acts as rank 0 of 1 (DeepSpeed would
    otherwise look for MPI). On CPU: gloo, and no shared-memory op build (2-4 min, not needed)."""
    if "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    os.environ.setdefault("LOCAL_RANK", os.environ.get("RANK", "0"))
    device = resolve_device(device)
    if device == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import importlib

    import deepspeed

    if device == "cpu":
        # importlib, not `import deepspeed.comm.torch as m`: the package attribute `torch` is PyTorch itself.
        ds_torch_comm = importlib.import_module("deepspeed.comm.torch")
        ds_torch_comm.build_shm_op = lambda *args, **kwargs: None  # gloo does the communication
    if not (torch.distributed.is_initialized()):
        deepspeed.init_distributed(dist_backend="gloo" if device == "cpu" else "nccl", verbose=False)
    if device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))


# ----------------------------------------------------------------------------- optimiser

def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only: 1-D params (norms, biases) and names in `model.no_weight_decay()` don't."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        excluded = param.ndim < 2 or name in skip or any(name.endswith("." + s) for s in skip)
        (no_decay if excluded else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]  # ZeRO drops empty groups, and the LR scheduler must see the same count


def lr_multiplier(step: int, cfg: EngineConfig) -> float:
    """LR factor at optimizer step `step`: linear warmup, then cosine to min_lr_ratio (or constant)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant" or cfg.total_steps <= cfg.warmup_steps:
        return 1.0
    progress = min(1.0, (step - cfg.warmup_steps) / (cfg.total_steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def deepspeed_config(cfg: EngineConfig, micro_batch_size: int, world: int) -> dict:
    return {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": micro_batch_size * cfg.grad_accum * world,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": cfg.precision == "bf16"},
        "zero_allow_untested_optimizer": True,  # a client torch AdamW: no FusedAdam build
        "steps_per_print": 10**12,
        "wall_clock_breakdown": False,
    }


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- the engine

class Engine:
    """A model wrapped by DeepSpeed with a client AdamW and a warmup + cosine LR schedule.

    `engine(*args)` runs the model's forward; `step(loss)` does backward, gradient clipping and
    (at accumulation boundaries) the optimizer and LR step. A non-finite loss on any rank skips the
    micro-step on all ranks and is counted in `skipped_steps`.
    """

    def __init__(self, model: nn.Module, cfg: EngineConfig, micro_batch_size: int = 1) -> None:
        init_distributed(cfg.device)
        import deepspeed

        self.cfg = cfg
        self.device_type = resolve_device(cfg.device)
        if self.device_type == "cpu":
            # Always set: torch threads are per process, and an earlier engine in the same process
            # (the quickstart trains 1-thread tokenizers before a 2-thread FourM) would leave its own.
            torch.set_num_threads(cfg.cpu_threads or DEFAULT_CPU_THREADS)
        optimizer = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, cfg))
        self.ds, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler,
            config=deepspeed_config(cfg, micro_batch_size, world_size()))
        self.skipped_steps = 0

    # -------------------------------------------------------------- basics
    @property
    def module(self) -> nn.Module:
        """The wrapped model (its params are partitioned under ZeRO-3: use `engine(...)` to run it)."""
        return self.ds.module

    @property
    def device(self) -> torch.device:
        return self.ds.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.cfg.precision == "bf16" else torch.float32

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (restored by `load`)."""
        return self.ds.global_steps

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # No autocast here: DeepSpeed's forward switches an outer CUDA autocast off. In bf16 the
        # parameters are bf16; a model whose fp32 inputs meet them autocasts inside its own forward.
        return self.ds(*args, **kwargs)

    def train(self, mode: bool = True) -> None:
        self.ds.train(mode)

    def eval(self) -> None:
        self.ds.eval()

    # -------------------------------------------------------------- collectives
    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a float tensor over ranks (returns a new CPU tensor; a no-op for 1 process)."""
        values = values.detach().double().to(self.device if self.device_type == "cuda" else "cpu")
        if world_size() > 1:
            torch.distributed.all_reduce(values)
        return values.cpu()

    def barrier(self) -> None:
        if world_size() > 1:
            torch.distributed.barrier()

    # -------------------------------------------------------------- training step
    def step(self, loss: torch.Tensor) -> dict:
        """Backward + clip + optimizer/LR step. Returns {loss (mean over ranks), lr, grad_norm,
        skipped, boundary, global_step}; `grad_norm` only at accumulation boundaries."""
        stats = self.all_reduce_sum(torch.stack([loss.detach().float().nan_to_num(0.0, 0.0, 0.0),
                                                 (~torch.isfinite(loss.detach())).float()]))
        info = {"loss": float(stats[0]) / world_size(), "lr": self.lr, "skipped": bool(stats[1] > 0)}
        if info["skipped"]:
            self.skipped_steps += 1
            info["loss"] = float("nan")
            log.warning("non-finite loss on %d rank(s): micro-step skipped (%d so far)", int(stats[1]), self.skipped_steps)
            return {**info, "boundary": False, "global_step": self.global_step}
        boundary = self.ds.is_gradient_accumulation_boundary()
        self.ds.backward(loss)
        self.ds.step()
        info.update(boundary=boundary, global_step=self.global_step)
        if boundary:
            norm = self.ds.get_global_grad_norm()  # None when DeepSpeed did not compute it (ZeRO-0)
            if norm is not None:
                info["grad_norm"] = float(norm)
        return info

    # -------------------------------------------------------------- checkpoints
    def save(self, folder: str | os.PathLike, client_state: Optional[dict] = None, tag: Optional[str] = None) -> str:
        """Save a DeepSpeed checkpoint (all ranks must call); keeps the newest `keep_checkpoints`."""
        tag = tag or f"step{self.global_step:08d}"
        client_state = dict(client_state or {}, skipped_steps=self.skipped_steps)
        self.ds.save_checkpoint(str(folder), tag=tag, client_state=client_state)
        self.barrier()
        if is_main():
            _prune_checkpoints(Path(folder), keep=self.cfg.keep_checkpoints)
        self.barrier()
        return tag

    def load(self, folder: str | os.PathLike) -> Optional[dict]:
        """Resume from the latest checkpoint in `folder`: returns its client_state, or None if there is none."""
        if not (Path(folder) / "latest").is_file():
            return None
        path, client_state = self.ds.load_checkpoint(str(folder))
        if path is None:
            raise RuntimeError(f"{folder}: could not load the latest DeepSpeed checkpoint")
        client_state = client_state or {}
        self.skipped_steps = int(client_state.get("skipped_steps", 0))
        if is_main():
            log.info("resumed from %s (optimizer step %d)", path, self.global_step)
        return client_state

    # -------------------------------------------------------------- export
    def consolidated_state_dict(self) -> Optional[dict]:
        """The full model state dict in fp32 on CPU, on rank 0 (None elsewhere). All ranks must call:
        under ZeRO-3 the partitioned parameters are gathered first."""
        if self.cfg.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.module.parameters()), modifier_rank=None):
                state = _cpu_fp32(self.module.state_dict()) if is_main() else None
        else:
            state = _cpu_fp32(self.module.state_dict()) if is_main() else None
        self.barrier()
        return state

    def export_safetensors(self, path: str | os.PathLike) -> None:
        """Write the consolidated weights as safetensors (rank 0 writes; all ranks must call)."""
        from safetensors.torch import save_file

        state = self.consolidated_state_dict()
        if state is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = str(path) + ".tmp"
            save_file(state, tmp)
            os.replace(tmp, path)
        self.barrier()


def _cpu_fp32(state: dict) -> dict:
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().clone().contiguous() for k, v in state.items()}


def _prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoint tags (never the one 'latest' names)."""
    latest = (folder / "latest").read_text().strip() if (folder / "latest").is_file() else None
    tags = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in tags[: max(0, len(tags) - keep)]:
        if old.name != latest:
            shutil.rmtree(old, ignore_errors=True)


def fp32_state_dict_from_checkpoint(folder: str | os.PathLike, tag: Optional[str] = None) -> dict:
    """Consolidate a ZeRO (1-3) checkpoint into one fp32 state dict offline (DeepSpeed's zero_to_fp32)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=tag)
