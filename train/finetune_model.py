"""Model surgery for fine-tuning: a trained FourM grown by new modalities, and which parameters
each stage trains.

    model, new = extend_model(base, [normals_spec])   # new: names of the new params
    set_trainable(model, new)                         # stage 1: only those
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from torch import nn

from fourm.modalities import ModalitySpec


def new_parameter_prefixes(specs: Sequence[ModalitySpec]) -> tuple[str, ...]:
    """State-dict prefixes of the parameters a modality brings: its embeddings and its head."""
    return tuple(p for s in specs for p in (f"embeddings.{s.name}.", f"heads.{s.name}."))


def extend_model(base, new_specs: Sequence[ModalitySpec]):
    """A FourM with the modalities of `base` plus `new_specs`; every parameter of `base` is copied,
    only the new modalities' embeddings and heads keep their fresh initialisation (seed the
    global RNG before calling). Returns (model, names of the new parameters)."""
    from fourm.model import FourM

    have = set(base.config.modality_names)
    dup = [s.name for s in new_specs if s.name in have]
    if dup:
        raise ValueError(f"add_modalities: '{dup[0]}' is already in the base model (has: {', '.join(base.config.modality_names)})")
    config = dataclasses.replace(base.config, modalities=base.config.modalities + tuple(new_specs))
    model = FourM(config)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    prefixes = new_parameter_prefixes(new_specs)
    stray = [k for k in missing if not k.startswith(prefixes)] + list(unexpected)
    if stray:
        raise RuntimeError(f"extending the model left '{stray[0]}' unmatched (a bug: base and new model differ)")
    return model, [n for n, _ in model.named_parameters() if n.startswith(prefixes)]


def set_trainable(model: nn.Module, names: Iterable[str] | None) -> int:
    """requires_grad on the parameters named in `names` only (None: all). Returns how many
    values are trained."""
    keep = None if names is None else set(names)
    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(keep is None or name in keep)
        count += param.numel() if param.requires_grad else 0
    return count
