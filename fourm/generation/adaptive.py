"""`num_tokens: auto` for image_seq targets: grow the FlexTok sequence until more tokens stop
changing the picture.

    rows = generate_adaptive(model, conds, "rgb", target_cfg, generator, tokenizer)  # B x (k_b,)

Rule: tokens are generated left to right. After n = 2k tokens (k = 1, 2, 4, ...), every sample
still growing decodes its first k and first 2k tokens with the same noise; if the two images agree
to `target_cfg.auto_psnr` dB (PSNR(decode(k), decode(2k)) >= auto_psnr), the sample keeps k
tokens: the last k added did not change the picture enough to matter. Decoding stops as soon as
every sample has its length (with the KV cache, the tokens after that are never computed); a
sample that never agrees keeps all max_tokens.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from fourm.generation.generate import Conditions, generate_target
from fourm.model import ModalityTokens


class _Stopper:
    """The `on_prefix` hook of generate_target: applies the agreement rule at n = 2, 4, 8, ..."""

    def __init__(self, tokenizer: Any, target_cfg, batch_size: int, max_tokens: int, seed: int):
        self.tokenizer, self.cfg, self.seed = tokenizer, target_cfg, seed
        self.lengths = torch.full((batch_size,), max_tokens, dtype=torch.long)
        self.open = torch.ones(batch_size, dtype=torch.bool)  # samples still growing

    def __call__(self, n: int, ids: torch.Tensor) -> bool:
        if n < 2 or n & (n - 1):
            return False
        from modality_tokenizers.flextok.adaptive import agreement_db

        k, rows = n // 2, self.open.nonzero().flatten().tolist()
        short = [ids[b, :k].cpu() for b in rows]
        long = [ids[b, :n].cpu() for b in rows]
        agree = agreement_db(self.tokenizer, short, long, self.cfg.decode_steps, self.cfg.decode_guidance, self.seed)
        for b, ok in zip(rows, (agree >= self.cfg.auto_psnr).tolist()):
            if ok:
                self.lengths[b], self.open[b] = k, False
        return not bool(self.open.any())


@torch.no_grad()
def generate_adaptive(model, conditions: Conditions, target_name: str, target_cfg, generator: Optional[torch.Generator],
                      tokenizer: Any, batch_size: Optional[int] = None) -> list[torch.Tensor]:
    """B rows of 1D token ids, row b of length k_b (see the module docstring for the rule)."""
    spec = model.config.spec(target_name)
    if spec.kind != "image_seq":
        raise ValueError(f"target '{target_name}': num_tokens auto needs an image_seq target, not {spec.kind}")
    B = batch_size or next(iter(conditions.values())).shape[0]
    seed = generator.initial_seed() if generator is not None else 0  # decode noise; draws nothing from `generator`
    R = model.embeddings[target_name].num_positions
    stopper = _Stopper(tokenizer, target_cfg, B, R, seed)
    causal = model.embeddings[target_name].causal
    ids = generate_target(model, conditions, target_name, target_cfg, generator, batch_size=B,
                          on_prefix=stopper if causal else None)  # (B, R)
    if not causal:  # left-to-right ROAR has no early exit: the same rule on the finished sequence
        for n in (2 ** i for i in range(1, R.bit_length())):
            if n > R or stopper(n, ids):
                break
    return [ids[b, : int(stopper.lengths[b])] for b in range(B)]


def ragged_condition(rows: list[torch.Tensor]) -> ModalityTokens:
    """Rows of different lengths as an encoder condition (B, max k): padding is not an input."""
    B, N = len(rows), max(int(r.numel()) for r in rows)
    device = rows[0].device
    ids = torch.zeros(B, N, dtype=torch.long, device=device)
    for b, r in enumerate(rows):
        ids[b, : r.numel()] = r
    positions = torch.arange(N, device=device).expand(B, -1).clone()
    is_input = positions < torch.tensor([r.numel() for r in rows], device=device)[:, None]
    return ModalityTokens(ids, is_input, torch.zeros_like(is_input), positions)
