"""Token shards -> masked batches: shapes, determinism, resume without repeats or gaps, rank and
worker splits, mixtures, validation batches and bad samples."""
import numpy as np
import pytest
import torch

from fourm.data import (DataConfig, Direction, ShardSet, SampleReader, TokenStream, build_masker, derive_seed,
                        make_loader, synthetic_specs, synthetic_text_tokenizer, validation_batches,
                        write_synthetic_token_shards)
from fourm.shards import write_shard_atomic

SPECS = synthetic_specs()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_synthetic_token_shards(root / "a", SPECS, num_shards=3, samples_per_shard=10, seed=0)
    write_synthetic_token_shards(root / "b", SPECS, num_shards=1, samples_per_shard=10, seed=1)
    return root, {"caption": synthetic_text_tokenizer()}


def make_stream(env, start=0, rank=0, world=1, sets=None, **changes) -> TokenStream:
    root, tokenizers = env
    fields = {"batch_size": 4, "shuffle_buffer": 6, "masking": "configs/masking/micro.yaml", **changes}
    cfg = DataConfig(train=sets or (ShardSet(str(root / "a")),), **fields)
    masker = build_masker(cfg, SPECS, tokenizers)
    return TokenStream(cfg, SPECS, masker, tokenizers, seed=7, rank=rank, world_size=world, start_batch=start)


def take(stream, n, workers=0):
    it = iter(make_loader(stream, workers))
    return [next(it) for _ in range(n)]


def same(a, b) -> bool:
    return all(torch.equal(getattr(a[n], f), getattr(b[n], f)) for n in a for f in ("ids", "is_input", "is_target", "positions"))


def test_batches_have_every_modality_padded(env):
    batch = take(make_stream(env), 1)[0]
    assert set(batch) == {s.name for s in SPECS}
    assert batch["rgb"].ids.shape == (4, 32) and batch["depth"].ids.shape == (4, 16)
    assert batch["caption"].ids.shape[0] == 4


def test_resume_neither_repeats_nor_skips_and_workers_do_not_change_batches(env):
    full = take(make_stream(env), 12)
    resumed = take(make_stream(env, start=5), 7, workers=2)
    assert all(same(a, b) for a, b in zip(full[5:], resumed))
    assert not same(full[0], full[1])


def test_ranks_read_disjoint_samples(env):
    keys = []
    for rank in range(2):
        stream = make_stream(env, rank=rank, world=2, shuffle_buffer=1)
        keys.append({s["__key__"] for _, s in zip(range(10), stream.samples())})
    assert not keys[0] & keys[1]


def test_mixture_weights_pick_shard_sets(env):
    root, _ = env
    sets = (ShardSet(str(root / "a"), weight=0.0), ShardSet(str(root / "b"), weight=1.0))
    keys = [s["__key__"] for _, s in zip(range(15), make_stream(env, sets=sets).samples())]
    assert all(k.startswith("synth_000") for k in keys) and len(set(keys)) == 10  # set b: one shard of 10


def test_validation_batches_are_fixed_and_directional(env):
    root, tokenizers = env
    cfg = DataConfig(train=(ShardSet(str(root / "a")),), val=(ShardSet(str(root / "b")),), masking="configs/masking/micro.yaml",
                     val_samples=6, val_batch_size=4, val_directions=(Direction(("rgb",), ("depth",)), Direction((), ("caption",))))
    masker = build_masker(cfg, SPECS, tokenizers)
    a = validation_batches(cfg, SPECS, masker, tokenizers, seed=0)
    b = validation_batches(cfg, SPECS, masker, tokenizers, seed=0)
    assert set(a) == {"mixed", "rgb->depth", "none->caption"} and len(a["mixed"]) == 2
    assert all(same(x, y) for x, y in zip(a["mixed"], b["mixed"]))
    d = a["rgb->depth"][0]
    assert d["rgb"].is_input.all() and d["depth"].is_target.all() and not d["semseg"].is_target.any()


def test_missing_modality_and_empty_caption_are_masked_out(env, tmp_path):
    root, tokenizers = env
    rng = np.random.default_rng(0)
    samples = [{"__key__": f"s{i}", "tok_rgb.npy": rng.integers(0, 256, 32).astype(np.int32),
                "caption.txt": "" if i % 2 else "a red cube"} for i in range(8)]  # no depth, no semseg
    write_shard_atomic(tmp_path / "odd.tar", samples)
    batch = take(make_stream(env, sets=(ShardSet(str(tmp_path / "odd.tar")),)), 1)[0]
    assert not (batch["depth"].is_input | batch["depth"].is_target).any()
    reader = SampleReader(SPECS, tokenizers)
    got = list(reader.samples([str(tmp_path / "odd.tar")]))
    assert got[1]["caption"] == [] and "depth" not in got[0]


def test_token_outside_vocabulary_is_a_clear_error(env, tmp_path):
    samples = [{"__key__": "bad", "tok_rgb.npy": np.full(32, 9999, np.int32), "caption.txt": "a cube"}]
    write_shard_atomic(tmp_path / "bad.tar", samples)
    with pytest.raises(ValueError, match="'rgb'.*9999"):
        take(make_stream(env, sets=(ShardSet(str(tmp_path / "bad.tar")),)), 1)


def test_derived_seeds_are_stable():
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3) != derive_seed(1, 2, 4)
