"""`fourm data pack` and `fourm data preview`, through the library and the argparse commands."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from fourm.cli import data as data_cli
from fourm.datasets.pack import pack_folder
from fourm.datasets.preview import make_preview
from fourm.datasets.scenes.generate import generate_scenes
from fourm.shards import iter_samples, list_shards

SIZE = 16


def make_source(root, names=("a", "b", "c"), size=SIZE):
    rng = np.random.default_rng(0)
    for sub in ("rgb", "depth", "semseg", "caption"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "rgb" / f"{name}.png")
        np.save(root / "depth" / f"{name}.npy", rng.random((size, size)).astype(np.float32) * 5)
        Image.fromarray(rng.integers(0, 4, (size, size), dtype=np.uint8)).save(root / "semseg" / f"{name}.png")
        (root / "caption" / f"{name}.txt").write_text(f"photo {name}\n")
    return root


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourm")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_pack_round_trip(tmp_path):
    src = make_source(tmp_path / "src")
    report = pack_folder(src, tmp_path / "out", shard_size=2, progress=False)
    assert report.written == 3 and len(report.shards) == 2 and report.resolution == (SIZE, SIZE)
    samples = list(iter_samples(list_shards(tmp_path / "out" / "train")))
    assert [s["__key__"] for s in samples] == ["a", "b", "c"]
    assert np.array_equal(samples[1]["rgb"], np.asarray(Image.open(src / "rgb" / "b.png")))
    assert np.array_equal(samples[1]["depth"], np.load(src / "depth" / "b.npy"))
    assert samples[2]["caption"] == "photo c"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["resolution"] == [SIZE, SIZE] and manifest["splits"]["train"]["count"] == 3


def test_pack_missing_modality_names_file_or_skips(tmp_path):
    src = make_source(tmp_path / "src")
    (src / "depth" / "b.npy").unlink()
    with pytest.raises(ValueError, match=r"sample 'b': missing depth/b.npy"):
        pack_folder(src, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out" / "train").glob("*.tar*"))  # nothing half-written
    report = pack_folder(src, tmp_path / "out", skip_bad=True, progress=False)
    assert report.written == 2 and list(report.skipped) == ["b"]


def test_pack_wrong_size_names_file(tmp_path):
    src = make_source(tmp_path / "src")
    Image.fromarray(np.zeros((SIZE, SIZE + 1), dtype=np.uint8)).save(src / "semseg" / "c.png")
    with pytest.raises(ValueError, match=r"semseg/c.png: size 17x16 \(WxH\) differs from 16x16 of the first image .*rgb/a.png"):
        pack_folder(src, tmp_path / "out", progress=False)


def test_pack_refuses_to_mix_with_old_shards(tmp_path):
    src = make_source(tmp_path / "src")
    pack_folder(src, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="already holds shards"):
        pack_folder(src, tmp_path / "out", progress=False)
    assert pack_folder(src, tmp_path / "out", overwrite=True, progress=False).written == 3


def test_cli_scenes_then_preview(tmp_path):
    out = tmp_path / "scenes"
    assert run_cli(["data", "scenes", "--out", str(out), "--n", "3", "--n-val", "2", "--res", "16", "--no-progress"]) == 0
    assert len(list_shards(out / "val")) == 1
    preview = tmp_path / "preview.png"
    assert run_cli(["data", "preview", str(out), "--out", str(preview), "--n", "2"]) == 0
    image = np.asarray(Image.open(preview))
    assert image.shape[0] > 300 and image.shape[1] > 800 and image.std() > 10


def test_cli_pack_and_preview_of_partial_modalities(tmp_path):
    src = make_source(tmp_path / "src")
    assert run_cli(["data", "pack", "--src", str(src), "--out", str(tmp_path / "out"), "--split", "val", "--no-progress"]) == 0
    make_preview(tmp_path / "out", tmp_path / "p.png", n=3)  # no normals column: must still draw
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_scenes_generation_in_two_workers_matches_one(tmp_path):
    generate_scenes(tmp_path / "one", n=4, n_val=1, resolution=8, shard_size=2, progress=False)
    generate_scenes(tmp_path / "two", n=4, n_val=1, resolution=8, shard_size=2, workers=2, progress=False)
    for shard in ("train/shard-000000.tar", "train/shard-000001.tar", "val/shard-000000.tar"):
        assert (tmp_path / "one" / shard).read_bytes() == (tmp_path / "two" / shard).read_bytes()
