"""Run a training entry point in this process, or over N local processes with torchrun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence


def torchrun(module: str, args: Sequence[str], nproc: int) -> None:
    """`python -m torch.distributed.run --standalone --nproc_per_node=N -m module args` (gloo on CPU).
    One OpenMP thread per rank unless the caller set OMP_NUM_THREADS (ranks share the cores)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", module, *args]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    code = subprocess.call(cmd, env=env)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}")


def run_tokenizer_training(config_path: str, overrides: Sequence[str] = (), nproc: int = 1) -> dict:
    """Train a neural tokenizer; returns its final metrics (also in <out>/metrics.json)."""
    from train.tokenizer_config import load_tokenizer_train_config

    cfg = load_tokenizer_train_config(config_path, overrides)
    if nproc <= 1:
        from train.tokenizer_trainer import train_tokenizer

        return train_tokenizer(cfg)
    torchrun("train.tokenizer_trainer", ["--config", config_path, *overrides], nproc)
    return json.loads((Path(cfg.out) / "metrics.json").read_text())
