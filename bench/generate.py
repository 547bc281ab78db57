"""Seconds per generated sample for each generation scheme, and the KV-cache speed-up.

    python bench/generate.py                      # tiny preset, real modality specs, CPU
    python bench/generate.py --preset micro --specs synthetic
    python bench/generate.py --device cuda --batch 8

Random weights (speed does not depend on them). The model decodes text and FlexTok rgb causally
(causal_kinds text + image_seq) so rgb can use the autoregressive scheme with the KV cache; the
grids (depth, semseg) use MaskGIT / ROAR. The cache row decodes `--ar-tokens` rgb tokens greedily
with and without the cache, checks the tokens are identical, and prints the speed-up.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from fourm.generation import generate_target
from fourm.generation_config import TargetConfig
from fourm.model import FourM, preset_config


def load_specs(which: str, rgb_tokens: int):
    """The modalities, with rgb given at least `rgb_tokens` positions (the scenes FlexTok has 32
    registers; the cache row decodes 64 tokens, as official FlexTok's 256 would need)."""
    import dataclasses

    if which == "synthetic":
        from fourm.data import synthetic_specs

        specs = synthetic_specs()
    else:
        from fourm.modalities import load_registry

        specs = [load_registry()[n] for n in ("rgb", "depth", "semseg", "caption")]
    return [dataclasses.replace(s, max_tokens=max(s.max_tokens, rgb_tokens)) if s.kind == "image_seq" else s for s in specs]


def random_conditions(specs, names, batch, device):
    gen = torch.Generator().manual_seed(0)
    out = {}
    for s in specs:
        if s.name in names:
            n = 16 if s.kind == "text" else s.max_tokens
            out[s.name] = torch.randint(4, s.vocab_size, (batch, n), generator=gen).to(device)
    return out


def seconds_per_sample(model, conds, target, cfg, batch, device, repeats) -> tuple[float, torch.Tensor]:
    """Best of `repeats` runs (the cores are shared), divided by the batch size."""
    best, ids = float("inf"), None
    for _ in range(repeats):
        gen = torch.Generator(device=device).manual_seed(0)
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        ids = generate_target(model, conds, target, cfg, gen)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best / batch, ids


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--specs", choices=["real", "synthetic"], default="real")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--ar-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    specs = load_specs(args.specs, args.ar_tokens)
    torch.manual_seed(0)
    model = FourM(preset_config(args.preset, specs, causal_kinds=("text", "image_seq"))).eval().to(args.device)
    run = lambda conds, target, **kw: seconds_per_sample(model, random_conditions(specs, conds, args.batch, args.device),
                                                         target, TargetConfig(modality=target, **kw), args.batch,
                                                         args.device, args.repeats)
    print(f"preset {args.preset}, {args.specs} specs, device {args.device}, batch {args.batch}, {args.threads} thread(s)")
    print(f"{'task':<40} {'s/sample':>10}")
    rows = [
        ("rgb->depth maskgit", ("rgb",), "depth", dict(scheme="maskgit", steps=args.steps)),
        ("rgb->depth roar", ("rgb",), "depth", dict(scheme="roar", steps=args.steps)),
        ("rgb->depth maskgit cfg 2", ("rgb",), "depth", dict(scheme="maskgit", steps=args.steps, cfg_scale=2.0)),
        ("rgb->caption autoregressive (24)", ("rgb",), "caption", dict(scheme="autoregressive", num_tokens=24, temperature=0.0)),
    ]
    for label, conds, target, kw in rows:
        print(f"{label:<40} {run(conds, target, **kw)[0]:>10.4f}")
    ar = dict(scheme="autoregressive", num_tokens=args.ar_tokens, temperature=0.0)
    cached, ids_cached = run(("depth",), "rgb", use_cache=True, **ar)
    full, ids_full = run(("depth",), "rgb", use_cache=False, **ar)
    print(f"{f'depth->rgb autoregressive ({args.ar_tokens}) cache':<40} {cached:>10.4f}")
    print(f"{f'depth->rgb autoregressive ({args.ar_tokens}) no cache':<40} {full:>10.4f}")
    print(f"KV-cache speed-up: {full / cached:.1f}x, same tokens: {torch.equal(ids_cached, ids_full)}")


if __name__ == "__main__":
    main()
