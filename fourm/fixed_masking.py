"""A fixed masking for transfer to one task: every token of the input modalities goes to the
encoder, every token of the target modalities is predicted, in every sample (4M's transfer
setting, e.g. rgb -> semseg). Drop-in for `fourm.masking.Masker` in `fourm.data`."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch

from fourm.masking import MaskedSample, Masker, MaskingConfig, MixtureComponent, TextSpecials
from fourm.modalities import ModalitySpec


class FixedMasker:
    """`masker(sample, generator)` -> all of `inputs` in, all of `targets` out. The generator is
    not used: the masking is the same every time. A sample that lacks one of the named
    modalities gives an empty sample (it takes no part in the loss)."""

    def __init__(self, specs: Sequence[ModalitySpec], inputs: Sequence[str], targets: Sequence[str],
                 text_specials: Optional[Mapping[str, TextSpecials]] = None):
        names = [s.name for s in specs]
        unknown = [n for n in (*inputs, *targets) if n not in names]
        if unknown:
            raise ValueError(f"task: modality '{unknown[0]}' is not in the model (has: {', '.join(names)})")
        specials = dict(text_specials or {})
        no_specials = [s.name for s in specs if s.kind == "text" and s.name not in specials and s.name in (*inputs, *targets)]
        if no_specials:
            raise ValueError(f"task: text modality '{no_specials[0]}' needs its tokenizer's specials (eos and sentinel ids)")
        # The inner Masker only validates tokens and lays out text; its mixture is never drawn from.
        # Text modalities without specials take no part in any task, so it does not need them.
        usable = [s for s in specs if s.kind != "text" or s.name in specials]
        no_mixture = MaskingConfig((0, 0), (0, 0), (MixtureComponent("fixed", {}, {}),))
        self.masker = Masker(no_mixture, usable, specials)
        self.inputs, self.targets = tuple(inputs), tuple(targets)

    def __call__(self, sample: Mapping[str, object], gen: Optional[torch.Generator] = None) -> MaskedSample:
        return self.direction(sample, self.inputs, self.targets) or {}

    def direction(self, sample: Mapping[str, object], inputs: Sequence[str], targets: Sequence[str]) -> Optional[MaskedSample]:
        return self.masker.direction(sample, inputs, targets)
