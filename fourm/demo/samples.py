"""Val samples for the demo: read a few raw samples from a scenes-style shard folder, and write one
sample's value of a modality as a condition file that `encode_condition_file` reads.

    samples, class_names = load_samples("data/scenes/val", specs, limit=16)
    path = write_condition_file(spec, samples[0].values["depth"], folder)   # .../scenes_val_0000000.depth.npy
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from fourm.modalities import ModalitySpec

DEFAULT_CLASS_NAMES = ()  # no manifest: legends show class indices only


@dataclass
class Sample:
    """One raw sample: key and {modality name: raw value as `fourm.shards` decodes it}."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)


def raw_key(spec: ModalitySpec) -> str:
    """The name `fourm.shards` gives this modality's raw file: 'depth.npy' -> 'depth'."""
    return spec.raw_ext.rsplit(".", 1)[0]


def load_samples(folder: Optional[str | os.PathLike], specs: Mapping[str, ModalitySpec], limit: int = 16) -> tuple[list[Sample], list[str]]:
    """The first `limit` samples of the raw shards in `folder` (None: no samples), with the class
    names of its manifest. Samples missing a modality simply lack that value."""
    from fourm.shards import find_manifest, iter_samples, list_shards

    if folder is None:
        return [], list(DEFAULT_CLASS_NAMES)
    shards = list_shards(str(folder))  # ShardError (a ValueError) names the folder when empty
    manifest = find_manifest(shards[0]) or {}
    samples = []
    for raw in iter_samples(shards, modalities=None, on_error="skip", image_size=None):
        values = {name: raw[raw_key(spec)] for name, spec in specs.items() if raw_key(spec) in raw}
        samples.append(Sample(raw["__key__"], values))
        if len(samples) >= limit:
            break
    return samples, list(manifest.get("class_names", DEFAULT_CLASS_NAMES))


def raw_to_value(spec: ModalitySpec, value: Any) -> Any:
    """A raw shard value -> the raw value convention of `fourm.generation.outputs` (what
    `preview_image` shows): RGB and normals (3, H, W) floats in [-1, 1], the rest as they are."""
    from modality_tokenizers.raw import to_tensor

    if spec.data in ("image_rgb", "normal_map"):
        return to_tensor(spec.data, [value])[0].numpy()
    return value


def write_condition_file(spec: ModalitySpec, value: Any, folder: str | os.PathLike, key: str = "sample") -> Path:
    """Write a raw shard value as the file type `encode_condition_file` expects for spec.data:
    RGB / normals / class maps as PNG, depth as float .npy, text as .txt. Written atomically."""
    from fourm.shards import encode_value

    ext = {"text": "txt", "depth_map": "npy"}.get(spec.data, "png")
    if spec.data == "class_map":
        value = np.asarray(value).astype(np.uint8)  # 8-bit single-channel PNG of class indices
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.{spec.name}.{ext}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode_value(ext, value))
    os.replace(tmp, path)
    return path
