"""FlexTok throughput: images/s for tokenize and for detokenize per Euler step count.

    python bench/flextok.py                      # tiny and d12-d12, CPU, 2 threads
    python bench/flextok.py --sizes tiny --steps 1 5 25 --batch 16

Weights are random (throughput does not depend on them). d12-d12 runs at 256x256 through the
KL-VAE (f8, c16); `--no-vae-decode` style splits are not needed: the VAE time is reported apart.
"""
from __future__ import annotations

import argparse
import time

import torch


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_size(name: str, batch: int, steps_list: list[int], repeats: int, device: str) -> None:
    from modality_tokenizers.flextok import FlexTok, preset

    model = FlexTok(preset(name)).eval().to(device)
    cfg = model.cfg
    images = torch.rand(batch, 3, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    with torch.no_grad():
        seconds = timed(lambda: model.tokenize(images), repeats)
        print(f"{name:8s} {cfg.image_size}px batch {batch}: tokenize            {batch / seconds:8.2f} img/s")
        if model.vae is not None:
            latent = model.to_latent(images)
            seconds = timed(lambda: model.vae.decode(latent), repeats)
            print(f"{name:8s}   of which VAE decode alone:         {batch / seconds:8.2f} img/s")
        tokens = model.tokenize(images)
        for steps in steps_list:
            for scale in (1.0, 3.0):
                gen = torch.Generator().manual_seed(0)
                seconds = timed(lambda: model.detokenize(tokens, steps=steps, guidance_scale=scale, generator=gen), repeats)
                print(f"{name:8s} detokenize steps={steps:3d} cfg={scale:.0f}:  {batch / seconds:8.2f} img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "d12-d12"])
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 5, 25])
    parser.add_argument("--batch", type=int, default=0, help="0: 16 for tiny, 1 for the official sizes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.sizes:
        batch = args.batch or (16 if name in ("micro", "tiny") else 1)
        bench_size(name, batch, args.steps, args.repeats, args.device)


if __name__ == "__main__":
    main()
