"""`fourm flextok reconstruct IMG [IMG ...] --tokens 1,4,16,32 --out grid.png`: FlexTok's
coarse-to-fine reconstructions of images, as a PNG grid (input, then one column per token count)
and a PSNR/SSIM line per count."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("flextok", help="FlexTok tools")
    sub = parser.add_subparsers(dest="flextok_command", metavar="ACTION", required=True)
    rec = sub.add_parser("reconstruct", help="reconstruct images from their first k tokens")
    rec.add_argument("images", nargs="+", help="RGB image files (resized to the tokenizer's size)")
    rec.add_argument("--tokenizer", default="runs/tokenizers/rgb", help="a saved FlexTok folder")
    rec.add_argument("--tokens", default="1,2,4,8,16,32", help="comma-separated token counts")
    rec.add_argument("--steps", type=int, default=25, help="Euler steps of the flow decoder")
    rec.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--out", default="flextok_reconstruct.png")
    rec.set_defaults(func=run_reconstruct)


def parse_token_counts(text: str, max_tokens: int) -> list[int]:
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError as err:
        raise ValueError(f"--tokens {text!r}: expected comma-separated integers") from err
    bad = [k for k in counts if not 1 <= k <= max_tokens]
    if not counts or bad:
        raise ValueError(f"--tokens {text!r}: counts must lie in 1..{max_tokens} (this tokenizer's registers)")
    return counts


def load_images(paths: list[str], size: int):
    """Files -> (B, 3, size, size) in [-1, 1]; errors name the file."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    arrays = []
    for path in paths:
        try:
            image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
        except (FileNotFoundError, UnidentifiedImageError) as err:
            raise ValueError(f"{path}: not a readable image ({err})") from err
        arrays.append(np.asarray(image))
    return torch.from_numpy(np.stack(arrays)).float().permute(0, 3, 1, 2) / 127.5 - 1.0


def run_reconstruct(args: argparse.Namespace) -> int:
    from modality_tokenizers import load_tokenizer
    from modality_tokenizers.flextok import FlexTok
    from modality_tokenizers.flextok.reconstruct import curve, grid_image, reconstructions

    model = load_tokenizer(args.tokenizer)
    if not isinstance(model, FlexTok):
        raise ValueError(f"{args.tokenizer}: holds a {type(model).__name__}, not a FlexTok tokenizer")
    counts = parse_token_counts(args.tokens, model.max_tokens)
    images = load_images(args.images, model.cfg.image_size)
    recons = reconstructions(model.eval(), images, counts, steps=args.steps, guidance_scale=args.guidance, seed=args.seed)
    grid_image(images, recons).save(args.out)
    for k, m in curve(images, recons).items():
        print(f"{k:4d} tokens: PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.3f}")
    print(f"wrote {args.out}")
    return 0
