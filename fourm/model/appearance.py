"""Code appearance: tokens embedded and predicted through what their code draws.

A grid tokenizer's code is an arbitrary index: a learned embedding table tells two codes that draw
nearly the same red patch apart as much as a red patch from sky, and each code's row is learned
only from the steps where that code occurs. With `FourMConfig.code_appearance` a modality also
carries a fixed table (V, F) of what each code draws (`GridTokenizer.code_appearance`: the mean
content of the cells that encode to the code, as RGB, class fractions or log-depth, pooled;
modality_tokenizers/grid/appearance.py), standardised per feature. It enters twice:

    input embedding  += project(table[id])            project: F -> D, learned
    output logits    += to_appearance(h) @ table.T     to_appearance: D -> F, learned

so what the model learns about one red patch carries over to every code that draws alike.
The learned per-code embedding and head rows stay: the table adds to them, never replaces them.
The embedding and the head each hold their own copy of the table (`FourM.set_code_appearance`
fills both), so each module's forward reads only its own state, as ZeRO-3 gathering expects.
"""
from __future__ import annotations

import torch
from torch import nn


def standardise(table: torch.Tensor) -> torch.Tensor:
    """(V, F) -> zero mean and unit std per feature over the codes (constant features become 0)."""
    table = table.float()
    centred = table - table.mean(0, keepdim=True)
    return centred / centred.std(0, keepdim=True).clamp(min=1e-3)


class AppearanceEmbedding(nn.Module):
    """ids (n,) -> (n, D): the projected appearance row of each token's code."""

    def __init__(self, vocab_size: int, features: int, dim: int):
        super().__init__()
        self.register_buffer("table", torch.zeros(vocab_size, features))  # saved with the weights
        self.project = nn.Linear(features, dim, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.table[ids].to(self.project.weight.dtype))


class TokenHead(nn.Linear):
    """Output logits (n, V) of one modality from decoder states (n, D): a linear layer (the
    weights of a plain head, so models saved before appearance tables load unchanged), plus,
    with `appearance_features` > 0, the decoder state's match with each code's appearance row."""

    def __init__(self, dim: int, vocab_size: int, bias: bool, appearance_features: int = 0):
        super().__init__(dim, vocab_size, bias=bias)
        self.appearance_features = appearance_features
        if appearance_features:
            self.register_buffer("appearance_table", torch.zeros(vocab_size, appearance_features))
            self.to_appearance = nn.Linear(dim, appearance_features, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = super().forward(hidden)
        if self.appearance_features:
            logits = logits + self.to_appearance(hidden) @ self.appearance_table.to(hidden.dtype).T
        return logits
