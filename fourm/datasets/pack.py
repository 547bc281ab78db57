"""Pack a folder of aligned files into the shard format the scenes dataset uses.

    SRC/rgb/<name>.png (or .jpg)   ->  <key>.rgb.png       uint8 (H, W, 3)
    SRC/depth/<name>.npy           ->  <key>.depth.npy     float32 (H, W)
    SRC/semseg/<name>.png          ->  <key>.semseg.png    uint8 (or uint16) class map (H, W)
    SRC/normals/<name>.png         ->  <key>.normals.png   uint8 (H, W, 3)
    SRC/caption/<name>.txt         ->  <key>.caption.txt

Any subset of the folders may exist; samples are the union of file names. A sample missing a
modality that others have, an unreadable file, or an image whose size differs from the first
image is an error naming the file (with skip_bad: skipped, counted and logged).
"""
from __future__ import annotations

import itertools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from fourm.shards import MANIFEST_NAME, write_shard_atomic

log = logging.getLogger(__name__)

# folder -> (accepted input extensions, file name in the shard after the key)
MODALITY_SOURCES = {
    "rgb": ((".png", ".jpg", ".jpeg"), "rgb.png"),
    "depth": ((".npy",), "depth.npy"),
    "semseg": ((".png",), "semseg.png"),
    "normals": ((".png",), "normals.png"),
    "caption": ((".txt",), "caption.txt"),
}
SHARD_PATTERN = "shard-{:06d}.tar"


class BadSample(ValueError):
    """One sample of the source folder cannot be packed; the message names the file."""


@dataclass
class PackReport:
    split: str
    written: int = 0
    skipped: dict = field(default_factory=dict)  # key -> reason
    shards: list = field(default_factory=list)
    modalities: list = field(default_factory=list)
    resolution: Optional[tuple[int, int]] = None


def index_folder(src: Path) -> dict[str, dict[str, Path]]:
    """{modality: {name: file}} for the modality folders present in `src`."""
    if not src.is_dir():
        raise ValueError(f"source folder not found: {src}")
    index = {}
    for modality, (extensions, _) in MODALITY_SOURCES.items():
        folder = src / modality
        if not folder.is_dir():
            continue
        files: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in extensions or path.name.startswith("."):
                continue
            if path.stem in files:
                raise BadSample(f"two files for sample '{path.stem}': {files[path.stem]} and {path}")
            files[path.stem] = path
        index[modality] = files
    if not index:
        raise ValueError(f"{src}: no modality folders (expected any of: {', '.join(MODALITY_SOURCES)})")
    return index


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return np.asarray(img)


def load_file(modality: str, path: Path):
    """Decode and check one file; returns the array/str written to the shard."""
    try:
        if modality == "caption":
            return path.read_text(encoding="utf-8").strip()
        if modality == "depth":
            value = np.load(path, allow_pickle=False)
            value = value[..., 0] if value.ndim == 3 and value.shape[-1] == 1 else value
            if value.ndim != 2 or not np.issubdtype(value.dtype, np.number):
                raise BadSample(f"{path}: depth must be a 2D numeric array, got {value.dtype} {value.shape}")
            return value.astype(np.float32)
        value = _read_image(path)
    except BadSample:
        raise
    except Exception as err:  # unreadable file: a bad sample, named
        raise BadSample(f"{path}: cannot read {modality}: {err}") from err
    return _check_image(modality, path, value)


def _check_image(modality: str, path: Path, value: np.ndarray) -> np.ndarray:
    if modality == "semseg":
        if value.ndim != 2:
            raise BadSample(f"{path}: semseg must be a single-channel class map, got shape {value.shape}")
        return value.astype(np.uint8) if value.max(initial=0) < 256 else value.astype(np.uint16)
    if value.ndim == 2 and modality == "rgb":  # grayscale photo: repeat into 3 channels
        value = np.repeat(value[..., None], 3, axis=-1)
    if value.ndim != 3 or value.shape[-1] not in (3, 4) or value.dtype != np.uint8:
        raise BadSample(f"{path}: {modality} must be an 8-bit RGB image, got {value.dtype} {value.shape}")
    return value[..., :3]


class _SizeCheck:
    """Every image must have the (H, W) of the first image packed."""

    def __init__(self):
        self.size: Optional[tuple[int, int]] = None
        self.first: Optional[Path] = None

    def __call__(self, path: Path, value) -> None:
        if not isinstance(value, np.ndarray):
            return
        size = tuple(value.shape[:2])
        if self.size is None:
            self.size, self.first = size, path
        elif size != self.size:
            raise BadSample(f"{path}: size {size[1]}x{size[0]} (WxH) differs from "
                            f"{self.size[1]}x{self.size[0]} of the first image {self.first}")


def _sample_key(name: str) -> str:
    # webdataset splits the key at the first dot of a file name
    return name.replace(".", "_")


def _load_sample(name: str, index: dict, modalities: list[str], size_check: _SizeCheck) -> dict:
    missing = [m for m in modalities if name not in index[m]]
    if missing:
        have = ", ".join(str(index[m][name]) for m in modalities if name in index[m])
        exts = MODALITY_SOURCES[missing[0]][0]
        raise BadSample(f"sample '{name}': missing {missing[0]}/{name}{exts[0]} "
                        f"(other samples have {missing[0]}; this one has: {have})")
    sample = {"__key__": _sample_key(name)}
    for modality in modalities:
        path = index[modality][name]
        value = load_file(modality, path)
        size_check(path, value)
        sample[MODALITY_SOURCES[modality][1]] = value
    return sample


def _good_samples(names, index, modalities, skip_bad: bool, report: PackReport, bar) -> Iterator[dict]:
    """Loaded samples in name order; bad ones raise, or are skipped and recorded in `report`."""
    size_check = _SizeCheck()
    for name in names:
        bar.update(1)
        try:
            sample = _load_sample(name, index, modalities, size_check)
        except BadSample as err:
            if not skip_bad:
                raise
            report.skipped[name] = str(err)
            log.warning("skipping: %s", err)
            continue
        report.resolution = size_check.size
        yield sample


def pack_folder(src: str | Path, out: str | Path, split: str = "train", shard_size: int = 256,
                skip_bad: bool = False, overwrite: bool = False, progress: bool = True) -> PackReport:
    """Pack SRC's modality folders into OUT/<split>/shard-*.tar and update OUT/manifest.json."""
    from tqdm import tqdm

    src, out = Path(src), Path(out)
    index = index_folder(src)
    modalities = list(index)
    names = sorted(set().union(*index.values()))
    keys = [_sample_key(n) for n in names]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{src}: file names that differ only in '.' vs '_' would share a shard key")
    split_dir = _prepare_split_dir(out / split, overwrite)
    report = PackReport(split, modalities=modalities)
    with tqdm(total=len(names), desc=f"pack {split}", unit="sample", disable=not progress) as bar:
        samples = _good_samples(names, index, modalities, skip_bad, report, bar)
        # An error inside `samples` propagates through write_shard_atomic, which drops the temp shard.
        while (first := next(samples, None)) is not None:
            path = split_dir / SHARD_PATTERN.format(len(report.shards))
            count = write_shard_atomic(path, itertools.chain([first], itertools.islice(samples, shard_size - 1)))
            report.shards.append({"path": os.path.relpath(path, out), "samples": count})
            report.written += count
    _update_manifest(out, src, report)
    log.info("packed %d samples into %d shards in %s (%d skipped)",
             report.written, len(report.shards), split_dir, len(report.skipped))
    return report


def _prepare_split_dir(split_dir: Path, overwrite: bool) -> Path:
    old = sorted(split_dir.glob("shard-*.tar*"))
    if old and not overwrite:
        raise ValueError(f"{split_dir} already holds shards ({old[0].name}, ...); pass overwrite (--overwrite) to replace them")
    for path in old:
        path.unlink()
    split_dir.mkdir(parents=True, exist_ok=True)
    return split_dir


def _update_manifest(out: Path, src: Path, report: PackReport) -> None:
    """Add this split to OUT/manifest.json (other splits packed before are kept)."""
    path = out / MANIFEST_NAME
    manifest = json.loads(path.read_text()) if path.is_file() else {"dataset": "packed", "splits": {}}
    resolution = list(report.resolution) if report.resolution else None
    if manifest.get("resolution") and resolution and manifest["resolution"] != resolution:
        raise ValueError(f"{path}: split '{report.split}' is {resolution}, other splits are {manifest['resolution']}")
    manifest["resolution"] = manifest.get("resolution") or resolution
    manifest["splits"][report.split] = {"count": report.written, "shards": report.shards, "skipped": len(report.skipped),
                                        "source": str(src), "modalities": report.modalities,
                                        "files": [MODALITY_SOURCES[m][1] for m in report.modalities]}
    manifest["complete"] = True
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, path)
