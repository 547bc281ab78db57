"""The protocol every modality tokenizer follows, and how tokenizers are saved and found.

A tokenizer turns one modality's raw batch into discrete token ids and back:

    encode(batch) -> token ids        decode(ids, ...) -> batch

Tensor conventions for raw batches (what `encode` takes and `decode` returns), keyed by the
kind of raw data a modality holds (see `modality_tokenizers.raw`):

    image_rgb   float (B, 3, H, W) in [-1, 1]
    depth_map   float (B, 1, H, W) metric depth, 0 where invalid
    class_map   long  (B, H, W) class index
    normal_map  float (B, 3, H, W) unit normals, 0 where invalid
    text        list[str]

A saved tokenizer is a folder with `tokenizer_config.json` ({"type": ..., "config": {...}})
and, for neural tokenizers, `model.safetensors`. `load_tokenizer(folder)` reads the type and
dispatches through `TOKENIZER_TYPES`, so callers never branch on a modality's name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, ClassVar

CONFIG_FILE = "tokenizer_config.json"
WEIGHTS_FILE = "model.safetensors"

TOKENIZER_TYPES: dict[str, type] = {}


def register_tokenizer(type_name: str) -> Callable[[type], type]:
    """Class decorator: make a tokenizer class loadable by `load_tokenizer` under `type_name`."""

    def wrap(cls: type) -> type:
        if type_name in TOKENIZER_TYPES and TOKENIZER_TYPES[type_name] is not cls:
            raise ValueError(f"tokenizer type {type_name!r} is registered twice")
        cls.tokenizer_type = type_name
        TOKENIZER_TYPES[type_name] = cls
        return cls

    return wrap


class ModalityTokenizer:
    """Mixin documenting the tokenizer protocol; neural tokenizers also subclass nn.Module."""

    tokenizer_type: ClassVar[str] = ""
    vocab_size: int
    max_tokens: int

    def encode(self, batch: Any) -> Any:  # pragma: no cover - protocol
        raise NotImplementedError

    def decode(self, ids: Any, **kwargs: Any) -> Any:  # pragma: no cover - protocol
        raise NotImplementedError

    def save_pretrained(self, folder: str | os.PathLike) -> None:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "ModalityTokenizer":  # pragma: no cover
        raise NotImplementedError


class ConfigOnlyTokenizer(ModalityTokenizer):
    """A tokenizer that learns nothing: its nested `Config` dataclass is all it is, so saving
    writes only tokenizer_config.json (pixel patches, object centres)."""

    @classmethod
    def from_config(cls, fields: dict) -> "ConfigOnlyTokenizer":
        return cls(cls.Config(**fields))

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        from dataclasses import asdict

        write_tokenizer_config(folder, self.tokenizer_type, asdict(self.config))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "ConfigOnlyTokenizer":
        type_name, fields = read_tokenizer_config(folder)
        if type_name != cls.tokenizer_type:
            raise ValueError(f"{folder}: a '{type_name}' tokenizer, not '{cls.tokenizer_type}'")
        return cls.from_config(fields)


def write_tokenizer_config(folder: str | os.PathLike, type_name: str, config: dict) -> None:
    """Write tokenizer_config.json atomically (temp name, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps({"type": type_name, "config": config}, indent=2, sort_keys=True))
    os.replace(tmp, folder / CONFIG_FILE)


def read_tokenizer_config(folder: str | os.PathLike) -> tuple[str, dict]:
    """Return (type, config) of a saved tokenizer, with errors that name the file."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tokenizer config here (is {folder} a saved tokenizer?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or "type" not in data or "config" not in data:
        raise ValueError(f"{path}: expected keys 'type' and 'config'")
    return data["type"], data["config"]


def save_weights(module: Any, folder: str | os.PathLike) -> None:
    """Save an nn.Module's state dict as safetensors, atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)


def load_weights(module: Any, folder: str | os.PathLike) -> None:
    """Load safetensors weights into an nn.Module (strict: every key must match)."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file missing")
    missing, unexpected = module.load_state_dict(load_file(str(path)), strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})")


def load_tokenizer(folder: str | os.PathLike) -> Any:
    """Load any saved tokenizer by the type recorded in its config."""
    import modality_tokenizers  # noqa: F401  (registers the built-in types)

    type_name, _ = read_tokenizer_config(folder)
    if type_name not in TOKENIZER_TYPES:
        known = ", ".join(sorted(TOKENIZER_TYPES))
        raise ValueError(f"{Path(folder) / CONFIG_FILE}: unknown tokenizer type {type_name!r} (known: {known})")
    return TOKENIZER_TYPES[type_name].from_pretrained(folder)


def save_neural_tokenizer(module: Any, folder: str | os.PathLike, config: Any) -> None:
    """model.safetensors + tokenizer_config.json (the frozen dataclass `config`), so that
    `from_pretrained(folder)` needs nothing else."""
    import dataclasses

    save_weights(module, folder)
    write_tokenizer_config(folder, module.tokenizer_type, dataclasses.asdict(config))


def load_neural_tokenizer(cls: type, folder: str | os.PathLike, make_config: Callable[[dict], Any]) -> Any:
    """Build `cls(make_config(saved config))`, load its weights strictly, return it in eval mode."""
    type_name, data = read_tokenizer_config(folder)
    if type_name != cls.tokenizer_type:
        raise ValueError(f"{folder}: a '{type_name}' tokenizer, not '{cls.tokenizer_type}'")
    model = cls(make_config(data))
    load_weights(model, folder)
    return model.eval()
