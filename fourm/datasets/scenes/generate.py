"""Write the scenes dataset as webdataset shards: DIR/{train,val}/shard-NNNNNN.tar + DIR/manifest.json.

Sample `index` of `split` is drawn from np.random.default_rng((seed, SPLIT_STREAMS[split], index)),
so any sample can be regenerated alone and train/val never share a scene. Shards are written
under a temp name and renamed when complete; a rerun with the same settings keeps finished
shards (their content is deterministic), removes temp files and writes what is missing.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from fourm.datasets.codecs import encode_normals
from fourm.datasets.scenes.captions import make_caption
from fourm.datasets.scenes.grounding import grounded_objects
from fourm.datasets.scenes.render import Rendering, render
from fourm.datasets.scenes.world import CLASS_NAMES, COLORSEG_NAMES, GENERATOR_VERSION, PALETTE, SHAPES, Scene, sample_scene, scene_to_dict
from fourm.shards import MANIFEST_NAME, AtomicShardWriter, remove_stale_temp_files

log = logging.getLogger(__name__)

SPLIT_STREAMS = {"train": 0, "val": 1}
SHARD_PATTERN = "shard-{:06d}.tar"
FILE_EXTENSIONS = ("rgb.png", "depth.npy", "semseg.png", "colorseg.png", "normals.png", "caption.txt", "objects.txt",
                   "scene.json")


@dataclass
class SceneSample:
    key: str
    scene: Scene
    rendering: Rendering
    caption: str
    objects: str  # the caption's objects grounded in the image (grounding.py)

    def files(self) -> dict:
        """{"__key__", "<modality>.<ext>": value} as written to a shard."""
        r = self.rendering
        height, width = r.depth.shape
        return {"__key__": self.key, "rgb.png": r.rgb, "depth.npy": r.depth, "semseg.png": r.semseg,
                "colorseg.png": r.colorseg, "normals.png": encode_normals(r.normals), "caption.txt": self.caption,
                "objects.txt": self.objects, "scene.json": scene_to_dict(self.scene, height, width)}


def sample_key(split: str, index: int) -> str:
    return f"scenes_{split}_{index:07d}"


def render_sample(seed: int, split: str, index: int, resolution: int) -> SceneSample:
    """Sample `index` of `split`, regenerated alone from (seed, split, index)."""
    rng = np.random.default_rng((seed, SPLIT_STREAMS[split], index))
    scene = sample_scene(rng)
    caption, order = make_caption(scene, rng)
    rendering = render(scene, resolution, resolution)
    return SceneSample(sample_key(split, index), scene, rendering, caption,
                       grounded_objects(scene, rendering.colorseg, order))


@dataclass(frozen=True)
class ShardJob:
    path: str
    split: str
    start: int  # first sample index
    stop: int  # one past the last
    seed: int
    resolution: int


def write_shard(job: ShardJob, on_sample: Optional[Callable[[], None]] = None) -> int:
    with AtomicShardWriter(job.path) as writer:
        for index in range(job.start, job.stop):
            writer.write(render_sample(job.seed, job.split, index, job.resolution).files())
            if on_sample:
                on_sample()
    return writer.count


def plan_shards(out_dir: Path, split: str, count: int, shard_size: int, seed: int, resolution: int) -> list[ShardJob]:
    return [ShardJob(str(out_dir / split / SHARD_PATTERN.format(k)), split, start, min(start + shard_size, count),
                     seed, resolution)
            for k, start in enumerate(range(0, count, shard_size))]


def _settings(n: int, n_val: int, resolution: int, seed: int, shard_size: int) -> dict:
    # `files`: a folder made before a file kind was added (colorseg) would resume into shards
    # that lack it, so it is a setting too
    return {"generator_version": GENERATOR_VERSION, "seed": seed, "resolution": [resolution, resolution],
            "shard_size": shard_size, "counts": {"train": n, "val": n_val}, "files": list(FILE_EXTENSIONS)}


def _check_resumable(out_dir: Path, settings: dict) -> None:
    """A rerun may only add to a folder made with exactly the same settings."""
    path = out_dir / MANIFEST_NAME
    if not path.is_file():
        leftovers = sorted(out_dir.glob("*/shard-*.tar"))
        if leftovers:
            raise ValueError(f"{out_dir} holds shards ({leftovers[0]}) but no {MANIFEST_NAME}; use an empty --out folder")
        return
    old = json.loads(path.read_text())
    for name, value in settings.items():
        if old.get(name) != value:
            raise ValueError(f"{path}: this folder was made with {name}={old.get(name)!r}, now asked for {value!r}; "
                             "use another --out folder (or delete this one)")


def build_manifest(settings: dict, jobs: list[ShardJob], out_dir: Path, complete: bool) -> dict:
    splits = {}
    for split in SPLIT_STREAMS:
        shards = [{"path": os.path.relpath(j.path, out_dir), "samples": j.stop - j.start} for j in jobs if j.split == split]
        splits[split] = {"count": settings["counts"][split], "shards": shards}
    return {
        "dataset": "fourm-scenes", **settings, "complete": complete, "splits": splits,
        "class_names": list(CLASS_NAMES),
        "colorseg_names": list(COLORSEG_NAMES), "shapes": list(SHAPES),
        "palette": {name: list(rgb) for name, rgb in PALETTE.items()},
        "sample_rng": "numpy.random.default_rng((seed, split_stream, index)), split_stream: " + json.dumps(SPLIT_STREAMS),
        "key_format": "scenes_{split}_{index:07d}",
        "conventions": {
            "world": "metres, z up, floor at z = 0; object position = bounding-box centre",
            "depth": "float32 z-depth along the camera's optical axis in metres; 0 = nothing hit (background)",
            "semseg": "uint8 class index into class_names; 0 = background",
            "colorseg": "uint8 label into colorseg_names: 0 background, 1 floor, then one per (shape, colour)",
            "objects": "the caption opening's objects in its order: \"<colour> <shape> r<row> c<col>\" (8x8 cell of the "
                       "visible centre) or \"<colour> <shape> hidden\", joined by \"; \"",
            "normals": "camera frame (x right, y up, z towards the camera), unit length; uint8 PNG = "
                       "round(n * 127.5 + 127.5); background is the zero vector, stored as (128, 128, 128)",
            "rgb": "uint8 sRGB, one ray per pixel centre (no anti-aliasing, so every modality aligns exactly)",
        },
    }


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    tmp = out_dir / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out_dir / MANIFEST_NAME)


def generate_scenes(out_dir: str | Path, n: int, resolution: int = 64, seed: int = 0, n_val: Optional[int] = None,
                    shard_size: int = 256, workers: int = 1, progress: bool = True) -> dict:
    """Write (or finish writing) the dataset; returns the manifest."""
    n_val = max(n // 10, 1) if n_val is None else n_val
    if n < 1 or n_val < 0 or resolution < 4 or shard_size < 1 or seed < 0:
        raise ValueError(f"need n >= 1, n_val >= 0, res >= 4, shard_size >= 1, seed >= 0 "
                         f"(got {n}, {n_val}, {resolution}, {shard_size}, {seed})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(n, n_val, resolution, seed, shard_size)
    _check_resumable(out_dir, settings)
    jobs = [job for split, count in (("train", n), ("val", n_val))
            for job in plan_shards(out_dir, split, count, shard_size, seed, resolution)]
    _write_manifest(out_dir, build_manifest(settings, jobs, out_dir, complete=False))
    for split in SPLIT_STREAMS:
        remove_stale_temp_files(out_dir / split)
    todo = [j for j in jobs if not os.path.isfile(j.path)]
    if len(todo) < len(jobs):
        log.info("resuming: %d of %d shards already complete", len(jobs) - len(todo), len(jobs))
    _run_jobs(todo, workers, progress)
    manifest = build_manifest(settings, jobs, out_dir, complete=True)
    _write_manifest(out_dir, manifest)
    log.info("wrote %d train + %d val samples at %dx%d to %s", n, n_val, resolution, resolution, out_dir)
    return manifest


def _run_jobs(jobs: list[ShardJob], workers: int, progress: bool) -> None:
    from tqdm import tqdm

    with tqdm(total=sum(j.stop - j.start for j in jobs), unit="sample", desc="scenes", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                write_shard(job, on_sample=lambda: bar.update(1))
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(write_shard, job) for job in jobs]
            for future in as_completed(futures):
                bar.update(future.result())
