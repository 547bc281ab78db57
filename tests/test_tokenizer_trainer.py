"""The generic tokenizer trainer on the micro semseg config (1 process, DeepSpeed on CPU):
config validation naming keys, training, checkpoint + resume, saved tokenizer loads."""
import json

import numpy as np
import pytest

from fourm.config import ConfigError
from fourm.shards import write_shard_atomic
from train.tokenizer_config import load_tokenizer_train_config

CONFIG = "configs/tokenizers/semseg_micro.yaml"


def make_shards(folder, shards=2, per_shard=6, size=16):
    rng = np.random.default_rng(0)
    for split, count in (("train", shards), ("val", 1)):
        for s in range(count):
            samples = []
            for i in range(per_shard):
                semseg = np.ones((size, size), np.uint8)
                top, left = rng.integers(0, size - 6, 2)
                semseg[top:top + 6, left:left + 6] = rng.integers(2, 6)
                samples.append({"__key__": f"{split}_{s}_{i}", "semseg.png": semseg})
            write_shard_atomic(folder / split / f"shard-{s:06d}.tar", samples)


def overrides(tmp_path, steps):
    return [f"data.train={tmp_path / 'raw/train'}", f"data.val={tmp_path / 'raw/val'}", f"out={tmp_path / 'run'}",
            "model.image_size=16", "model.patch_size=4", f"train.steps={steps}", "train.ckpt_every=2"]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.widht"):
        load_tokenizer_train_config(CONFIG, ["model.widht=3"])
    with pytest.raises(ConfigError, match="train.stepz"):
        load_tokenizer_train_config(CONFIG, ["train.stepz=3"])
    with pytest.raises(ConfigError, match="model.type"):
        load_tokenizer_train_config(CONFIG, ["model.type=nope"])


def test_train_resume_and_load(tmp_path):
    from modality_tokenizers.base import load_tokenizer
    from train.tokenizer_trainer import train_tokenizer

    make_shards(tmp_path / "raw")
    first = train_tokenizer(load_tokenizer_train_config(CONFIG, overrides(tmp_path, 4)))
    assert first["step"] == 4 and "val/ce" in first and "val/pixel_acc" in first
    resumed = train_tokenizer(load_tokenizer_train_config(CONFIG, overrides(tmp_path, 6)))
    assert resumed["step"] == 6
    steps = [r["step"] for r in map(json.loads, (tmp_path / "run/log.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # the second run continued at step 5
    tokenizer = load_tokenizer(tmp_path / "run")
    assert tokenizer.max_tokens == 16 and tokenizer.vocab_size == 1000
    table, seen = tokenizer.measured_appearance  # what its codes draw, measured over the 12 training maps
    assert table.shape == (1000, 6 * 4 * 4) and 0 < int(seen.sum()) <= 12 * 16


def test_a_run_of_another_model_is_not_resumed(tmp_path):
    """Checkpoints of a different network in `out` are an error; the quickstart removes such a
    run (an older recipe) and trains afresh, while a run of the same model resumes."""
    from fourm.quickstart import train_fresh_if_changed
    from train.tokenizer_trainer import train_tokenizer

    make_shards(tmp_path / "raw")
    train_tokenizer(load_tokenizer_train_config(CONFIG, overrides(tmp_path, 2)))
    local = [*overrides(tmp_path, 2), "model.local_encoder=true"]
    with pytest.raises(ValueError, match="different model"):
        train_tokenizer(load_tokenizer_train_config(CONFIG, local))
    assert train_fresh_if_changed(CONFIG, tuple(local))["step"] == 2
    log = [json.loads(r) for r in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2]  # the old run's log went with it
    assert train_fresh_if_changed(CONFIG, tuple([*local[:-2], "train.steps=3", local[-1]]))["step"] == 3  # resumed


def test_tokenizers_read_the_raw_file_their_registry_entry_names():
    """rgb_grid has no file of its own: it trains on <key>.rgb.png like FlexTok's rgb."""
    from train.tokenizer_trainer import raw_field

    assert raw_field("rgb_grid") == "rgb" and raw_field("rgb") == "rgb" and raw_field("depth") == "depth"


def test_quickstart_reruns_a_stage_whose_config_file_changed(tmp_path, monkeypatch):
    import fourm.quickstart as qs

    config, runs = tmp_path / "stage.yaml", []
    config.write_text("steps: 1\n")
    stage = qs.Stage("fake", lambda size, out: runs.append(1) or {"ok": True}, configs=lambda: (str(config),))
    monkeypatch.setattr(qs, "STAGES", (stage,))
    for text in ("steps: 1\n", "steps: 1\n", "steps: 2\n"):
        config.write_text(text)
        qs.run_quickstart(tmp_path / "out", parallel=False)
    assert len(runs) == 2  # first run, then again only after the file was edited
