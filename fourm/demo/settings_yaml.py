"""The demo's generation settings as a `fourm generate` config: one dict, validated into a
GenerationConfig (what the demo runs) and written as YAML that `load_generation_config` reads back.

    data = settings_dict("runs/fourm_tiny/model", ["caption"], [{"modality": "rgb", "num_tokens": 8}], seed=0)
    cfg = to_config(data, specs)                    # what the demo runs
    cfg = write_yaml(data, "gen.yaml", specs)       # the same, from the file on disk
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from fourm.modalities import ModalitySpec

SOURCE = "demo settings"
DEFAULT_OUTPUT_DIR = "runs/demo_generate"


def settings_dict(checkpoint: str, conditions: Sequence[str], targets: Sequence[dict], seed: int,
                  output_dir: str = DEFAULT_OUTPUT_DIR) -> dict:
    """Conditions read from the input sample (`source: input`), so the YAML runs the same settings
    over token shards: `fourm generate --config FILE --input SHARDS`."""
    return {
        "model": str(checkpoint),
        "seed": int(seed),
        "batch_size": 1,
        "output_dir": output_dir,
        "conditions": [{"modality": name, "source": "input"} for name in conditions],
        "targets": [dict(t) for t in targets],
    }


def to_config(data: dict, specs: Mapping[str, ModalitySpec], source: str = SOURCE):
    """dict -> GenerationConfig checked against the model's modality specs (ConfigError/ValueError)."""
    from fourm.config import from_dict
    from fourm.generation_config import GenerationConfig, check_modalities

    cfg = from_dict(GenerationConfig, data, source=source)
    check_modalities(cfg, list(specs.values()), source)
    return cfg


def write_yaml(data: dict, path: str | os.PathLike, specs: Mapping[str, ModalitySpec]):
    """Write the settings as YAML (temp name, then rename) and load it back with
    `load_generation_config`; returns the loaded GenerationConfig."""
    import yaml

    from fourm.generation_config import load_generation_config

    to_config(data, specs)  # a bad setting never reaches the disk
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    header = "# Written by `fourm demo`. Run: fourm generate --config THIS_FILE --input TOKEN_SHARDS\n"
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    return load_generation_config(path, specs=list(specs.values()))
