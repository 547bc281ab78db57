"""Which dataclass validates which folder of configs/ (used by test_config)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from fourm.config import from_dict
from fourm.paths import CONFIG_DIR


def _no_check(cfg: Any, path: Path) -> None:
    pass


def _tokenizer_schema(path: Path):
    """Tokenizer configs: the outer schema depends on whether the tokenizer learns nothing, is fitted or trained;
    the `model` section is validated into the tokenizer class's own Config."""
    from fourm.config import read_yaml
    from modality_tokenizers import TOKENIZER_TYPES

    model_type = read_yaml(path)["model"]["type"]
    tok_cls = TOKENIZER_TYPES[model_type]
    if hasattr(tok_cls, "from_config"):
        from train.fixed_tokenizer import FixedTokenizerConfig as outer
    elif hasattr(tok_cls, "fit"):
        from train.text_tokenizer import TextTokenizerTrainConfig as outer
    else:
        from train.tokenizer_config import TokenizerTrainConfig as outer

    def check(cfg: Any, p: Path) -> None:
        fields = {k: v for k, v in cfg.model.items() if k != "type"}
        from_dict(tok_cls.Config, fields, source=str(p), path="model")

    return outer, check


def _modality_schema(path: Path):
    from fourm.modalities import ModalitySpec

    def check(cfg: Any, p: Path) -> None:
        assert p.stem == cfg.name

    return ModalitySpec, check


SCHEMAS: dict[str, Callable[[Path], tuple[type, Callable]]] = {
    "modalities": _modality_schema,
    "tokenizers": _tokenizer_schema,
}


def register_schema(folder: str, cls_path: str) -> None:
    """Folders whose configs are one dataclass: 'package.module:Class'."""

    def schema(path: Path):
        import importlib

        module, name = cls_path.split(":")
        return getattr(importlib.import_module(module), name), _no_check

    SCHEMAS[folder] = schema


# One line per config folder whose YAML is a single dataclass.
register_schema("train", "train.fourm_config:FourMTrainConfig")
register_schema("masking", "fourm.masking:MaskingConfig")
register_schema("generate", "fourm.generation_config:GenerationConfig")
register_schema("eval", "eval.config:EvalConfig")
register_schema("baselines", "eval.baselines.config:UNetBaselineConfig")
register_schema("finetune", "train.finetune_config:FinetuneConfig")


def schema_for(path: Path):
    folder = path.relative_to(CONFIG_DIR).parts[0]
    if folder not in SCHEMAS:
        raise AssertionError(f"{path}: no schema registered for configs/{folder}/ (add one in tests/config_schemas.py)")
    return SCHEMAS[folder](path)
