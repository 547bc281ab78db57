"""Chained generation from a `GenerationConfig`: targets in order, each generated target joining
the conditions of later ones.

    outputs = generate_chain(model, cfg, {"caption": caption_ids}, generator)   # {name: (B, N)}

A target with `num_tokens: auto` comes back as a list of B 1D tensors (lengths differ; see
fourm.generation.adaptive) and needs its tokenizer in `tokenizers`.

Inputs are token ids per condition: image kinds (B, N) with N = max_tokens for grids and
1..max_tokens for image_seq, pixel patches flat (B, max_tokens * values); text (B, L) word ids without specials, [PAD] = 0 on the right.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import torch

from fourm.generation.generate import TEXT_EOS_ID, TEXT_PAD_ID, generate_target
from fourm.modalities import ModalitySpec

TEXT_FIRST_SENTINEL_ID = 4  # [S_0]: whole-text targets are [S_0] words [EOS] (fourm.masking)


def check_input(spec: ModalitySpec, ids: torch.Tensor, num_positions: int) -> None:
    """A clear error for a condition of the wrong type or size (before any model work)."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"condition '{spec.name}': expected integer token ids of shape (B, N), got "
                         f"{getattr(ids, 'dtype', type(ids).__name__)} {tuple(getattr(ids, 'shape', ()))}")
    N = ids.shape[1]
    if spec.kind == "image_patches":
        if N != spec.max_tokens * spec.values_per_token:
            raise ValueError(f"condition '{spec.name}': {N} values, but its {spec.max_tokens} patches hold "
                             f"{spec.max_tokens * spec.values_per_token}")
    elif spec.kind == "image_grid" and N != spec.max_tokens:
        raise ValueError(f"condition '{spec.name}': {N} tokens, but its grid {list(spec.grid_size)} has {spec.max_tokens}")
    limit = spec.max_tokens if spec.kind == "image_seq" else num_positions
    if spec.kind != "image_patches" and not 1 <= N <= limit:
        raise ValueError(f"condition '{spec.name}': {N} tokens, outside 1..{limit}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= spec.vocab_size):
        raise ValueError(f"condition '{spec.name}': token ids outside 0..{spec.vocab_size - 1}")


def text_target_to_input(ids: torch.Tensor) -> torch.Tensor:
    """Generated text targets ([S_0] words [EOS] [PAD]...) (B, L) -> word ids as an input
    condition (B, L), [PAD] after the words."""
    rows = []
    for row in ids.tolist():
        if TEXT_EOS_ID in row:
            row = row[: row.index(TEXT_EOS_ID)]
        if row and row[0] == TEXT_FIRST_SENTINEL_ID:
            row = row[1:]
        rows.append([t for t in row if t != TEXT_PAD_ID])
    out = torch.full((len(rows), max(1, max(map(len, rows), default=1))), TEXT_PAD_ID, dtype=torch.long)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(ids.device)


@torch.no_grad()
def generate_chain(model, cfg, inputs: Mapping[str, torch.Tensor], generator: Optional[torch.Generator],
                   tokenizers: Optional[Mapping[str, Any]] = None) -> dict[str, Union[torch.Tensor, list]]:
    """Run every target of `cfg` (a GenerationConfig) in order; returns {target name: ids (B, N)}
    (a list of B 1D tensors for `num_tokens: auto` targets)."""
    from fourm.generation.adaptive import generate_adaptive, ragged_condition

    tokenizers = tokenizers or {}
    missing = [c.modality for c in cfg.conditions if c.modality not in inputs]
    if missing:
        raise ValueError(f"no input for condition '{missing[0]}'")
    device = next(model.parameters()).device
    available = {}
    for c in cfg.conditions:
        spec = model.config.spec(c.modality)
        check_input(spec, inputs[c.modality], model.embeddings[c.modality].num_positions)
        available[c.modality] = inputs[c.modality].long().to(device)
    for t in cfg.targets:
        model.config.spec(t.modality)  # unknown to this model: error before any work
        if t.num_tokens == "auto" and t.modality not in tokenizers:
            raise ValueError(f"target '{t.modality}': num_tokens auto needs its tokenizer to decode prefixes")
    B = next(iter(available.values())).shape[0] if available else cfg.batch_size
    outputs = {}
    for i, target in enumerate(cfg.targets):
        conds = {n: available[n] for n in cfg.conditions_of(i)}
        if target.num_tokens == "auto":
            rows = generate_adaptive(model, conds, target.modality, target, generator, tokenizers[target.modality], B)
            outputs[target.modality], available[target.modality] = rows, ragged_condition(rows)
            continue
        ids = generate_target(model, conds, target.modality, target, generator, batch_size=B)  # (B, N)
        outputs[target.modality] = ids
        is_text = model.config.spec(target.modality).kind == "text"
        available[target.modality] = text_target_to_input(ids) if is_text else ids
    return outputs
