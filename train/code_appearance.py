"""The code appearance tables a new FourM starts with (fourm/model/appearance.py), read from the
trained grid tokenizers of the modalities named in `model.code_appearance`."""
from __future__ import annotations

import logging
from typing import Mapping, Sequence

import torch

from fourm.modalities import ModalitySpec

log = logging.getLogger(__name__)


def code_appearance_tables(specs: Mapping[str, ModalitySpec], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """{name: (vocab, F)} for each name; clear errors for a modality the model lacks, one that is
    not an image grid, or a tokenizer that cannot describe its codes."""
    from fourm.generation.outputs import load_modality_tokenizers

    tables = {}
    for name in names:
        if name not in specs:
            raise ValueError(f"model.code_appearance: '{name}' is not one of model.modalities {list(specs)}")
        spec = specs[name]
        if spec.kind != "image_grid":
            raise ValueError(f"model.code_appearance: modality '{name}' is {spec.kind}; only image_grid "
                             "modalities have codes that draw a cell")
        tokenizer = load_modality_tokenizers({name: spec})[name]
        if not hasattr(tokenizer, "code_appearance"):
            raise ValueError(f"model.code_appearance: the tokenizer of '{name}' ({type(tokenizer).__name__}) "
                             "cannot describe its codes")
        if getattr(tokenizer, "measured_appearance", None) is None:
            log.warning("model.code_appearance: the tokenizer of '%s' was trained before codes were described; "
                        "using decoded cells (measure them: fourm tokenizer describe-codes --modality %s)", name, name)
        table = tokenizer.code_appearance()  # (V, F)
        if table.shape[0] != spec.vocab_size:
            raise ValueError(f"model.code_appearance: the tokenizer of '{name}' has {table.shape[0]} codes, "
                             f"the registry says vocab_size {spec.vocab_size}")
        tables[name] = table
    return tables
