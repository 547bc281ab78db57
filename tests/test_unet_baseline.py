"""The U-Net baseline: shapes, losses on valid pixels, seeded batches, config errors, and a micro
training run end to end on tiny synthetic shards (train -> save -> load -> same metrics)."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.baselines.config import UNetBaselineConfig
from eval.baselines.data import SplitTensors, load_split, resize_split, training_batches
from eval.baselines.unet import UNet
from fourm.config import ConfigError, load_config
from fourm.paths import CONFIG_DIR

CLASS_NAMES = ["background", "floor", "box", "ball"]
COLOURS = np.array([[0, 0, 0], [120, 120, 120], [200, 40, 40], [40, 60, 210]], np.uint8)


def synthetic_sample(rng: np.random.Generator, key: str, size: int = 16) -> dict:
    """Colour encodes the class (plus noise); depth = 2 + class metres, 0 (invalid) on background."""
    classes = np.ones((size, size), np.uint8)
    classes[: size // 4] = 0
    for cls in (2, 3):
        y, x = rng.integers(size // 4, size - 4, 2)
        classes[y:y + 4, x:x + 4] = cls
    rgb = np.clip(COLOURS[classes].astype(int) + rng.integers(-10, 10, (size, size, 3)), 0, 255).astype(np.uint8)
    depth = np.where(classes == 0, 0.0, 2.0 + classes).astype(np.float32)
    return {"__key__": key, "rgb.png": rgb, "semseg.png": classes, "depth.npy": depth}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    from fourm.shards import write_shard_atomic

    root = tmp_path_factory.mktemp("tiny_scenes")
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("val", 6)):
        write_shard_atomic(root / split / "shard-000000.tar", [synthetic_sample(rng, f"{split}_{i:03d}") for i in range(n)])
    (root / "manifest.json").write_text(json.dumps({"resolution": [16, 16], "class_names": CLASS_NAMES}))
    return root


def micro_config(shards: Path, out: Path, task: str, **train) -> UNetBaselineConfig:
    from fourm.config import from_dict

    return from_dict(UNetBaselineConfig, {
        "task": task, "out_dir": str(out),
        "data": {"train": str(shards / "train"), "val": str(shards / "val"), "resolution": 16},
        "model": {"width": 4, "levels": 2, "norm_groups": 2},
        "train": {"steps": 6, "batch_size": 4, "log_every": 2, "example_images": 2, **train},
        "engine": {"device": "cpu", "lr": 1e-2, "warmup_steps": 1, "seed": 0, "cpu_threads": 1}})


def test_unet_shapes_and_divisibility():
    model = UNet(3, 5, width=4, levels=2, norm_groups=2)
    assert model(torch.zeros(2, 3, 16, 12)).shape == (2, 5, 16, 12)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(torch.zeros(1, 3, 10, 16))


def test_depth_losses_use_valid_pixels_only():
    from eval.baselines.train_unet import baseline_loss

    cfg = micro_config(Path("."), Path("."), "depth")
    target = torch.tensor([[[[2.0, 0.0]]]])  # (1, 1, 1, 2): second pixel invalid
    output = torch.tensor([[[[np.log(2.0), 50.0]]]], requires_grad=True)
    loss = baseline_loss(cfg, output, target)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6) and output.grad[0, 0, 0, 1] == 0
    silog = dataclasses.replace(cfg, depth_loss="silog", silog_lambda=1.0)
    t = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)) + 1
    assert float(baseline_loss(silog, t.log() + 0.7, t)) ** 2 < 1e-6  # blind to a global scale (x e^0.7)


def test_batches_are_seeded_and_flip_input_with_target():
    rgb = torch.arange(10 * 3 * 2 * 2, dtype=torch.uint8).view(10, 3, 2, 2)
    split = SplitTensors(rgb, rgb[:, 0].clone(), [str(i) for i in range(10)])
    a = training_batches(split, 4, torch.Generator().manual_seed(1))
    b = training_batches(split, 4, torch.Generator().manual_seed(1))
    for _ in range(5):  # crosses epoch boundaries (2 full batches per epoch)
        (ra, ta), (rb, tb) = next(a), next(b)
        assert torch.equal(ra, rb) and torch.equal(ta, tb) and torch.equal(ra[:, 0], ta)


def test_resize_keeps_class_values():
    classes = torch.tensor([[0, 3], [5, 1]], dtype=torch.uint8).repeat_interleave(4, 0).repeat_interleave(4, 1)[None]
    split = resize_split(SplitTensors(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), classes, ["k"]), 4)
    assert set(split.target.unique().tolist()) == {0, 1, 3, 5} and split.rgb.shape == (1, 3, 4, 4)


def test_malformed_config_names_the_key(tmp_path):
    good = CONFIG_DIR / "baselines" / "unet_semseg.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("batch_size:", "batch_sise:"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'train\.batch_sise' \(did you mean 'batch_size'"):
        load_config(bad, UNetBaselineConfig)
    with pytest.raises(ConfigError, match=r"key 'task': 'normals' is not one of"):
        load_config(good, UNetBaselineConfig, ["task=normals"])
    with pytest.raises(ConfigError, match=r"key 'model'.*width, levels"):
        load_config(good, UNetBaselineConfig, ["model.width=0"])


@pytest.mark.parametrize("name", ["unet_semseg.yaml", "unet_depth.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIG_DIR / "baselines" / name, UNetBaselineConfig)
    assert cfg.task in name and cfg.data.resolution == 64


def test_micro_training_run_end_to_end(shards, tmp_path):
    from eval.baselines.evaluate import evaluate_split, predict
    from eval.baselines.train_unet import load_unet_baseline, train_unet_baseline

    result = train_unet_baseline(micro_config(shards, tmp_path / "semseg", "semseg", steps=30))
    budget, metrics = result["budget"], result["metrics"]
    assert budget["samples_seen"] == 30 * 4 and not budget["stopped_early"] and budget["train_flops_estimate"] > 0
    assert set(metrics["per_class_iou"]) == set(CLASS_NAMES) and 0 <= metrics["miou"] <= 1
    curve = [p["loss"] for p in result["loss_curve"]]
    assert curve[-1] < 0.7 * curve[0], curve  # colour -> class is learnable in 30 steps
    for name in ("model.safetensors", "config.yaml", "metrics.json", "examples.png"):
        assert (tmp_path / "semseg" / name).is_file()

    model, cfg = load_unet_baseline(tmp_path / "semseg")
    assert cfg.num_classes == len(CLASS_NAMES)  # filled in from the manifest and saved
    val = load_split(str(shards / "val"), "semseg", 16)
    again = evaluate_split(model, val, "semseg", cfg.num_classes, CLASS_NAMES)
    assert again["miou"] == pytest.approx(metrics["miou"])
    assert predict(model, torch.zeros(1, 3, 16, 16), "semseg").shape == (1, 16, 16)


def test_micro_depth_run(shards, tmp_path):
    from eval.baselines.train_unet import train_unet_baseline

    result = train_unet_baseline(micro_config(shards, tmp_path / "depth", "depth", steps=4, example_images=1))
    m = result["metrics"]
    assert m["valid_pixels"] == 6 * 16 * 12 and m["abs_rel"] is not None and 0 <= m["delta1"] <= 1
    assert json.loads((tmp_path / "depth" / "metrics.json").read_text())["budget"]["samples_seen"] == 16
