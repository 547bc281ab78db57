"""`fourm eval` end to end on micro models: scenes rendered at 16x16, untrained micro tokenizers
(grid for semseg/depth/normals, FlexTok for rgb, BPE for captions) and a micro FourM over them.
Every evaluator writes metrics.json, PNGs and report.html; the metric definitions are checked on
known inputs; bad configs and checkpoints lacking a modality fail before any work."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fourm.config import ConfigError, from_dict

RES = 16


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from fourm.datasets.scenes.generate import generate_scenes
    from fourm.model import FourM, preset_config
    from fourm.modalities import ModalitySpec
    from modality_tokenizers.flextok import FlexTok
    from modality_tokenizers.flextok.config import preset
    from modality_tokenizers.grid import GridTokenizer
    from modality_tokenizers.text import TextTokenizer

    root = tmp_path_factory.mktemp("eval")
    generate_scenes(root / "scenes", n=6, resolution=RES, seed=0, n_val=4, progress=False)
    torch.manual_seed(0)
    specs = []
    for name, data, ext, classes in (("depth", "depth_map", "depth.npy", 0), ("semseg", "class_map", "semseg.png", 6),
                                     ("normals", "normal_map", "normals.png", 0)):
        cfg = GridTokenizer.Config(data=data, image_size=RES, patch_size=4, width=32, depth=1, heads=2, stem_channels=8,
                                   levels=(4, 4, 3), num_classes=classes, depth_log_mean=2.2, depth_log_std=0.3)
        GridTokenizer(cfg).save_pretrained(root / "tok" / name)
        specs.append(ModalitySpec(name, "image_grid", data, 48, 16, ext, str(root / "tok" / name), grid_size=(4, 4)))
    FlexTok(preset("micro")).save_pretrained(root / "tok" / "rgb")
    specs.insert(0, ModalitySpec("rgb", "image_seq", "image_rgb", 64000, 8, "rgb.png", str(root / "tok" / "rgb")))
    from fourm.shards import iter_samples, list_shards

    captions = [s["caption"] for s in iter_samples(list_shards(root / "scenes" / "train"), image_size=None)]
    TextTokenizer.fit(captions, TextTokenizer.Config(vocab_size=300, max_tokens=128, num_sentinels=8)).save_pretrained(root / "tok" / "caption")
    specs.append(ModalitySpec("caption", "text", "text", 300, 128, "caption.txt", str(root / "tok" / "caption")))
    grid_rgb = GridTokenizer.Config(data="image_rgb", image_size=RES, patch_size=4, width=32, depth=1, heads=2,
                                    stem_channels=8, levels=(4, 4, 3))
    GridTokenizer(grid_rgb).save_pretrained(root / "tok" / "rgb_grid")  # the image's aligned input view
    specs.append(ModalitySpec("rgb_grid", "image_grid", "image_rgb", 48, 16, "rgb.png", str(root / "tok" / "rgb_grid"),
                              grid_size=(4, 4)))
    FourM(preset_config("micro", specs)).save_pretrained(root / "model")
    FourM(preset_config("micro", specs[:2])).save_pretrained(root / "model_rgb_depth")
    (root / "baseline.json").write_text(json.dumps({"task": "semseg", "metrics": {"miou": 0.5, "pixel_acc": 0.9},
                                                    "budget": {"samples_seen": 64}}))
    return root


def eval_config(env, task, target, **extra):
    from eval.config import EvalConfig

    data = {"task": task, "target": target, "model": str(env / "model"), "data": str(env / "scenes" / "val"),
            "out_dir": str(env / "out" / task), "max_samples": 3, "batch_size": 2, "examples": 2, "decode_steps": 2,
            "generation": [{"modality": "caption", "scheme": "autoregressive", "num_tokens": 12, "temperature": 0.0},
                           {"modality": "rgb", "scheme": "roar", "steps": 2, "temperature": 1.0}]}
    data.update(extra)
    return from_dict(EvalConfig, data)


@pytest.mark.parametrize("task,target,extra,keys", [
    ("semseg", "semseg", {"baseline": "BASELINE"}, ("miou", "pixel_acc", "per_class_iou", "confusion")),
    ("depth", "depth", {}, ("abs_rel", "rmse", "delta1")),
    ("normals", "normals", {}, ("mean_angle", "median_angle")),
    ("flextok", "rgb", {"token_counts": [1, 2, 8], "inputs": []}, ("psnr@1", "ssim@8")),
    ("caption", "caption", {}, ("object_recall", "object_precision", "exact_set")),
    ("consistency", "semseg", {"inputs": ["caption"]}, ("consistency", "class_recall", "reference_consistency")),
    ("consistency", "semseg", {"inputs": ["caption"], "via_views": ["rgb_grid"]}, ("consistency", "class_recall")),
    ("consistency", "semseg", {"inputs": ["caption"], "via_views": ["rgb_grid"],
                               "plan": [{"modality": "semseg", "scheme": "roar", "steps": 2, "temperature": 1.0}]},
     ("consistency", "judge_consistency", "judge_class_recall", "mismatched_consistency")),
    ("consistency", "semseg", {"inputs": ["caption"], "via": "rgb_grid",  # the image as a generated token grid
                               "plan": [{"modality": "semseg", "scheme": "roar", "steps": 2, "temperature": 1.0}],
                               "generation": [{"modality": "rgb_grid", "scheme": "roar", "steps": 2, "temperature": 0.5}]},
     ("consistency", "class_recall", "mismatched_consistency")),
    # the image step alone: the image drawn from a true map (here depth), its scene's objects checked
    ("consistency", "semseg", {"inputs": ["depth"]}, ("consistency", "class_recall", "mismatched_consistency")),
    ("semseg", "semseg", {"inputs": ["rgb", "rgb_grid"], "baseline": "BASELINE"}, ("miou", "pixel_acc")),
    ("probe", "semseg", {"probe": {"train_data": "TRAIN", "max_train_samples": 4, "steps": 3, "batch_size": 2, "grid": 4}},
     ("miou", "final_train_loss")),
])
def test_each_evaluator_writes_json_png_and_report(env, task, target, extra, keys):
    from eval.run import evaluate

    extra = json.loads(json.dumps(extra).replace("BASELINE", str(env / "baseline.json"))
                       .replace("TRAIN", str(env / "scenes" / "train")))
    result = evaluate(eval_config(env, task, target, **extra))
    out = env / "out" / task
    saved = json.loads((out / "metrics.json").read_text())
    for key in keys:
        assert key in saved["metrics"], key
    assert saved["figures"] and all(Path(f).is_file() and f.endswith(".png") for f in saved["figures"])
    html = (out / "report.html").read_text()
    assert task in html
    if task == "semseg":
        assert "U-Net baseline" in html and result["metrics"]["samples"] == 3
        assert 0.0 <= result["metrics"]["miou"] <= 1.0
        assert "share of each true class" in html  # the confusion table
        assert all(abs(sum(row.values()) - 1.0) < 1e-9 for row in saved["metrics"]["confusion"].values())
    if task == "caption":
        assert result["metrics"]["reference_object_recall"] == 1.0  # true captions name every object
    if task == "flextok":
        assert set(saved["metrics"]["curve"]) == {"1", "2", "8"}


def test_flextok_eval_of_a_tokenizer_alone(env):
    """model "" evaluates the tokenizer named in `tokenizers` without any FourM checkpoint."""
    from eval.run import evaluate

    cfg = eval_config(env, "flextok", "rgb", model="", inputs=[], token_counts=[1, 8],
                      tokenizers={"rgb": str(env / "tok" / "rgb")}, out_dir=str(env / "out" / "flextok_alone"))
    result = evaluate(cfg)
    assert set(result["metrics"]["curve"]) == {"1", "8"} and result["checkpoint"] == ""


def test_object_matching_and_consistency_checks():
    from eval.evaluators.caption import named_objects, object_scores
    from eval.evaluators.consistency import check_objects, nearest_colour

    colours, shapes = ["red", "blue", "gray"], ["sphere", "cube", "cone"]
    text = "A Red small sphere, two large blue cubes and a cone."
    assert named_objects(text, colours, shapes) == {("red", "sphere"), ("blue", "cube")}
    scores = object_scores([text], [[("red", "sphere"), ("gray", "cone")]], colours, shapes)
    assert scores == {"object_recall": 0.5, "object_precision": 0.5, "exact_set": 0.0}
    palette = np.array([[200, 0, 0], [0, 0, 200]], dtype=np.uint8)
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, :2] = (190, 10, 10)
    seg = np.zeros((4, 4), np.int64)
    seg[:, :2] = 2  # 'sphere' at class 2, red
    seg[:, 2:] = 3  # 'cube' at class 3, on black pixels
    classes = ["background", "floor", "sphere", "cube"]
    result = check_objects([("red", "sphere"), ("blue", "sphere"), ("red", "cone")], seg, nearest_colour(image, palette),
                           classes, ["red", "blue"], min_pixels=4)
    assert result == [(True, True), (True, False), (False, False)]


def test_bad_config_and_missing_modality_fail_before_work(env, tmp_path):
    from eval.config import load_eval_config
    from eval.run import evaluate
    from fourm.cli import main

    with pytest.raises(ConfigError, match="max_sampels"):
        eval_config(env, "semseg", "semseg", max_sampels=3)
    with pytest.raises(ConfigError, match="task"):
        eval_config(env, "segmentation", "semseg")
    cfg = eval_config(env, "semseg", "semseg", model=str(env / "model_rgb_depth"), out_dir=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="no modality 'semseg'"):
        evaluate(cfg)
    assert not (tmp_path / "o").exists()  # nothing written
    with pytest.raises(ValueError, match="needs a target of data class_map"):
        evaluate(eval_config(env, "semseg", "depth"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: semseg\ntarget: semseg\nbatch_sise: 4\n")
    assert main(["eval", "--config", str(bad)]) == 1
    for path in ("semseg", "depth", "normals", "flextok", "caption", "consistency", "consistency_chained",
                 "consistency_colorseg", "consistency_objects", "consistency_true_layout", "probe"):
        load_eval_config(f"configs/eval/{path}.yaml")


def test_cli_runs_a_shipped_config_with_checkpoint_and_out(env, tmp_path, capsys):
    from fourm.cli import main

    code = main(["eval", "--config", "configs/eval/depth.yaml", "--checkpoint", str(env / "model"), "--out", str(tmp_path / "o"),
                 f"data={env / 'scenes' / 'val'}", "max_samples=2", "baseline=", "generation=[]", "inputs=[rgb]"])
    assert code == 0 and json.loads((tmp_path / "o" / "metrics.json").read_text())["metrics"]["samples"] == 2
    assert '"abs_rel"' in capsys.readouterr().out


def test_quickstart_report_generation_grid(env):
    """The report's generation rows: conditions | generated | ground truth tiles per sample."""
    from eval.context import read_samples
    from eval.quickstart_report import generation_rows
    from fourm.config import from_dict
    from fourm.generation.outputs import load_modality_tokenizers
    from fourm.generation_config import GenerationConfig
    from fourm.model import FourM

    model = FourM.from_pretrained(env / "model").eval()
    tokenizers = load_modality_tokenizers({m.name: m for m in model.config.modalities})
    samples, _ = read_samples(str(env / "scenes" / "val"), 2)
    cfg = from_dict(GenerationConfig, {"model": str(env / "model"), "conditions": [{"modality": "rgb", "source": "input"}],
                                       "targets": [{"modality": "depth", "scheme": "maskgit", "steps": 2},
                                                   {"modality": "caption", "scheme": "autoregressive", "num_tokens": 6}]})
    rows, titles = generation_rows(model, cfg, samples, tokenizers, torch.Generator().manual_seed(0), decode_steps=2)
    assert titles == ["input rgb", "generated depth", "generated caption", "true depth", "true caption"]
    assert len(rows) == 2 and all(len(r) == 5 and all(t.dtype == np.uint8 and t.shape[-1] == 3 for t in r) for r in rows)


def test_consistency_reads_the_generated_image_as_it_reads_a_real_one(env):
    """via_views re-tokenize the decoded image exactly as a real image of that size is tokenized."""
    from eval.context import EvalContext
    from eval.evaluators.consistency import reencoded_views
    from fourm.model import FourM
    from modality_tokenizers import load_tokenizer

    model = FourM.from_pretrained(env / "model")
    cfg = eval_config(env, "consistency", "semseg", inputs=["caption"], via_views=["rgb_grid"])
    tokenizer = load_tokenizer(env / "tok" / "rgb_grid")
    ctx = EvalContext(cfg, [], {}, {"rgb_grid": tokenizer}, env / "out" / "views")
    images = [np.random.default_rng(i).integers(0, 256, (RES, RES, 3), dtype=np.uint8) for i in range(2)]
    views = reencoded_views(model, ctx, images)
    assert set(views) == {"rgb_grid"} and views["rgb_grid"].shape == (2, 16)
    real = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1  # (B, 3, H, W) in [-1, 1]
    assert torch.equal(views["rgb_grid"], tokenizer.encode(real).long())


def test_consistency_plan_conditions_the_image_and_is_validated(env, monkeypatch):
    """The planned semseg is generated from the caption and joins the image's conditions; the
    final segmentation is predicted from the image alone. A plan naming the image is an error."""
    import fourm.generation as generation
    from eval.config import EvalConfig
    from eval.run import evaluate

    calls = []
    original = generation.generate_target
    monkeypatch.setattr(generation, "generate_target",
                        lambda model, conds, name, *a, **k: calls.append((name, sorted(conds))) or original(model, conds, name, *a, **k))
    plan = [{"modality": "semseg", "scheme": "roar", "steps": 2, "temperature": 1.0}]
    evaluate(eval_config(env, "consistency", "semseg", inputs=["caption"], plan=plan, max_samples=2,
                         out_dir=str(env / "out" / "plan")))
    assert ("semseg", ["caption"]) in calls and ("rgb", ["caption", "semseg"]) in calls
    assert ("semseg", ["rgb"]) in calls  # the judge reads images only
    with pytest.raises(ValueError, match="belong to task consistency"):
        from_dict(EvalConfig, {"task": "semseg", "target": "semseg", "judge": "runs/baselines/unet_semseg"})
    with pytest.raises(ValueError, match="plan: 'rgb'"):
        from_dict(EvalConfig, {"task": "consistency", "target": "semseg", "inputs": ["caption"], "plan": [{"modality": "rgb"}]})


def test_consistency_image_sees_only_its_condition_on(env, monkeypatch):
    """`condition_on` narrows what the image is drawn from, as in `fourm generate` (the image of
    caption -> colorseg -> rgb_grid comes from the layout alone); a name that is neither an input
    nor planned is a config error."""
    import fourm.generation as generation
    from eval.config import EvalConfig
    from eval.run import evaluate

    calls = []
    original = generation.generate_target
    monkeypatch.setattr(generation, "generate_target",
                        lambda model, conds, name, *a, **k: calls.append((name, sorted(conds))) or original(model, conds, name, *a, **k))
    plan = [{"modality": "semseg", "scheme": "roar", "steps": 2, "temperature": 1.0}]
    image = [{"modality": "rgb_grid", "scheme": "maskgit", "steps": 1, "temperature": 0.0, "condition_on": ["semseg"]}]
    evaluate(eval_config(env, "consistency", "semseg", inputs=["caption"], via="rgb_grid", plan=plan, generation=image,
                         max_samples=2, out_dir=str(env / "out" / "condition_on")))
    assert ("semseg", ["caption"]) in calls and ("rgb_grid", ["semseg"]) in calls
    assert ("rgb_grid", ["caption", "semseg"]) not in calls
    with pytest.raises(ValueError, match=r"generation\[0\]\.condition_on': 'depth'"):
        from_dict(EvalConfig, {"task": "consistency", "target": "semseg", "inputs": ["caption"], "via": "rgb_grid",
                               "plan": plan, "generation": [{"modality": "rgb_grid", "condition_on": ["depth"]}]})


def test_consistency_with_a_unet_judge(env, tmp_path):
    """judge: a U-Net baseline segments generated and real images instead of the model; a folder
    without a trained U-Net is a clear error before any generation."""
    from eval.baselines.config import UNetBaselineConfig
    from eval.baselines.train_unet import train_unet_baseline
    from eval.run import evaluate

    unet = from_dict(UNetBaselineConfig, {
        "task": "semseg", "out_dir": str(tmp_path / "unet"),
        "data": {"train": str(env / "scenes" / "train"), "val": str(env / "scenes" / "val"), "resolution": RES},
        "model": {"width": 8, "levels": 2}, "train": {"steps": 2, "batch_size": 2, "log_every": 1},
        "engine": {"seed": 0, "cpu_threads": 1}})
    train_unet_baseline(unet)
    result = evaluate(eval_config(env, "consistency", "semseg", inputs=["caption"], judge=str(tmp_path / "unet"),
                                  max_samples=2, out_dir=str(tmp_path / "out")))
    for key in ("consistency", "judge_consistency", "reference_consistency", "reconstruction_consistency"):
        assert 0.0 <= result["metrics"][key] <= 1.0
    with pytest.raises(ValueError, match="no trained U-Net"):
        evaluate(eval_config(env, "consistency", "semseg", inputs=["caption"], judge=str(tmp_path / "none"),
                             max_samples=2, out_dir=str(tmp_path / "out2")))


def test_reconstruction_check_judges_the_tokenizers_round_trip():
    """reconstruction_consistency segments decode(encode(real image)): with a tokenizer that hands
    the image back unchanged it is the judge's own check; with one that blanks it, nothing is found."""
    from types import SimpleNamespace

    from eval.evaluators.consistency import reconstruction_checks

    images = [np.full((4, 4, 3), v, dtype=np.uint8) for v in (50, 200)]   # uint8 (H, W, 3)
    seen = []

    def segment(ids, decoded):
        seen.extend(decoded)
        return [np.ones((4, 4), dtype=np.int64) * (im.mean() > 100) for im in decoded]

    def check(objs, image, seg):
        return [(bool(seg.any()), True) for _ in objs]

    def ctx_with(decode):
        return SimpleNamespace(decode=lambda spec, ids: [decode(images[i]) for i in ids[:, 0].tolist()])

    ids = torch.arange(2)[:, None]   # (B, N): one "token" per image, its index

    objects = [[("red", "cube")], [("blue", "cone")]]
    same = reconstruction_checks(ctx_with(lambda im: im), ids, None, objects, segment, check)
    assert same == [(False, True), (True, True)] and np.array_equal(seen[1], images[1])
    blank = reconstruction_checks(ctx_with(lambda im: im * 0), ids, None, objects, segment, check)
    assert blank == [(False, True), (False, True)]
