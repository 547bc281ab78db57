"""The tensors that flow from masking into the model: one `ModalityTokens` per modality.

Every modality of a batch is a padded (B, N) block. A token can be an encoder input, a decoder
target, or neither (not sampled, or padding); never both. `positions` is the token's place in
its own sequence: the grid cell for image_grid, the index in the ordered sequence for
image_seq, and for text the index within the input sequence or within the target sequence
(text input and target are different sequences laid side by side in one block).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ModalityTokens:
    ids: torch.Tensor  # (B, N) long, token ids (0 where padding); image_patches: (B, N, values) pixels
    is_input: torch.Tensor  # (B, N) bool, fed to the encoder
    is_target: torch.Tensor  # (B, N) bool, predicted by the decoder
    positions: torch.Tensor  # (B, N) long, position within its sequence

    def __post_init__(self) -> None:
        shapes = {t.shape for t in (self.ids[:, :, 0] if self.ids.dim() == 3 else self.ids,
                                    self.is_input, self.is_target, self.positions)}
        if len(shapes) != 1 or self.ids.dim() not in (2, 3):
            raise ValueError(f"ModalityTokens: ids, is_input, is_target, positions must share one (B, N) shape, got {shapes}")

    def to(self, device: torch.device | str) -> "ModalityTokens":
        return ModalityTokens(*(t.to(device, non_blocking=True) for t in (self.ids, self.is_input, self.is_target, self.positions)))

    @property
    def batch_size(self) -> int:
        return self.ids.shape[0]


Batch = dict[str, ModalityTokens]


def batch_to(batch: Batch, device: torch.device | str) -> Batch:
    return {name: tokens.to(device) for name, tokens in batch.items()}


def count_tokens(batch: Batch) -> tuple[int, int]:
    """(input tokens, target tokens) in a batch."""
    n_in = sum(int(t.is_input.sum()) for t in batch.values())
    n_tgt = sum(int(t.is_target.sum()) for t in batch.values())
    return n_in, n_tgt
