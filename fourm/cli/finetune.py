"""`fourm finetune --config configs/finetune/X.yaml [key.sub=value ...] [--nproc N]`: fine-tune a
trained FourM (add modalities, transfer to a task; full or LoRA). See train/finetune.py."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("finetune", help="fine-tune a trained FourM (new modalities, tasks, LoRA)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a FinetuneConfig YAML, e.g. configs/finetune/normals.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. steps=100 method=lora")
    parser.add_argument("--nproc", type=int, default=0, help="launch N processes on this machine with torchrun")
    parser.set_defaults(func=handler)


def handler(args) -> int:
    from train.finetune_config import load_finetune_config

    cfg = load_finetune_config(args.config, args.overrides)  # config errors before any launch
    if args.nproc and "LOCAL_RANK" not in os.environ:
        from train.finetune import check_config

        check_config(cfg)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "fourm", "finetune", "--config", args.config, *args.overrides]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        return subprocess.call(cmd, env=env)
    from train.finetune import finetune

    finetune(cfg)
    if os.environ.get("RANK", "0") == "0":
        print(f"fine-tuned model saved to {cfg.run_dir}/model")
    return 0
