"""Pixel-space FlexTok against FlexTok on KL-VAE latents, on the same val images.

    python bench/flextok_pixel_vs_latent.py [--pixel runs/tokenizers/rgb_pixel] [--latent runs/tokenizers/rgb]

Prints PSNR (dB, vs the 64x64 originals, 64 images, fixed noise) and writes a grid, one row each:
original | the VAE alone | pixel FlexTok, 32 tokens | latent FlexTok, 1 / 4 / 32 tokens.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from eval.context import read_samples
from modality_tokenizers.flextok.model import FlexTok, psnr
from modality_tokenizers.raw import to_tensor


def val_images(data: str, n: int) -> torch.Tensor:
    """(n, 3, 64, 64) in [-1, 1]: the first n raw RGB images of `data`."""
    samples, _ = read_samples(data, n)
    return to_tensor("image_rgb", [s["rgb"] for s in samples])


def reconstructions(x: torch.Tensor, pixel: FlexTok, latent: FlexTok, seed: int) -> dict[str, torch.Tensor]:
    size = x.shape[-2:]
    rows = {"original": x, "vae": latent.from_latent(latent.to_latent(x))}
    for k in (1, 4, 32):
        pix = pixel.autoencode(x, k, generator=torch.Generator().manual_seed(seed))
        rows[f"pixel, {k} tokens"] = F.interpolate(pix, size=size, mode="bilinear", align_corners=False)
    for k in (1, 4, 32):
        rows[f"latent, {k} tokens"] = latent.autoencode(x, k, generator=torch.Generator().manual_seed(seed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixel", default="runs/tokenizers/rgb_pixel")
    parser.add_argument("--latent", default="runs/tokenizers/rgb")
    parser.add_argument("--data", default="data/scenes/val")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--out", default="docs/flextok/pixel_vs_latent.png")
    args = parser.parse_args()
    x = val_images(args.data, args.n)
    with torch.no_grad():
        rows = reconstructions(x, FlexTok.from_pretrained(args.pixel), FlexTok.from_pretrained(args.latent), seed=0)
    for name, images in rows.items():
        if name != "original":
            print(f"{name}: {psnr(images, x).mean().item():.2f} dB")
    shown = [name for name in rows if not name.startswith("pixel") or name.endswith(" 32 tokens")]
    save_image(torch.cat([rows[name][:8] for name in shown]) * 0.5 + 0.5, args.out, nrow=8)
    print("grid rows:", " | ".join(shown), "->", args.out)


if __name__ == "__main__":
    main()
