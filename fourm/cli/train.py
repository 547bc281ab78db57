"""`fourm train --config configs/train/X.yaml [key.sub=value ...] [--nproc N]`: FourM pre-training.

--nproc N re-launches itself under torchrun with N processes (gloo on CPU, one per GPU on a GPU
node). Multi-node: use the DeepSpeed launcher with a hostfile (see train/fourm_trainer.py)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="pre-train a FourM (DeepSpeed)", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a FourMTrainConfig YAML, e.g. configs/train/tiny.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. steps=100 engine.lr=1e-3")
    parser.add_argument("--nproc", type=int, default=0, help="launch N processes on this machine with torchrun")
    parser.set_defaults(func=handler)


def handler(args) -> int:
    if args.nproc and "LOCAL_RANK" not in os.environ:
        return _relaunch(args)
    from train.fourm_config import load_train_config
    from train.fourm_trainer import train

    cfg = load_train_config(args.config, args.overrides)
    train(cfg)
    return 0


def _relaunch(args) -> int:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "fourm", "train", "--config", args.config, *args.overrides]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(cmd, env=env)
