"""FourM on disk: `model.safetensors` + `config.yaml` (the FourMConfig, modality specs included)."""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"


def save_pretrained(model, folder: str | os.PathLike) -> None:
    """Write weights and config; each file appears whole (written under a temp name, then renamed)."""
    from safetensors.torch import save_file

    from fourm.config import save_config

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / WEIGHTS_FILE)
    save_config(model.config, folder / CONFIG_FILE)


def load_pretrained(folder: str | os.PathLike, map_location: str = "cpu"):
    from safetensors.torch import load_file

    from fourm.config import from_dict, read_yaml
    from fourm.model.config import FourMConfig
    from fourm.model.fourm import FourM

    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    weights_path = folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (is {folder} a saved FourM?)")
    config = from_dict(FourMConfig, read_yaml(config_path), source=str(config_path))
    model = FourM(config)
    model.load_state_dict(load_file(str(weights_path), device=map_location), strict=True)
    return model.to(map_location)


def load_model_config(folder: str | os.PathLike):
    """The FourMConfig of a saved FourM, without loading its weights (for checks before any work)."""
    from fourm.config import from_dict, read_yaml
    from fourm.model.config import FourMConfig

    path = Path(folder) / CONFIG_FILE
    if not path.is_file() or not (Path(folder) / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{folder}: not a saved FourM (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    return from_dict(FourMConfig, read_yaml(path), source=str(path))
