"""The DeepSpeed engine: LR schedule, a 1-process run without a launcher, and a 2-process ZeRO-2
run (torchrun, gloo) that saves, resumes and continues with exactly the losses of an
uninterrupted run. This file is also the worker script torchrun starts."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent


def _batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic data per (step, rank), so a resumed run sees the same batches."""
    gen = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(8, 16, generator=gen)
    return x, x.sum(1, keepdim=True).sin()


class TinyRegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self.net(x), y)


def _train(engine, steps: range) -> list[float]:
    from train.engine import rank

    losses = []
    for step in steps:
        x, y = _batch(step, rank())
        losses.append(engine.step(engine(x, y))["loss"])
    return losses


def worker(out_path: str, ckpt_dir: str, zero_stage: int) -> None:
    """Uninterrupted 6 steps vs 3 steps + save + fresh model + load + 3 steps."""
    from train.engine import Engine, EngineConfig, is_main, seed_everything

    cfg = EngineConfig(zero_stage=zero_stage, device="cpu", lr=3e-3, warmup_steps=2, total_steps=6, grad_clip=1.0)
    seed_everything(0)
    full = _train(Engine(TinyRegressor(), cfg, micro_batch_size=8), range(6))
    seed_everything(0)
    first = Engine(TinyRegressor(), cfg, micro_batch_size=8)
    head = _train(first, range(3))
    first.save(ckpt_dir, {"step": 3})
    seed_everything(123)  # a different init: everything must come from the checkpoint
    resumed = Engine(TinyRegressor(), cfg, micro_batch_size=8)
    state = resumed.load(ckpt_dir)
    tail = _train(resumed, range(state["step"], 6))
    weights = resumed.consolidated_state_dict()
    if is_main():
        Path(out_path).write_text(json.dumps({"full": full, "resumed": head + tail, "global_step": resumed.global_step,
                                              "num_weights": len(weights)}))


def test_an_engine_sets_its_own_cpu_threads_every_time():
    """torch threads are per process: an engine with cpu_threads 0 gets torch's default back even
    after an earlier engine in the process set another count (the quickstart's FourM after its
    one-thread tokenizers)."""
    from train.engine import DEFAULT_CPU_THREADS, Engine, EngineConfig

    before = torch.get_num_threads()
    other = DEFAULT_CPU_THREADS + 1
    try:
        Engine(TinyRegressor(), EngineConfig(device="cpu", cpu_threads=other), micro_batch_size=8)
        assert torch.get_num_threads() == other
        Engine(TinyRegressor(), EngineConfig(device="cpu"), micro_batch_size=8)
        assert torch.get_num_threads() == DEFAULT_CPU_THREADS
    finally:
        torch.set_num_threads(before)


def test_lr_schedule_warmup_then_cosine():
    from train.engine import EngineConfig, lr_multiplier

    cfg = EngineConfig(warmup_steps=4, total_steps=104, min_lr_ratio=0.1)
    assert [lr_multiplier(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_multiplier(54, cfg) == pytest.approx(0.55)
    assert lr_multiplier(104, cfg) == pytest.approx(0.1) and lr_multiplier(500, cfg) == pytest.approx(0.1)


def test_no_weight_decay_on_1d_params():
    from train.engine import parameter_groups

    decay, no_decay = parameter_groups(TinyRegressor(), 0.05)
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0


def test_two_process_zero2_resume_matches_uninterrupted(tmp_path):
    out = tmp_path / "losses.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), DS_ACCELERATOR="cpu")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           __file__, str(out), str(tmp_path / "ckpt"), "2"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["resumed"] == pytest.approx(result["full"], rel=1e-6, abs=1e-7)
    assert result["full"][-1] < result["full"][0]
    assert result["global_step"] == 6 and result["num_weights"] == 6


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    worker(sys.argv[1], sys.argv[2], int(sys.argv[3]))
