"""Webdataset tar shards: list them, read samples with clear errors, write them atomically.

A shard is a plain tar of files named `<key>.<modality>.<ext>`, e.g. `scenes_train_0000003.rgb.png`.
Files of one sample are contiguous. Values are decoded by the last extension:

    .png  -> uint8 array (H, W) or (H, W, 3|4); 16-bit PNGs stay uint16
    .npy  -> array (np.load, allow_pickle=False)
    .txt  -> str
    .json -> parsed JSON (dict)

Bad input never crashes an epoch silently: with on_error="raise" it raises `ShardError` naming the
shard and the sample key; with on_error="skip" the sample (or the rest of a broken shard) is
skipped, counted in `ReadStats` and logged as a warning.
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import logging
import os
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
# Fixed tar metadata, so the same samples give byte-identical shards.
_TAR_MTIME = 0  # an int: a float mtime makes tarfile add a PAX header to every file


class ShardError(ValueError):
    """A shard or a sample in it cannot be used; the message names the shard file and sample key.
    `reason` is the ReadStats counter it goes to when skipped."""

    reason = "error"


@dataclass
class ReadStats:
    """What `iter_samples` read and skipped. `skipped` counts by reason:
    missing_shard, corrupt_shard, missing_modality, decode_error, wrong_size."""

    samples: int = 0
    skipped: Counter = field(default_factory=Counter)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"{self.samples} samples read, {self.total_skipped} skipped ({reasons})"


# ----------------------------------------------------------------------------- listing

def _expand_braces(pattern: str) -> list[str]:
    """Expand webdataset-style numeric ranges: 'shard-{000000..000003}.tar' -> 4 names."""
    match = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if not match:
        return [pattern]
    lo, hi = match.group(1), match.group(2)
    width = len(lo)
    head, tail = pattern[: match.start()], pattern[match.end():]
    names = []
    for i in range(int(lo), int(hi) + 1):
        names += _expand_braces(f"{head}{i:0{width}d}{tail}")
    return names


def list_shards(source: str | Path | Sequence[str | Path]) -> list[str]:
    """Sorted shard paths from a folder (its *.tar), a glob, a brace range or a list of files.

    Raises ShardError if nothing matches or a shard named explicitly does not exist.
    """
    if not isinstance(source, (str, Path)):
        paths = [str(p) for p in source]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise ShardError(f"shard not found: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        if not paths:
            raise ShardError("empty list of shards")
        return sorted(paths)
    source = str(source)
    if os.path.isdir(source):
        paths = sorted(glob.glob(os.path.join(source, "*.tar")))
        if not paths:
            splits = sorted({os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(source, "*", "*.tar"))})
            hint = f" (its subfolders {', '.join(splits)} have some: pass one of them)" if splits else ""
            raise ShardError(f"no shards (*.tar) in folder {source}{hint}")
        return paths
    if "{" in source:
        return list_shards(_expand_braces(source))
    if any(ch in source for ch in "*?["):
        paths = sorted(glob.glob(source))
        if not paths:
            raise ShardError(f"no shards match {source}")
        return paths
    if not os.path.isfile(source):
        raise ShardError(f"shard not found: {source}")
    return [source]


def find_manifest(shard_path: str | Path) -> Optional[dict]:
    """The manifest.json beside a shard or one folder up (DIR/train/shard.tar -> DIR/manifest.json)."""
    folder = Path(shard_path).resolve().parent
    for candidate in (folder / MANIFEST_NAME, folder.parent / MANIFEST_NAME):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    return None


# ----------------------------------------------------------------------------- codecs

def encode_value(ext: str, value: Any) -> bytes:
    """Bytes for a file with extension `ext` ('png', 'npy', 'txt', 'json'); bytes pass through."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if ext == "png":
        from PIL import Image

        buf = io.BytesIO()
        # Low compression: shards are written once and read often; level 1 is ~3x faster to write.
        Image.fromarray(np.ascontiguousarray(value)).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    if ext == "npy":
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        return buf.getvalue()
    if ext == "txt":
        return str(value).encode("utf-8")
    if ext == "json":
        return json.dumps(value, sort_keys=True).encode("utf-8")
    raise ValueError(f"cannot encode extension '.{ext}' (known: png, npy, txt, json, or pass bytes)")


def decode_value(ext: str, data: bytes) -> Any:
    """Inverse of `encode_value`; unknown extensions come back as bytes."""
    if ext == "png":
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode == "P":  # palette PNGs hold class indices: keep the indices
                return np.asarray(img, dtype=np.uint8)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(img).astype(np.uint16)
            if img.mode not in ("L", "RGB", "RGBA"):
                img = img.convert("RGB")
            return np.asarray(img)
    if ext == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if ext == "txt":
        return data.decode("utf-8")
    if ext == "json":
        return json.loads(data.decode("utf-8"))
    return data


def split_name(name: str) -> tuple[str, str, str]:
    """'dir/abc.rgb.png' -> ('dir/abc', 'rgb', 'png'): key up to the first dot of the base name."""
    folder, base = os.path.split(name)
    if "." not in base:
        return name, "", ""
    stem, rest = base.split(".", 1)
    key = os.path.join(folder, stem) if folder else stem
    modality, _, ext = rest.rpartition(".")
    return key, modality or ext, ext


# ----------------------------------------------------------------------------- reading

def _raw_samples(shard: str, reading: dict) -> Iterator[tuple[str, dict[str, tuple[str, bytes]]]]:
    """(key, {modality: (ext, bytes)}) per sample, grouping contiguous files. Tar errors propagate;
    reading["key"] names the sample being read when they do."""
    key, files = None, {}
    with tarfile.open(shard, mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            member_key, modality, ext = split_name(member.name)
            if not modality:
                continue
            if member_key != key:
                if key is not None:
                    yield key, files
                key, files = member_key, {}
                reading["key"] = key
            files[modality] = (ext, tar.extractfile(member).read())
        if shard.endswith(".tar"):
            _check_end_marker(shard, tar.offset)
    if key is not None:
        yield key, files


def _check_end_marker(shard: str, offset: int) -> None:
    """tarfile stops quietly when a file is cut exactly at a header; a complete tar ends with
    two zero blocks there, so their absence means the shard was truncated."""
    with open(shard, "rb") as f:
        f.seek(offset)
        marker = f.read(2 * tarfile.BLOCKSIZE)
    if len(marker) < 2 * tarfile.BLOCKSIZE or marker.count(0) != len(marker):
        raise tarfile.ReadError(f"no end-of-archive marker at byte {offset} (file cut short)")


def _decode_sample(shard: str, key: str, files: Mapping, modalities, image_size) -> dict:
    """Decode one sample; raises ShardError(reason attribute set) on missing data, bad bytes, wrong size."""
    wanted = list(modalities) if modalities is not None else sorted(files)
    missing = [m for m in wanted if m not in files]
    if missing:
        raise _reasoned(f"{shard}: sample '{key}' has no '{missing[0]}' (has: {', '.join(sorted(files))})", "missing_modality")
    sample = {"__key__": key, "__shard__": shard}
    for modality in wanted:
        ext, data = files[modality]
        try:
            value = decode_value(ext, data)
        except Exception as err:  # any decoder failure is bad input in this sample
            raise _reasoned(f"{shard}: sample '{key}': cannot decode {key}.{modality}.{ext}: {err}", "decode_error") from err
        if ext == "png" and image_size is not None and tuple(value.shape[:2]) != tuple(image_size):
            raise _reasoned(f"{shard}: sample '{key}': {key}.{modality}.{ext} is {value.shape[1]}x{value.shape[0]} (WxH), "
                            f"expected {image_size[1]}x{image_size[0]} from the manifest", "wrong_size")
        sample[modality] = value
    return sample


def _reasoned(message: str, reason: str) -> ShardError:
    err = ShardError(message)
    err.reason = reason
    return err


def _manifest_size(shard: str) -> Optional[tuple[int, int]]:
    manifest = find_manifest(shard)
    if manifest and manifest.get("resolution"):
        height, width = manifest["resolution"]
        return int(height), int(width)
    return None


def iter_samples(shard_paths: Iterable[str | Path], modalities: Optional[Sequence[str]] = None,
                 on_error: str = "raise", stats: Optional[ReadStats] = None,
                 image_size: Optional[tuple[int, int]] | str = "manifest") -> Iterator[dict]:
    """Yield decoded samples {"__key__", "__shard__", "<modality>": value, ...} from shards in order.

    modalities: names to decode (others are ignored); None decodes all present.
    on_error:   "raise" -> ShardError naming shard and key; "skip" -> skip, count in `stats`, warn.
    image_size: (H, W) every PNG must have; "manifest" reads it from the shards' manifest.json
                (if there is one); None checks nothing.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    stats = stats if stats is not None else ReadStats()

    def handle(err: ShardError) -> None:
        if on_error == "raise":
            raise err
        stats.skipped[err.reason] += 1
        log.warning("skipping (%s): %s", err.reason, err)

    for shard in map(str, shard_paths):
        if not os.path.isfile(shard):
            handle(_reasoned(f"shard not found: {shard}", "missing_shard"))
            continue
        size = _manifest_size(shard) if image_size == "manifest" else image_size
        reading = {"key": None}
        try:
            for key, files in _raw_samples(shard, reading):
                try:
                    sample = _decode_sample(shard, key, files, modalities, size)
                except ShardError as err:
                    handle(err)
                    continue
                stats.samples += 1
                yield sample
        except (tarfile.TarError, EOFError, OSError) as err:
            where = f"at sample '{reading['key']}'" if reading["key"] else "before the first sample"
            handle(_reasoned(f"{shard}: truncated or corrupt tar {where} (the rest of the shard is lost): {err}",
                             "corrupt_shard"))


# ----------------------------------------------------------------------------- writing

class AtomicShardWriter:
    """Write samples to `path` through `path + '.tmp'`; the shard appears only once complete.

    A sample is {"__key__": str, "<modality>.<ext>": bytes | array | str | dict}; values that are
    not bytes are encoded by extension (see `encode_value`). Use as a context manager: on an
    exception the temp file is removed and `path` is left untouched.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.tmp_path = self.path + ".tmp"
        self.count = 0
        self._file = None
        self._tar = None

    def __enter__(self) -> "AtomicShardWriter":
        from webdataset import TarWriter

        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._file = open(self.tmp_path, "wb")
        self._tar = TarWriter(self._file, encoder=False, mtime=_TAR_MTIME, user="fourm", group="fourm")
        return self

    def write(self, sample: Mapping[str, Any]) -> None:
        encoded = {"__key__": sample["__key__"]}
        for name, value in sample.items():
            if not name.startswith("__"):
                encoded[name] = encode_value(name.rsplit(".", 1)[-1], value)
        self._tar.write(encoded)
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._tar.close()
        self._file.close()
        if exc_type is None:
            os.replace(self.tmp_path, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp_path)


def write_shard_atomic(path: str | Path, samples: Iterable[Mapping[str, Any]]) -> int:
    """Write all `samples` to the shard `path` atomically; returns how many were written."""
    with AtomicShardWriter(path) as writer:
        for sample in samples:
            writer.write(sample)
    return writer.count


def remove_stale_temp_files(folder: str | Path) -> list[str]:
    """Delete `*.tar.tmp` left by an interrupted run; returns their paths."""
    stale = sorted(glob.glob(os.path.join(str(folder), "*.tar.tmp")))
    for path in stale:
        os.remove(path)
        log.info("removed unfinished shard %s", path)
    return stale
