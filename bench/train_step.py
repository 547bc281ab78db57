"""Training-step throughput of a FourM preset: tokens/s and model FLOPs utilisation (MFU).

    python bench/train_step.py --preset tiny --batch 8
    python bench/train_step.py --preset B --batch 8 --steps 3

MFU = achieved model FLOP/s ÷ the matmul peak measured in the same run (an fp32 n×n matmul,
best of several; bf16 with --precision bf16 on GPUs). Model FLOPs per step are counted
analytically from the shapes the step actually runs (padded encoder/decoder lengths):
2·params·tokens for every linear layer, 4·Lq·Lk·D per attention, the output head of each
modality on its target tokens; backward = 2× forward. Batches come from the real masking config
over random tokens of the real modality specs (FlexTok rgb: 256 tokens, vocab 64,000).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch


def matmul_peak(device: str, dtype: torch.dtype, n: int) -> float:
    """Best FLOP/s of an n×n×n matmul over a few repeats."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        (a @ b).sum().item()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def profiler(enabled: bool, device: str):
    """torch.profiler over the timed steps (a null context when not asked for)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device == "cuda" else [])
    return torch.profiler.profile(activities=acts)


def step_flops(model, batch) -> float:
    """Forward+backward FLOPs of one step on `batch` (see the module docstring)."""
    c = model.config
    D = c.dim
    mlp = model.encoder[0].mlp.down.in_features if c.encoder_depth else int(math.ceil(2 / 3 * c.mlp_ratio * D / 8) * 8)
    g_in = model._gather(batch, "is_input")
    g_tgt = model._gather(batch, "is_target")
    B, S = g_in.ids.shape[0], g_in.ids.shape[1] + 1  # + register token
    T = g_tgt.ids.shape[1]
    linear_per_token = 4 * D * D + 3 * D * mlp
    enc = c.encoder_depth * B * (2 * linear_per_token * S + 4 * S * S * D)
    dec_per_layer = 2 * B * T * (linear_per_token + 2 * D * D) + 2 * B * S * 2 * D * D + B * (4 * T * T * D + 4 * T * S * D)
    dec = c.decoder_depth * dec_per_layer
    heads = sum(2 * D * spec.vocab_size * int(batch[spec.name].is_target.sum()) for spec in c.modalities if spec.name in batch)
    return 3.0 * (enc + dec + heads)


def make_batches(specs, masking: str, batch: int, count: int, seed: int):
    from fourm.data import synthetic_caption
    from fourm.masking import Masker, TextSpecials, collate, load_masking_config
    from fourm.paths import resolve

    specials = {s.name: TextSpecials(3, tuple(range(4, 104))) for s in specs if s.kind == "text"}
    masker = Masker(load_masking_config(resolve(masking)), specs, specials)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        samples = []
        for _ in range(batch):
            sample = {s.name: rng.integers(0, s.vocab_size, s.max_tokens) for s in specs if s.kind != "text"}
            for s in specs:
                if s.kind == "text":
                    sample[s.name] = list(rng.integers(104, s.vocab_size, int(rng.integers(8, 24))))
            samples.append(masker(sample, gen))
        out.append(collate(samples, [s.name for s in specs]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--modalities", default="rgb,depth,semseg,caption")
    parser.add_argument("--masking", default="configs/masking/default.yaml")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--profile", action="store_true", help="print the 15 ops that take the most time in the timed steps")
    parser.add_argument("--peak-size", type=int, default=0, help="matmul size for the peak (default 2048 CPU, 8192 GPU)")
    args = parser.parse_args()

    from fourm.modalities import load_registry
    from fourm.model import FourM, batch_to, count_tokens, preset_config

    torch.manual_seed(0)
    specs = list(load_registry(args.modalities.split(",")).values())
    model = FourM(preset_config(args.preset, specs)).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=args.device == "cuda")
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    batches = [batch_to(b, args.device) for b in make_batches(specs, args.masking, args.batch, args.warmup + args.steps, 0)]

    def step(batch):
        with torch.autocast(args.device, dtype=dtype, enabled=args.precision == "bf16"):
            loss = model(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[: args.warmup]:
        step(batch)
    sync(args.device)
    with profiler(args.profile, args.device) as prof:
        start = time.perf_counter()
        for batch in batches[args.warmup:]:
            step(batch)
        sync(args.device)
        elapsed = time.perf_counter() - start
    if prof is not None:
        key = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=15))
    timed = batches[args.warmup:]
    tokens = sum(sum(count_tokens(b)) for b in timed)
    flops = sum(step_flops(model, b) for b in timed)
    peak = matmul_peak(args.device, dtype, args.peak_size or (8192 if args.device == "cuda" else 2048))
    achieved = flops / elapsed
    print(f"preset {args.preset}  params {model.num_parameters() / 1e6:.1f}M  batch {args.batch}  device {args.device}  "
          f"{args.precision}  threads {torch.get_num_threads()}")
    print(f"step time       {elapsed / len(timed) * 1000:.1f} ms  ({tokens / len(timed):.0f} input+target tokens/step)")
    print(f"tokens/s        {tokens / elapsed:.0f}")
    print(f"model FLOP/s    {achieved / 1e9:.2f} GFLOP/s  ({flops / len(timed) / 1e9:.2f} GFLOP/step)")
    print(f"matmul peak     {peak / 1e9:.2f} GFLOP/s ({args.precision}, measured now)")
    print(f"MFU             {100 * achieved / peak:.1f} %")


if __name__ == "__main__":
    main()
