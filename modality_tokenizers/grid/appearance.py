"""What each code of a grid tokenizer draws: a (vocab, F) table, F = C * s * s, for FourM's code
appearance embeddings (fourm/model/appearance.py).

A code's row is the mean content (the codec's soft view: RGB, one-hot classes, log-depth) of the
cells that encode to it, average-pooled to s x s, measured over the tokenizer's training data
when training ends (`fourm tokenizer describe-codes` for tokenizers trained before). Codes never
seen there get their decoded cell instead: the code repeated over the whole grid, decoded, the
centre cell taken. Decoding alone describes class-map codes poorly (the ViT decoder reads a grid
of one object code as no real scene: on the scenes' colorseg codes the decoded cell's class
matched the measured one on 30% of object pixels), hence the measurement.

    <tokenizer folder>/code_appearance.safetensors   table (V, F) float32, seen (V,) bool
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

APPEARANCE_FILE = "code_appearance.safetensors"
SIDE = 4  # pooled cell side: 4 x 4 values per channel (or the patch size, if smaller)


def pooled_cells(view: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) soft view -> (B * cells, C * s * s), cells in row-major grid order."""
    side = min(SIDE, patch)
    pooled = F.avg_pool2d(view.float(), patch // side)  # (B, C, h * s, w * s)
    return rearrange(pooled, "b c (h a) (w s) -> (b h w) (c a s)", a=side, s=side)


@torch.no_grad()
def decoded_appearance(tokenizer, chunk: int = 50) -> Tensor:
    """(V, F): each code decoded as a grid of that code everywhere, the centre cell's soft view."""
    h, w = tokenizer.grid_size
    p = tokenizer.config.patch_size
    top, left = (h // 2) * p, (w // 2) * p
    rows = []
    for start in range(0, tokenizer.vocab_size, chunk):
        ids = torch.arange(start, min(tokenizer.vocab_size, start + chunk), device=tokenizer.device)
        codes = tokenizer.quantizer.indices_to_codes(ids[:, None].expand(-1, h * w)).to(tokenizer.decoder.pos.dtype)
        out = tokenizer.decoder(codes)[:, :, top:top + p, left:left + p]  # (n, C_out, p, p)
        rows.append(pooled_cells(tokenizer.codec.appearance(out), p))
    return torch.cat(rows).cpu()


@torch.no_grad()
def measure_appearance(tokenizer, batches: Iterable[Tensor]) -> tuple[Tensor, Tensor]:
    """Mean pooled content per code over raw `batches` -> (table (V, F), seen (V,) bool); unseen
    codes keep their decoded cell."""
    table = decoded_appearance(tokenizer)
    sums, counts = torch.zeros_like(table), torch.zeros(tokenizer.vocab_size)
    for batch in batches:
        ids = tokenizer.encode(batch).reshape(-1).cpu()  # (B * cells,)
        cells = pooled_cells(tokenizer.codec.content(batch.to(tokenizer.device)), tokenizer.config.patch_size).cpu()
        sums.index_add_(0, ids, cells)
        counts.index_add_(0, ids, torch.ones_like(ids, dtype=counts.dtype))
    seen = counts > 0
    table[seen] = sums[seen] / counts[seen, None]
    return table, seen


def save_appearance(folder: str | os.PathLike, table: Tensor, seen: Tensor) -> None:
    """Write the table whole (temporary name, then renamed)."""
    from safetensors.torch import save_file

    path = Path(folder) / APPEARANCE_FILE
    tmp = path.with_name(path.name + ".tmp")
    save_file({"table": table.float().contiguous(), "seen": seen.contiguous()}, str(tmp))
    os.replace(tmp, path)


def load_appearance(folder: str | os.PathLike) -> Optional[tuple[Tensor, Tensor]]:
    """(table, seen) saved in `folder`, or None if it has none."""
    from safetensors.torch import load_file

    path = Path(folder) / APPEARANCE_FILE
    if not path.is_file():
        return None
    data = load_file(str(path))
    return data["table"], data["seen"]
