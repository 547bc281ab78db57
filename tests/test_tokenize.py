"""`fourm tokenize`: raw shards -> token shards with aligned keys, crops shared by all modalities,
and resuming after an interrupted shard."""
import argparse
import os

import numpy as np
import pytest
import torch

from fourm.shards import iter_samples, write_shard_atomic
from fourm.tokenize import TokenizeSettings, apply_crop, tokenize_dataset
from modality_tokenizers.grid import GridTokenizer

MODALITIES = ["depth", "semseg", "caption"]


pytestmark = pytest.mark.usefixtures("one_thread")


def make_raw(folder, shards=2, per_shard=5, size=16):
    rng = np.random.default_rng(0)
    for s in range(shards):
        samples = []
        for i in range(per_shard):
            depth = rng.uniform(4, 20, (size, size)).astype(np.float32)
            depth[0] = 0.0
            samples.append({"__key__": f"scene_{s}_{i:03d}", "depth.npy": depth,
                            "semseg.png": rng.integers(0, 6, (size, size), dtype=np.uint8),
                            "caption.txt": f"caption {s} {i}"})
        write_shard_atomic(folder / "train" / f"shard-{s:06d}.tar", samples)


def make_tokenizers(folder, size=16):
    dirs = {}
    for name, data in (("depth", "depth_map"), ("semseg", "class_map")):
        torch.manual_seed(0)
        cfg = GridTokenizer.Config(data=data, image_size=size, patch_size=4, width=32, depth=1, heads=2,
                                   stem_channels=8, levels=(4, 4, 3), num_classes=6 if data == "class_map" else 0,
                                   depth_log_mean=2.2, depth_log_std=0.3)
        GridTokenizer(cfg).save_pretrained(folder / name)
        dirs[name] = str(folder / name)
    return dirs


def read(path):
    return list(iter_samples([str(path)], image_size=None))


def test_token_shards_have_aligned_keys(tmp_path):
    make_raw(tmp_path / "raw")
    dirs = make_tokenizers(tmp_path / "tok")
    manifest = tokenize_dataset(tmp_path / "raw", tmp_path / "out", MODALITIES, TokenizeSettings(batch_size=4), dirs, progress=False)
    assert manifest["complete"] and manifest["modalities"]["depth"]["dtype"] == "int16"
    raw = read(tmp_path / "raw/train/shard-000001.tar")
    out = read(tmp_path / "out/train/shard-000001.tar")
    assert [s["__key__"] for s in out] == [s["__key__"] for s in raw]
    tok = GridTokenizer.from_pretrained(dirs["semseg"])
    expected = tok.encode(torch.from_numpy(np.stack([s["semseg"] for s in raw])).long()).numpy()
    for sample, ids in zip(out, expected):
        assert sample["tok_depth"].shape == (16,) and sample["tok_depth"].dtype == np.int16
        assert np.array_equal(sample["tok_semseg"], ids)
    assert out[2]["caption"] == raw[2]["caption"]


def test_crops_are_shared_by_all_modalities(tmp_path):
    make_raw(tmp_path / "raw", shards=1, per_shard=3)
    dirs = make_tokenizers(tmp_path / "tok")
    settings = TokenizeSettings(crops=2, crop_min_scale=0.5, flip=True, seed=3, batch_size=8)
    tokenize_dataset(tmp_path / "raw", tmp_path / "out", MODALITIES, settings, dirs, progress=False)
    raw = {s["__key__"]: s for s in read(tmp_path / "raw/train/shard-000000.tar")}
    out = read(tmp_path / "out/train/shard-000000.tar")
    assert [s["__key__"] for s in out] == [f"{k}_c{j}" for k in raw for j in range(2)]
    tok = GridTokenizer.from_pretrained(dirs["semseg"])
    for sample in out:
        crop = sample["crop"]
        assert set(crop) == {"top", "left", "height", "width", "flip", "source_key"}
        source = torch.from_numpy(np.array(raw[crop["source_key"]]["semseg"])).long()
        from fourm.tokenize import Crop

        box = Crop(**{k: v for k, v in crop.items() if k != "source_key"})
        expected = tok.encode(apply_crop("class_map", source, box, (16, 16))[None])[0].numpy()
        assert np.array_equal(sample["tok_semseg"], expected)
        assert "tok_depth" in sample and sample["caption"] == raw[crop["source_key"]]["caption"]


def test_resume_after_an_interrupted_shard(tmp_path, monkeypatch):
    make_raw(tmp_path / "raw", shards=3, per_shard=5)
    dirs = make_tokenizers(tmp_path / "tok")
    settings = TokenizeSettings(batch_size=4)
    calls = {"n": 0}
    original = GridTokenizer.encode

    def failing_encode(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # shard 0 takes 4 calls (2 chunks x 2 modalities): fail inside shard 1
            raise KeyboardInterrupt("simulated kill")
        return original(self, batch)

    monkeypatch.setattr(GridTokenizer, "encode", failing_encode)
    with pytest.raises(KeyboardInterrupt):
        tokenize_dataset(tmp_path / "raw", tmp_path / "out", MODALITIES, settings, dirs, progress=False)
    out = tmp_path / "out/train"
    assert sorted(os.listdir(out)) == ["shard-000000.tar"]  # no half-written shard, no temp file
    (out / "shard-000002.tar.tmp").write_bytes(b"left by a killed process")
    first_mtime = (out / "shard-000000.tar").stat().st_mtime_ns
    monkeypatch.setattr(GridTokenizer, "encode", original)
    manifest = tokenize_dataset(tmp_path / "raw", tmp_path / "out", MODALITIES, settings, dirs, progress=False)
    assert manifest["complete"]
    assert sorted(os.listdir(out)) == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert (out / "shard-000000.tar").stat().st_mtime_ns == first_mtime  # not redone
    assert [s["__key__"] for s in read(out / "shard-000002.tar")] == [f"scene_2_{i:03d}" for i in range(5)]


def test_cli_and_changed_settings_are_refused(tmp_path):
    from fourm.cli import tokenize as cli

    make_raw(tmp_path / "raw", shards=1, per_shard=2)
    dirs = make_tokenizers(tmp_path / "tok")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    base = ["tokenize", "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--modalities", "depth", "semseg",
            "--tokenizer", f"depth={dirs['depth']}", "--tokenizer", f"semseg={dirs['semseg']}", "--no-progress"]
    args = parser.parse_args(base)
    assert args.func(args) == 0
    assert len(read(tmp_path / "out/train/shard-000000.tar")) == 2
    args = parser.parse_args(base + ["--crops", "2"])
    with pytest.raises(ValueError, match="other settings"):
        args.func(args)
