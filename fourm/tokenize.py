"""`fourm tokenize`: raw shards -> token shards with the same keys, aligned across modalities.

For each raw shard DIR/<split>/shard-N.tar one token shard OUT/<split>/shard-N.tar is written with
    <key>.tok_<name>.npy   int16 (vocab <= 32767) or int32 token ids, shape (max_tokens,)
    <key>.caption.txt      text modalities copied as-is (tokenized on the fly during training)
    <key>.crop.json        with crops: {"top", "left", "height", "width", "flip", "source_key"}
With `crops=K`, each sample gives K random crops/flips <key>_c0 .. <key>_c{K-1}; one crop is drawn per
sample (from the seed and the key) and applied to every modality of it, so they stay aligned.
With `adaptive=AdaptiveLength(psnr_db=20)` (`fourm tokenize --rgb-tokens auto --rgb-psnr 20`),
image_seq modalities (FlexTok) keep only the first k tokens of each image, k the smallest of
1, 2, 4, ..., R reconstructing it at >= psnr_db (modality_tokenizers.flextok.adaptive).

Resumable: a finished output shard is skipped; a shard in progress is written as `.tar.tmp` and
renamed only when complete, so an interrupted run never leaves a corrupt shard.
"""
from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"


# ----------------------------------------------------------------------------- crops

@dataclass(frozen=True)
class Crop:
    """A crop box in source pixels and a horizontal flip, applied before resizing to the output size."""

    top: int
    left: int
    height: int
    width: int
    flip: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def sample_crop(generator, height: int, width: int, min_scale: float, flip: bool) -> Crop:
    """A random crop of area fraction in [min_scale, 1] with the image's aspect ratio, and a flip
    with probability 0.5 if `flip`. `generator` is a torch.Generator."""
    import torch

    u = torch.rand(4, generator=generator).tolist()
    scale = min_scale + (1.0 - min_scale) * u[0]
    crop_h = max(1, min(height, round(height * scale**0.5)))
    crop_w = max(1, min(width, round(width * scale**0.5)))
    top = int(u[1] * (height - crop_h + 1))
    left = int(u[2] * (width - crop_w + 1))
    return Crop(min(top, height - crop_h), min(left, width - crop_w), crop_h, crop_w, flip and u[3] < 0.5)


def apply_crop(data: str, x, crop: Crop, size: tuple[int, int]):
    """Crop + flip + resize one sample tensor in the raw convention of `data` (no batch axis):
    (C, H, W) float for image_rgb / depth_map / normal_map, (H, W) long for class_map.
    Class maps and depth use nearest neighbours (no mixed labels, no invalid-depth bleeding);
    RGB bilinear; normals bilinear then renormalised, and a horizontal flip negates their x."""
    import torch
    import torch.nn.functional as F

    if data == "text":
        return x
    x = x[..., crop.top: crop.top + crop.height, crop.left: crop.left + crop.width]
    if crop.flip:
        x = torch.flip(x, dims=[-1])
        if data == "normal_map":
            x = x * torch.tensor([-1.0, 1.0, 1.0]).view(3, 1, 1)
    if tuple(x.shape[-2:]) == tuple(size):
        return x.contiguous()
    if data in ("class_map", "depth_map"):
        batched = x[None, None] if data == "class_map" else x[None]
        out = F.interpolate(batched.float(), size=size, mode="nearest-exact")
        return out[0, 0].to(x.dtype) if data == "class_map" else out[0]
    out = F.interpolate(x[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    if data == "normal_map":
        norm = out.norm(dim=0, keepdim=True)
        out = torch.where(norm > 0.5, out / norm.clamp(min=1e-6), torch.zeros_like(out))
    return out


def key_seed(seed: int, key: str) -> int:
    """A per-sample seed, stable across runs and shard order (crops do not depend on what ran before)."""
    return (seed * 1_000_003 + zlib.crc32(key.encode("utf-8"))) % 2**63


# ----------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class TokenizeSettings:
    """crops: random crops per sample (0: each sample once, uncropped, same key);
    crop_min_scale: smallest crop area fraction; flip: random horizontal flips in crops (off by
    default: a flip makes captions that say 'left of' wrong);
    seed: crop randomness (per sample: seed + key); batch_size: samples per tokenizer call."""

    crops: int = 0
    crop_min_scale: float = 0.6
    flip: bool = False
    seed: int = 0
    batch_size: int = 64
    on_error: str = "raise"

    def __post_init__(self) -> None:
        if self.crops < 0 or not 0 < self.crop_min_scale <= 1 or self.batch_size < 1:
            raise ValueError(f"need crops >= 0, 0 < crop_min_scale <= 1, batch_size >= 1 (got {self})")


def token_dtype(vocab_size: int):
    return np.int16 if vocab_size <= np.iinfo(np.int16).max + 1 else np.int32


def shard_field(spec) -> str:
    """The modality's file stem in raw shards: 'depth.npy' -> 'depth' (what iter_samples keys by)."""
    return spec.raw_ext.rsplit(".", 1)[0]


# ----------------------------------------------------------------------------- one shard

def _views(keys: Sequence[str], sizes: Sequence[tuple[int, int]], settings: TokenizeSettings) -> list[list[Optional[Crop]]]:
    """Per sample, the crops to tokenize: [None] without crops, else `crops` random ones."""
    import torch

    if settings.crops == 0:
        return [[None] for _ in keys]
    views = []
    for key, (height, width) in zip(keys, sizes):
        gen = torch.Generator().manual_seed(key_seed(settings.seed, key))
        views.append([sample_crop(gen, height, width, settings.crop_min_scale, settings.flip) for _ in range(settings.crops)])
    return views


@dataclass(frozen=True)
class AdaptiveLength:
    """Variable-length image_seq tokens: psnr_db the reconstruction threshold, steps the
    decoder's Euler steps for the check, seed its noise."""

    psnr_db: float = 20.0
    steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.psnr_db <= 0 or self.steps < 1:
            raise ValueError(f"adaptive length: need psnr_db > 0 and steps >= 1 (got {self})")


def _encode_view(spec, tokenizer, values: list, crops: list[Optional[Crop]], adaptive: Optional[AdaptiveLength] = None):
    """Token ids (B, max_tokens) of one modality for a chunk of samples, each with its crop;
    with `adaptive`, image_seq rows are cut to their adaptive length (a list of 1D arrays)."""
    import torch

    from modality_tokenizers.raw import to_tensor

    batch = to_tensor(spec.data, values)
    if crops[0] is not None:
        size = tuple(batch.shape[-2:])
        batch = torch.stack([apply_crop(spec.data, x, c, size) for x, c in zip(batch, crops)])
    ids = tokenizer.encode(batch)
    ids = ids.detach().cpu().numpy() if hasattr(ids, "detach") else np.asarray(ids)
    ids = ids.reshape(len(values), -1).astype(token_dtype(tokenizer.vocab_size))
    if adaptive is None or spec.kind != "image_seq":
        return ids
    from modality_tokenizers.flextok.adaptive import adaptive_lengths

    lengths = adaptive_lengths(tokenizer, batch, threshold_db=adaptive.psnr_db, steps=adaptive.steps,
                               generator=torch.Generator().manual_seed(adaptive.seed))
    return [row[: int(k)] for row, k in zip(ids, lengths)]


def _chunk_samples(chunk: list[dict], specs, tokenizers, settings: TokenizeSettings,
                   adaptive: Optional[AdaptiveLength] = None) -> Iterator[dict]:
    """Output samples (writer format) of a chunk of raw samples, every view of every sample."""
    image_specs = [s for s in specs if s.kind != "text"]
    sizes = [_image_size(sample, image_specs) for sample in chunk]
    views = _views([s["__key__"] for s in chunk], sizes, settings)
    tokens: dict[tuple[str, int], np.ndarray] = {}
    for j in range(len(views[0])):
        crops = [v[j] for v in views]
        for spec in image_specs:
            values = [sample[shard_field(spec)] for sample in chunk]
            tokens[spec.name, j] = _encode_view(spec, tokenizers[spec.name], values, crops, adaptive)
    for i, sample in enumerate(chunk):
        for j, crop in enumerate(views[i]):
            out = {"__key__": sample["__key__"] if crop is None else f"{sample['__key__']}_c{j}"}
            for spec in specs:
                if spec.kind == "text":
                    out[spec.raw_ext] = sample[shard_field(spec)]
                else:
                    out[spec.token_ext] = tokens[spec.name, j][i]
            if crop is not None:
                out["crop.json"] = {**crop.to_dict(), "source_key": sample["__key__"]}
            yield out


def _image_size(sample: dict, image_specs) -> tuple[int, int]:
    if not image_specs:
        return (0, 0)
    value = np.asarray(sample[shard_field(image_specs[0])])
    return tuple(value.shape[:2])


def tokenize_shard(src: str, dst: str, specs, tokenizers: Mapping[str, Any], settings: TokenizeSettings,
                   on_sample=None, adaptive: Optional[AdaptiveLength] = None) -> int:
    """Tokenize raw shard `src` into token shard `dst` (atomically); returns the samples written."""
    from fourm.shards import AtomicShardWriter, iter_samples

    fields = [shard_field(s) for s in specs]
    with AtomicShardWriter(dst) as writer:
        chunk: list[dict] = []
        for sample in iter_samples([src], fields, on_error=settings.on_error):
            chunk.append(sample)
            if len(chunk) == settings.batch_size:
                _write_chunk(writer, chunk, specs, tokenizers, settings, on_sample, adaptive)
                chunk = []
        if chunk:
            _write_chunk(writer, chunk, specs, tokenizers, settings, on_sample, adaptive)
    return writer.count


def _write_chunk(writer, chunk, specs, tokenizers, settings, on_sample, adaptive=None) -> None:
    for out in _chunk_samples(chunk, specs, tokenizers, settings, adaptive):
        writer.write(out)
    if on_sample is not None:
        on_sample(len(chunk))


# ----------------------------------------------------------------------------- a dataset

def find_splits(data_dir: str | Path) -> dict[str, Path]:
    """{split: folder}: the sub-folders of `data_dir` holding *.tar, or {"": data_dir} if it holds them."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: no such dataset folder")
    if any(data_dir.glob("*.tar")):
        return {"": data_dir}
    splits = {p.name: p for p in sorted(data_dir.iterdir()) if p.is_dir() and any(p.glob("*.tar"))}
    if not splits:
        raise FileNotFoundError(f"{data_dir}: no shards (*.tar) in it or in its sub-folders")
    return splits


def load_tokenizers(specs, tokenizer_dirs: Mapping[str, str], device: str) -> dict[str, Any]:
    """Each image modality's tokenizer, from `tokenizer_dirs[name]` or the registry's `spec.tokenizer`."""
    from fourm.paths import resolve
    from modality_tokenizers.base import load_tokenizer

    _import_tokenizer_packages()
    tokenizers = {}
    for spec in specs:
        if spec.kind == "text":
            continue
        folder = resolve(tokenizer_dirs.get(spec.name, spec.tokenizer))
        if not (Path(folder) / "tokenizer_config.json").is_file():
            raise FileNotFoundError(f"modality '{spec.name}': no trained tokenizer at {folder} "
                                    f"(train it with `fourm tokenizer train --config {spec.tokenizer_config}`)")
        tokenizer = load_tokenizer(folder)
        if hasattr(tokenizer, "to"):
            tokenizer = tokenizer.to(device).eval()
        tokenizers[spec.name] = tokenizer
    return tokenizers


def _import_tokenizer_packages() -> None:
    """Register tokenizer types that `modality_tokenizers/__init__` may not import yet."""
    import importlib

    for name in ("modality_tokenizers.grid", "modality_tokenizers.flextok"):
        try:
            importlib.import_module(name)
        except Exception as err:  # a package under construction must not block the others
            log.debug("could not import %s: %s", name, err)


def _manifest(data_dir, specs, tokenizers, tokenizer_dirs, settings, splits, complete: bool,
              adaptive: Optional[AdaptiveLength] = None) -> dict:
    modalities = {}
    for spec in specs:
        entry = {"kind": spec.kind, "file": spec.token_ext}
        if adaptive is not None and spec.kind == "image_seq":
            entry["adaptive_length"] = asdict(adaptive)  # rows hold 1..max_tokens ids
        if spec.name in tokenizers:
            tok = tokenizers[spec.name]
            entry.update(vocab_size=int(tok.vocab_size), max_tokens=int(tok.max_tokens),
                         dtype=np.dtype(token_dtype(tok.vocab_size)).name,
                         tokenizer=str(tokenizer_dirs.get(spec.name, spec.tokenizer)))
        modalities[spec.name] = entry
    return {"source": str(data_dir), "modalities": modalities, "settings": asdict(settings),
            "splits": splits, "complete": complete}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _check_same_settings(out_dir: Path, manifest: dict) -> None:
    """Resuming into a folder tokenized with other settings would mix tokens: refuse."""
    path = out_dir / MANIFEST_NAME
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    for key in ("settings", "modalities"):
        if old.get(key) != manifest[key]:
            raise ValueError(f"{path}: this folder was tokenized with other {key} ({old.get(key)}); "
                             f"use another --out or delete it")


def tokenize_dataset(data_dir: str | Path, out_dir: str | Path, modalities: Sequence[str],
                     settings: TokenizeSettings = TokenizeSettings(), tokenizer_dirs: Optional[Mapping[str, str]] = None,
                     splits: Optional[Sequence[str]] = None, device: str = "cpu", progress: bool = True,
                     adaptive: Optional[AdaptiveLength] = None) -> dict:
    """Tokenize every split of a raw dataset (DIR/<split>/*.tar -> OUT/<split>/*.tar, same shard
    names); finished shards are kept, so an interrupted run resumes. Returns the manifest."""
    import torch
    from tqdm import tqdm

    from fourm.modalities import load_registry
    from fourm.shards import list_shards, remove_stale_temp_files

    tokenizer_dirs = dict(tokenizer_dirs or {})
    specs = list(load_registry(list(modalities)).values())
    tokenizers = load_tokenizers(specs, tokenizer_dirs, device)
    found = find_splits(data_dir)
    chosen = {s: found[s] for s in (splits or found)} if splits is None or all(s in found for s in splits) else None
    if chosen is None:
        raise FileNotFoundError(f"{data_dir}: splits {list(splits)} not all found (have: {', '.join(found) or 'none'})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(src, out_dir / split / Path(src).name) for split, folder in chosen.items() for src in list_shards(folder)]
    split_info = {split: {"shards": [p.name for p in map(Path, list_shards(folder))]} for split, folder in chosen.items()}
    manifest = _manifest(data_dir, specs, tokenizers, tokenizer_dirs, settings, split_info, complete=False, adaptive=adaptive)
    _check_same_settings(out_dir, manifest)
    _write_json(out_dir / MANIFEST_NAME, manifest)
    for split in chosen:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out_dir / split)
    todo = [(src, dst) for src, dst in jobs if not dst.is_file()]
    if len(todo) < len(jobs):
        log.info("resuming: %d of %d token shards already complete", len(jobs) - len(todo), len(jobs))
    with torch.inference_mode(), tqdm(total=len(todo), unit="shard", desc="tokenize", disable=not progress) as bar:
        for src, dst in todo:
            count = tokenize_shard(src, str(dst), specs, tokenizers, settings, adaptive=adaptive)
            log.info("%s -> %s (%d samples)", src, dst, count)
            bar.update(1)
    manifest["complete"] = True
    _write_json(out_dir / MANIFEST_NAME, manifest)
    return manifest
