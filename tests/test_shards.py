"""Shard writing and reading: round trips, listing, and every bad-input case named and counted."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from fourm.shards import (ReadStats, ShardError, iter_samples, list_shards, remove_stale_temp_files,
                          write_shard_atomic)


def make_samples(n: int, size: int = 8, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"__key__": f"s_{start + i:04d}",
             "rgb.png": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
             "semseg.png": rng.integers(0, 6, (size, size), dtype=np.uint8),
             "depth.npy": rng.random((size, size), dtype=np.float32),
             "caption.txt": f"sample {start + i}",
             "scene.json": {"i": start + i}} for i in range(n)]


@pytest.fixture
def shard_dir(tmp_path):
    write_shard_atomic(tmp_path / "shard-000000.tar", make_samples(3))
    write_shard_atomic(tmp_path / "shard-000001.tar", make_samples(3, start=3))
    return tmp_path


def test_round_trip_all_types(tmp_path):
    written = make_samples(2) + [{"__key__": "deep", "semseg.png": np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000}]
    write_shard_atomic(tmp_path / "a.tar", written)
    read = list(iter_samples([tmp_path / "a.tar"]))
    assert [r["__key__"] for r in read] == ["s_0000", "s_0001", "deep"]
    for w, r in zip(written[:2], read):
        assert np.array_equal(w["rgb.png"], r["rgb"]) and r["rgb"].dtype == np.uint8
        assert np.array_equal(w["semseg.png"], r["semseg"]) and r["semseg"].shape == (8, 8)
        assert np.array_equal(w["depth.npy"], r["depth"]) and r["depth"].dtype == np.float32
        assert r["caption"] == w["caption.txt"] and r["scene"] == w["scene.json"]
    assert read[2]["semseg"].dtype == np.uint16 and np.array_equal(read[2]["semseg"], written[2]["semseg.png"])
    assert not (tmp_path / "a.tar.tmp").exists()


def test_modalities_subset(shard_dir):
    sample = next(iter_samples(list_shards(shard_dir), modalities=["caption"]))
    assert set(sample) == {"__key__", "__shard__", "caption"}


def test_writer_leaves_nothing_on_error(tmp_path):
    def broken():
        yield make_samples(1)[0]
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_shard_atomic(tmp_path / "x.tar", broken())
    assert list(tmp_path.iterdir()) == []


def test_list_shards(shard_dir):
    names = ["shard-000000.tar", "shard-000001.tar"]
    assert [p.split("/")[-1] for p in list_shards(shard_dir)] == names
    assert len(list_shards(str(shard_dir / "shard-*.tar"))) == 2
    assert len(list_shards(str(shard_dir / "shard-{000000..000001}.tar"))) == 2
    with pytest.raises(ShardError, match="shard-000002.tar"):
        list_shards(str(shard_dir / "shard-{000000..000002}.tar"))
    with pytest.raises(ShardError, match="no shards"):
        list_shards(shard_dir / "nothing_here_*.tar")
    (shard_dir / "empty").mkdir()
    with pytest.raises(ShardError, match="empty"):
        list_shards(shard_dir / "empty")


def test_stale_temp_files_removed(tmp_path):
    (tmp_path / "shard-000003.tar.tmp").write_bytes(b"x")
    assert len(remove_stale_temp_files(tmp_path)) == 1 and not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- bad input

def read_all(paths, **kw):
    return [s["__key__"] for s in iter_samples(paths, **kw)]


def test_missing_shard(shard_dir):
    paths = [shard_dir / "shard-000000.tar", shard_dir / "gone.tar"]
    with pytest.raises(ShardError, match="gone.tar"):
        read_all(paths)
    stats = ReadStats()
    assert len(read_all(paths, on_error="skip", stats=stats)) == 3
    assert stats.skipped["missing_shard"] == 1 and stats.samples == 3


@pytest.mark.parametrize("cut", ["mid_file", "at_header"])
def test_truncated_shard(shard_dir, cut):
    path = shard_dir / "shard-000001.tar"
    data = path.read_bytes()
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    # cut inside the 1st file of sample 4 / exactly at the header of sample 5's first file
    victim = members[5] if cut == "mid_file" else members[10]
    end = victim.offset_data + 10 if cut == "mid_file" else victim.offset
    path.write_bytes(data[:end])
    with pytest.raises(ShardError, match=r"shard-000001.tar.*truncated.*s_0004"):
        read_all(list_shards(shard_dir))
    stats = ReadStats()
    keys = read_all(list_shards(shard_dir), on_error="skip", stats=stats)
    assert stats.skipped["corrupt_shard"] == 1
    assert keys[:4] == ["s_0000", "s_0001", "s_0002", "s_0003"] and "s_0005" not in keys


def test_missing_modality(shard_dir):
    samples = make_samples(2, start=10)
    del samples[1]["depth.npy"]
    write_shard_atomic(shard_dir / "shard-000002.tar", samples)
    with pytest.raises(ShardError, match=r"shard-000002.tar: sample 's_0011' has no 'depth'"):
        read_all(list_shards(shard_dir), modalities=["rgb", "depth"])
    stats = ReadStats()
    keys = read_all(list_shards(shard_dir), modalities=["rgb", "depth"], on_error="skip", stats=stats)
    assert "s_0011" not in keys and len(keys) == 7 and stats.skipped["missing_modality"] == 1


def test_wrong_image_size_against_manifest(shard_dir):
    (shard_dir / "manifest.json").write_text(json.dumps({"resolution": [8, 8]}))
    write_shard_atomic(shard_dir / "shard-000002.tar", make_samples(1, size=8, start=20) + make_samples(1, size=9, start=21))
    with pytest.raises(ShardError, match=r"shard-000002.tar: sample 's_0021'.*9x9.*expected 8x8"):
        read_all(list_shards(shard_dir))
    stats = ReadStats()
    assert len(read_all(list_shards(shard_dir), on_error="skip", stats=stats)) == 7
    assert stats.skipped["wrong_size"] == 1
    assert len(read_all(list_shards(shard_dir), image_size=None)) == 8  # the check can be turned off


def test_corrupt_png(shard_dir):
    sample = make_samples(1, start=30)[0]
    sample["rgb.png"] = b"\x89PNG not really"
    write_shard_atomic(shard_dir / "shard-000002.tar", [sample])
    with pytest.raises(ShardError, match=r"shard-000002.tar: sample 's_0030': cannot decode s_0030.rgb.png"):
        read_all(list_shards(shard_dir))
    stats = ReadStats()
    read_all(list_shards(shard_dir), on_error="skip", stats=stats)
    assert stats.skipped == {"decode_error": 1} and "decode_error=1" in str(stats)


def test_not_a_tar(tmp_path):
    (tmp_path / "shard-000000.tar").write_bytes(b"hello" * 100)
    with pytest.raises(ShardError, match="shard-000000.tar"):
        read_all([tmp_path / "shard-000000.tar"])


def test_npy_refuses_pickles(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    write_shard_atomic(tmp_path / "p.tar", [{"__key__": "k", "obj.npy": buf.getvalue()}])
    with pytest.raises(ShardError, match="cannot decode k.obj.npy"):
        read_all([tmp_path / "p.tar"])
