"""Generation outputs on micro models: token ids -> raw values -> files, condition files -> token ids
(with clear errors before any model work), `fourm generate` decoding and single-sample mode, and
adaptive FlexTok lengths for tokenizing and for generation (`num_tokens: auto`)."""
import dataclasses
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fourm.data import synthetic_specs, synthetic_text_tokenizer
from fourm.generation.outputs import decode_tokens, encode_condition_file, preview_image, save_output
from fourm.generation_config import TargetConfig
from fourm.model import FourM, preset_config
from modality_tokenizers.flextok import FlexTok, preset
from modality_tokenizers.flextok.adaptive import adaptive_lengths, power_of_two_lengths
from modality_tokenizers.flextok.reconstruct import reconstructions
from modality_tokenizers.grid import GridTokenizer
from modality_tokenizers.flextok.model import psnr

torch.set_num_threads(1)
SIZE, R = 16, 8  # 16x16 maps, 8 FlexTok tokens of a 4^4 = 256 code vocabulary
SPECS = {s.name: s for s in synthetic_specs(rgb_tokens=R, grid=4, vocab=256)}


def randomize(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return module.eval()


def grid_tokenizer(data):
    torch.manual_seed(0)
    cfg = GridTokenizer.Config(data=data, image_size=SIZE, patch_size=4, width=32, depth=1, heads=2, stem_channels=8,
                               levels=(4, 4, 4, 4), num_classes=6 if data == "class_map" else 0,
                               depth_log_mean=2.2, depth_log_std=0.3)
    return GridTokenizer(cfg).eval()


FLEXTOK = randomize(FlexTok(preset("micro", fsq_levels=(4, 4, 4, 4), sample_steps=2)))
TOKENIZERS = {"rgb": FLEXTOK, "depth": grid_tokenizer("depth_map"), "semseg": grid_tokenizer("class_map"),
              "caption": synthetic_text_tokenizer()}
NORMALS_SPEC = dataclasses.replace(SPECS["depth"], name="normals", data="normal_map", raw_ext="normals.png")
NORMALS_TOK = grid_tokenizer("normal_map")


def ids_for(name, B=2, seed=0):
    spec = SPECS[name]
    return torch.randint(0, spec.vocab_size, (B, spec.max_tokens), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- decode, preview, save

def test_decode_tokens_gives_raw_values_in_each_convention():
    rgb = decode_tokens(SPECS["rgb"], FLEXTOK, [torch.arange(1), torch.arange(5)], steps=2, guidance_scale=1.0,
                        generator=torch.Generator().manual_seed(0))
    assert len(rgb) == 2 and all(x.shape == (3, SIZE, SIZE) and x.dtype == np.float32 for x in rgb)
    assert all(x.min() >= -1 and x.max() <= 1 for x in rgb)
    depth = decode_tokens(SPECS["depth"], TOKENIZERS["depth"], ids_for("depth"))
    assert depth[0].shape == (SIZE, SIZE) and depth[0].dtype == np.float32 and depth[0].max() > 0
    classes = decode_tokens(SPECS["semseg"], TOKENIZERS["semseg"], ids_for("semseg"))
    assert classes[1].dtype == np.int64 and classes[1].shape == (SIZE, SIZE) and 0 <= classes[1].min() <= classes[1].max() < 6
    normals = decode_tokens(NORMALS_SPEC, NORMALS_TOK, ids_for("depth"))
    assert normals[0].shape == (3, SIZE, SIZE)
    text_ids = torch.tensor([TOKENIZERS["caption"].encode_text("a red cube") + [3, 0]])
    assert decode_tokens(SPECS["caption"], TOKENIZERS["caption"], text_ids) == ["a red cube"]


def test_same_generator_seed_decodes_the_same_image():
    rows = ids_for("rgb")
    a, b = (decode_tokens(SPECS["rgb"], FLEXTOK, rows, generator=torch.Generator().manual_seed(3)) for _ in range(2))
    assert np.array_equal(a[0], b[0])


def test_preview_and_save_write_the_documented_files(tmp_path):
    values = {"rgb": np.zeros((3, SIZE, SIZE), np.float32), "depth": np.full((SIZE, SIZE), 5.0, np.float32),
              "semseg": np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 6, "caption": "two red cubes"}
    for name, value in values.items():
        image = preview_image(SPECS[name], value)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    assert save_output(tmp_path, "k1", SPECS["rgb"], values["rgb"])[0].name == "k1.rgb.png"
    png, npy = save_output(tmp_path, "k1", SPECS["semseg"], values["semseg"])
    assert (png.name, npy.name) == ("k1.semseg.png", "k1.semseg.npy")
    assert np.array_equal(np.load(npy), values["semseg"]) and np.asarray(Image.open(png)).shape == (SIZE, SIZE, 3)
    assert (tmp_path / "k1.caption.txt").exists() is False
    save_output(tmp_path, "k1", SPECS["caption"], values["caption"])
    assert (tmp_path / "k1.caption.txt").read_text().strip() == "two red cubes"
    assert not list(tmp_path.glob("*.tmp"))


# ----------------------------------------------------------------------------- condition files

def png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_condition_files_encode_like_the_tokenizer(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    ids = encode_condition_file(SPECS["rgb"], FLEXTOK, png(tmp_path / "a.png", rgb))
    expected = FLEXTOK.encode(torch.from_numpy(rgb).float().permute(2, 0, 1)[None] / 127.5 - 1)[0]
    assert ids.dtype == np.int64 and np.array_equal(ids, expected.numpy())
    big = np.repeat(np.repeat(rgb, 2, 0), 2, 1)  # 32x32: resized to the tokenizer's 16x16
    assert encode_condition_file(SPECS["rgb"], FLEXTOK, png(tmp_path / "big.png", big)).shape == (R,)
    depth_mm = rng.integers(4000, 20000, (SIZE, SIZE)).astype(np.uint16)
    np.save(tmp_path / "d.npy", depth_mm.astype(np.float32) / 1000)
    from_npy = encode_condition_file(SPECS["depth"], TOKENIZERS["depth"], tmp_path / "d.npy")
    from_png = encode_condition_file(SPECS["depth"], TOKENIZERS["depth"], png(tmp_path / "d.png", depth_mm))
    assert from_npy.shape == (16,) and np.array_equal(from_npy, from_png)
    classes = rng.integers(0, 6, (SIZE, SIZE)).astype(np.uint8)
    np.save(tmp_path / "s.npy", classes.astype(np.int32))
    assert np.array_equal(encode_condition_file(SPECS["semseg"], TOKENIZERS["semseg"], png(tmp_path / "s.png", classes)),
                          encode_condition_file(SPECS["semseg"], TOKENIZERS["semseg"], tmp_path / "s.npy"))
    normals = np.full((SIZE, SIZE, 3), 128, np.uint8)
    normals[..., 2] = 255
    assert encode_condition_file(NORMALS_SPEC, NORMALS_TOK, png(tmp_path / "n.png", normals)).shape == (16,)
    (tmp_path / "c.txt").write_text("a red cube left of the camera\n")
    caption = encode_condition_file(SPECS["caption"], TOKENIZERS["caption"], tmp_path / "c.txt")
    assert caption.tolist() == TOKENIZERS["caption"].encode_text("a red cube left of the camera")
    np.save(tmp_path / "ids.npy", np.arange(16, dtype=np.int16))
    assert encode_condition_file(SPECS["depth"], None, tmp_path / "ids.npy").tolist() == list(range(16))


@pytest.mark.parametrize("name, make, match", [
    ("depth", lambda p: np.save(p / "x.npy", np.ones((8, 8), np.float32)), r"x\.npy: 8x8 map, but the 'depth' tokenizer expects 16x16"),
    ("depth", lambda p: png(p / "x.png", np.ones((SIZE, SIZE), np.uint8)), r"x\.png: a depth PNG must be 16-bit"),
    ("semseg", lambda p: np.save(p / "x.npy", np.ones((SIZE, SIZE), np.float32)), r"x\.npy: expected an integer class map"),
    ("semseg", lambda p: png(p / "x.png", np.ones((SIZE, SIZE, 3), np.uint8)), r"x\.png: expected an integer class map of shape \(H, W\)"),
    ("rgb", lambda p: png(p / "x.png", np.ones((SIZE, 2 * SIZE, 3), np.uint8)), r"x\.png: 32x16 image, but 'rgb' needs a square image"),
    ("rgb", lambda p: (p / "x.png").write_bytes(b"not a png"), r"x\.png: cannot read the image"),
    ("rgb", lambda p: (p / "x.txt").write_text("hi"), r"x\.txt: condition 'rgb' \(image_rgb\) needs a \.png/\.jpg or \.npy"),
    ("depth", lambda p: np.save(p / "x.npy", np.arange(5)), r"x\.npy: 5 token ids, but 'depth' has a grid of 16"),
    ("rgb", lambda p: np.save(p / "x.npy", np.arange(9)), r"x\.npy: 9 token ids, outside 1\.\.8"),
    ("rgb", lambda p: np.save(p / "x.npy", np.full(4, 999)), r"x\.npy: token ids outside 0\.\.255"),
    ("caption", lambda p: np.save(p / "x.npy", np.zeros(3, np.float32)), r"x\.npy: a 1D \.npy must hold integer token ids"),
    ("caption", lambda p: (p / "x.txt").write_text("  \n"), r"x\.txt: the text is empty"),
])
def test_bad_condition_files_name_the_file_and_what_was_expected(tmp_path, name, make, match):
    make(tmp_path)
    path = next(tmp_path.glob("x.*"))
    with pytest.raises(ValueError, match=match):
        encode_condition_file(SPECS[name], TOKENIZERS[name], path)
    with pytest.raises(FileNotFoundError, match="nope.png: condition file for 'rgb' not found"):
        encode_condition_file(SPECS["rgb"], FLEXTOK, tmp_path / "nope.png")


# ----------------------------------------------------------------------------- adaptive FlexTok length

IMAGES = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_adaptive_lengths_pick_the_smallest_k_reaching_the_threshold():
    ks = power_of_two_lengths(R)
    assert ks == [1, 2, 4, 8] and power_of_two_lengths(6) == [1, 2, 4, 6]
    curve = reconstructions(FLEXTOK, IMAGES, ks, steps=2, seed=5)
    table = torch.stack([psnr(curve[k], IMAGES) for k in ks], 1)  # (B, len(ks))

    def expected(threshold):  # smallest k below R whose PSNR reaches it, else R
        return [ks[int(row.nonzero()[0])] if row.any() else R for row in table[:, :-1] >= threshold]

    threshold = max(table.flatten().tolist(), key=lambda t: len(set(expected(t))))  # the most varied answer
    assert len(set(expected(threshold))) >= 3
    got = adaptive_lengths(FLEXTOK, IMAGES, threshold_db=threshold, steps=2, generator=torch.Generator().manual_seed(5))
    assert got.tolist() == expected(threshold)
    assert adaptive_lengths(FLEXTOK, IMAGES, threshold_db=1e-3, steps=2).tolist() == [1] * 4
    big = torch.nn.functional.interpolate(IMAGES, scale_factor=2)  # compared at the decoder's 16x16
    assert adaptive_lengths(FLEXTOK, big, threshold_db=1e-3, steps=2).tolist() == [1] * 4
    assert adaptive_lengths(FLEXTOK, IMAGES, mse=1e-9, steps=2).tolist() == [R] * 4  # 96 dB: never reached
    with pytest.raises(ValueError, match="exactly one of threshold_db or mse"):
        adaptive_lengths(FLEXTOK, IMAGES)


def raw_rgb_shards(folder, n=5):
    from fourm.shards import write_shard_atomic

    rng = np.random.default_rng(0)
    samples = [{"__key__": f"s{i:03d}", "rgb.png": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)} for i in range(n)]
    write_shard_atomic(folder / "val" / "shard-000000.tar", samples)
    return np.stack([s["rgb.png"] for s in samples])


def test_tokenize_auto_stores_prefixes_that_masking_and_batching_accept(tmp_path):
    from fourm.masking import Masker, MaskingConfig, MixtureComponent, collate
    from fourm.shards import iter_samples
    from fourm.tokenize import AdaptiveLength, TokenizeSettings, tokenize_dataset

    pixels = raw_rgb_shards(tmp_path / "raw")
    FLEXTOK.save_pretrained(tmp_path / "tok")
    images = torch.from_numpy(pixels).float().permute(0, 3, 1, 2) / 127.5 - 1
    threshold = float(psnr(FLEXTOK.autoencode(images, 2, steps=2, generator=torch.Generator().manual_seed(0)), images).median())
    adaptive = AdaptiveLength(threshold, steps=2)
    manifest = tokenize_dataset(tmp_path / "raw", tmp_path / "out", ["rgb"], TokenizeSettings(batch_size=8),
                                {"rgb": str(tmp_path / "tok")}, progress=False, adaptive=adaptive)
    assert manifest["modalities"]["rgb"]["adaptive_length"]["psnr_db"] == threshold
    rows = [s["tok_rgb"] for s in iter_samples([str(tmp_path / "out/val/shard-000000.tar")], image_size=None)]
    expected = adaptive_lengths(FLEXTOK, images, threshold_db=threshold, steps=2, generator=torch.Generator().manual_seed(0))
    assert [len(r) for r in rows] == expected.tolist() and len(set(expected.tolist())) > 1
    full = FLEXTOK.encode(images).numpy()
    assert all(np.array_equal(r, full[i, : len(r)]) for i, r in enumerate(rows))  # a prefix of the full sequence
    spec = dataclasses.replace(SPECS["rgb"], vocab_size=FLEXTOK.vocab_size)
    masker = Masker(MaskingConfig(input_tokens=(1, 4), target_tokens=(1, 4), mixture=(MixtureComponent("all", {"*": 1.0}, {"*": 1.0}),)),
                    [spec], {})
    masked = [masker({"rgb": r}, torch.Generator().manual_seed(i)) for i, r in enumerate(rows)]
    batch = collate(masked, ["rgb"])["rgb"]
    assert batch.ids.shape == (len(rows), max(len(r) for r in rows))
    for b, r in enumerate(rows):  # no role on padding
        assert not (batch.is_input[b, len(r):] | batch.is_target[b, len(r):]).any()
    with pytest.raises(ValueError, match=r"'rgb': expected 1\.\.8 tokens, got 9"):
        masker.prepare({"rgb": np.zeros(9, np.int64)})


def test_tokenize_cli_rgb_tokens_auto(tmp_path):
    from fourm.cli import main
    from fourm.shards import iter_samples

    raw_rgb_shards(tmp_path / "raw", n=3)
    FLEXTOK.save_pretrained(tmp_path / "tok")
    assert main(["tokenize", "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--modalities", "rgb",
                 "--tokenizer", f"rgb={tmp_path / 'tok'}", "--rgb-tokens", "auto", "--rgb-psnr", "1000", "--no-progress"]) == 0
    rows = [s["tok_rgb"] for s in iter_samples([str(tmp_path / "out/val/shard-000000.tar")], image_size=None)]
    assert [len(r) for r in rows] == [R] * 3  # 1000 dB is never reached: all tokens


def test_mean_adaptive_tokens_on_a_raw_split(tmp_path):
    from fourm.adaptive_tokens import mean_adaptive_tokens

    pixels = raw_rgb_shards(tmp_path / "raw")
    images = torch.from_numpy(pixels).float().permute(0, 3, 1, 2) / 127.5 - 1
    stats = mean_adaptive_tokens(tmp_path / "raw" / "val", FLEXTOK, psnr_db=9.0, steps=2, batch_size=8)
    k = adaptive_lengths(FLEXTOK, images, threshold_db=9.0, steps=2, generator=torch.Generator().manual_seed(0))
    assert stats["count"] == 5 and stats["mean_tokens"] == pytest.approx(k.float().mean().item())
    assert sum(stats["histogram"].values()) == 5 and stats["max_tokens"] == R


# ----------------------------------------------------------------------------- num_tokens: auto

def fourm_model(causal_kinds=("text", "image_seq")):
    torch.manual_seed(0)
    return FourM(preset_config("micro", list(SPECS.values()), causal_kinds=causal_kinds)).eval()


CAUSAL = fourm_model()


class StepTokenizer:
    """Decodes a prefix to a flat image that stops changing after `cap` tokens, cap = 2 or 4 by
    the first token's parity: the agreement rule then has a known answer per sample."""

    max_tokens = R

    def detokenize(self, rows, steps=None, guidance_scale=None, generator=None):
        out = [torch.full((3, 4, 4), min(len(r), 2 if int(r[0]) % 2 else 4) / R) for r in rows]
        return torch.stack(out)


def auto_target(**kw):
    return TargetConfig(modality="rgb", scheme="autoregressive", num_tokens="auto", temperature=1.0, **kw)


@pytest.mark.parametrize("model", [CAUSAL, fourm_model(("text",))])  # KV cache early exit; left-to-right ROAR
def test_auto_length_follows_the_agreement_rule(model):
    from fourm.generation.adaptive import generate_adaptive

    conds = {"depth": ids_for("depth", B=4)}
    rows = generate_adaptive(model, conds, "rgb", auto_target(auto_psnr=50.0), torch.Generator().manual_seed(0), StepTokenizer())
    assert [len(r) for r in rows] == [2 if int(r[0]) % 2 else 4 for r in rows]
    plain = generate_target_fn(model, conds)
    assert all(torch.equal(r, plain[b, : len(r)]) for b, r in enumerate(rows))  # a prefix of the plain generation


def generate_target_fn(model, conds):
    from fourm.generation import generate_target

    return generate_target(model, conds, "rgb", auto_target(), torch.Generator().manual_seed(0))


def test_auto_length_stops_decoding_early_with_the_cache():
    from fourm.generation.adaptive import generate_adaptive

    calls = []
    model = fourm_model()
    original = model.decode_step
    model.decode_step = lambda *a: (calls.append(1), original(*a))[1]
    conds = {"depth": ids_for("depth")}
    rows = generate_adaptive(model, conds, "rgb", auto_target(auto_psnr=1e-3), torch.Generator().manual_seed(0), FLEXTOK)
    assert [len(r) for r in rows] == [1, 1] and len(calls) == 2  # 1 vs 2 tokens agree: stop after the 2nd token
    rows = generate_adaptive(model, conds, "rgb", auto_target(auto_psnr=1e3), torch.Generator().manual_seed(0), FLEXTOK)
    assert [len(r) for r in rows] == [R, R]


def test_auto_in_a_chain_feeds_ragged_rgb_to_later_targets():
    from fourm.config import from_dict
    from fourm.generation import generate_chain
    from fourm.generation_config import GenerationConfig

    cfg = from_dict(GenerationConfig, {"conditions": [{"modality": "depth"}], "targets": [
        {"modality": "rgb", "scheme": "autoregressive", "num_tokens": "auto", "auto_psnr": 50.0},
        {"modality": "semseg", "steps": 2}]})
    with pytest.raises(ValueError, match="num_tokens auto needs its tokenizer"):
        generate_chain(CAUSAL, cfg, {"depth": ids_for("depth", B=3)}, torch.Generator())
    out = generate_chain(CAUSAL, cfg, {"depth": ids_for("depth", B=3)}, torch.Generator().manual_seed(0), {"rgb": StepTokenizer()})
    assert isinstance(out["rgb"], list) and {len(r) for r in out["rgb"]} <= {2, 4} and out["semseg"].shape == (3, 16)


@pytest.mark.parametrize("target, match", [
    ({"modality": "depth", "num_tokens": "auto"}, r"'depth' is a token grid"),
    ({"modality": "caption", "scheme": "autoregressive", "num_tokens": "auto"}, r"'auto' needs an ordered image_seq target"),
    ({"modality": "rgb", "scheme": "maskgit", "num_tokens": "auto"}, r"use scheme autoregressive"),
    ({"modality": "rgb", "num_tokens": "many"}, r"'many' matches none of"),
    ({"modality": "rgb", "decode_steps": 0}, r"decode_steps: must be >= 1"),
    ({"modality": "rgb", "decode_guidance": -1.0}, r"decode_guidance: must be >= 0"),
])
def test_auto_and_decode_settings_are_validated(tmp_path, target, match):
    import yaml

    from fourm.config import ConfigError
    from fourm.generation_config import load_generation_config

    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"targets": [target]}))
    with pytest.raises(ConfigError, match=match):
        load_generation_config(path, specs=list(SPECS.values()))


# ----------------------------------------------------------------------------- the CLI

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    CAUSAL.save_pretrained(root / "model")
    for name, tok in TOKENIZERS.items():
        tok.save_pretrained(root / name)
    return root


def run_cli(saved, tmp_path, config_text, *argv):
    from fourm.cli import main

    config = tmp_path / "gen.yaml"
    config.write_text(f"model: {saved / 'model'}\n" + config_text)
    toks = [a for n in TOKENIZERS for a in ("--tokenizer", f"{n}={saved / n}")]
    return main(["generate", "--config", str(config), "--out", str(tmp_path / "out"), *toks, *argv])


def test_cli_one_sample_from_a_caption_file_decodes_every_target(saved, tmp_path):
    (tmp_path / "cap.txt").write_text("a red cube left of the camera")
    config = ("conditions: [{modality: caption}]\ntargets:\n"
              "  - {modality: rgb, scheme: autoregressive, num_tokens: 4, decode_steps: 2}\n"
              "  - {modality: depth, steps: 2}\n  - {modality: semseg, steps: 2}\n")
    assert run_cli(saved, tmp_path, config, "--condition", f"caption={tmp_path / 'cap.txt'}", "--key", "one") == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["one.depth.npy", "one.depth.png", "one.rgb.png", "one.semseg.npy", "one.semseg.png",
                     "one.tok_depth.npy", "one.tok_rgb.npy", "one.tok_semseg.npy"]
    assert np.load(tmp_path / "out/one.tok_rgb.npy").shape == (4,)
    assert np.asarray(Image.open(tmp_path / "out/one.rgb.png")).shape == (SIZE, SIZE, 3)
    assert np.load(tmp_path / "out/one.semseg.npy").shape == (SIZE, SIZE)


def test_cli_rgb_tokens_auto(saved, tmp_path):
    np.save(tmp_path / "d.npy", np.full((SIZE, SIZE), 5.0, np.float32))
    config = "conditions: [{modality: depth}]\ntargets: [{modality: rgb, scheme: autoregressive, decode_steps: 2}]\n"
    argv = ["--condition", f"depth={tmp_path / 'd.npy'}", "--rgb-tokens", "auto"]
    assert run_cli(saved, tmp_path, config, *argv, "--rgb-psnr", "0.001") == 0
    assert np.load(tmp_path / "out/sample.tok_rgb.npy").shape == (1,) and (tmp_path / "out/sample.rgb.png").exists()
    assert run_cli(saved, tmp_path, config, *argv, "--rgb-psnr", "1000") == 0
    assert np.load(tmp_path / "out/sample.tok_rgb.npy").shape == (R,)
    maskgit = config.replace("autoregressive", "maskgit")
    assert run_cli(saved, tmp_path, maskgit, *argv) == 1


def test_cli_shards_with_decoding_and_with_no_decode(saved, tmp_path):
    from fourm.data import write_synthetic_token_shards

    specs = list(SPECS.values())
    write_synthetic_token_shards(tmp_path / "shards", specs, num_shards=1, samples_per_shard=3)
    config = ("batch_size: 2\nconditions: [{modality: rgb}]\ntargets:\n  - {modality: depth, steps: 2}\n"
              "  - {modality: caption, scheme: autoregressive, num_tokens: 6}\n")
    assert run_cli(saved, tmp_path, config, "--input", str(tmp_path / "shards")) == 0
    out = tmp_path / "out"
    assert len(list(out.glob("*.depth.png"))) == 3 and len(list(out.glob("*.caption.txt"))) == 3
    assert np.load(out / "synth_000_00002.tok_depth.npy").shape == (16,)
    assert np.load(out / "synth_000_00002.depth.npy").shape == (SIZE, SIZE)
    for p in out.iterdir():
        p.unlink()
    assert run_cli(saved, tmp_path, config, "--input", str(tmp_path / "shards"), "--no-decode") == 0
    assert sorted({p.name.split(".", 1)[1] for p in out.iterdir()}) == ["tok_caption.npy", "tok_depth.npy"]


@pytest.mark.parametrize("config, argv, match", [
    ("conditions: [{modality: depth}]\ntargets: [{modality: semseg}]\n", ["--condition", "depth=BAD"], r"8x8 map, but the 'depth' tokenizer expects 16x16"),
    ("conditions: [{modality: depth}]\ntargets: [{modality: semseg}]\n", ["--condition", "semseg=BAD"], r"--condition semseg: not a condition"),
    ("conditions: [{modality: depth}, {modality: caption}]\ntargets: [{modality: semseg}]\n", ["--condition", "depth=BAD"],
     r"condition 'caption' has source input: give it as --condition caption=FILE"),
    ("conditions: [{modality: depth}]\ntargets: [{modality: rgb, scheme: autoregressive, num_tokens: 20}]\n",
     ["--condition", "depth=BAD"], r"key 'targets\[0\]\.num_tokens': 20 is outside 1\.\.8"),
    ("conditions: [{modality: lidar}]\ntargets: [{modality: rgb}]\n", ["--condition", "lidar=BAD"], r"unknown modality 'lidar'"),
    ("conditions: [{modality: depth, source: BAD}]\ntargets: [{modality: semseg}]\n", ["--input", "nowhere"], r"8x8 map"),
])
def test_cli_errors_come_before_the_model_runs(saved, tmp_path, monkeypatch, capsys, config, argv, match):
    import fourm.generation.shards as shards

    def must_not_run(*a, **k):
        raise AssertionError("the model ran")

    monkeypatch.setattr(shards, "generate_chain", must_not_run)
    np.save(tmp_path / "bad.npy", np.ones((8, 8), np.float32))
    argv = [str(tmp_path / "bad.npy") if a == "BAD" else a.replace("BAD", str(tmp_path / "bad.npy")) for a in argv]
    config = config.replace("BAD", str(tmp_path / "bad.npy"))
    assert run_cli(saved, tmp_path, config, *argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fourm generate: error:")
    assert re.search(match, err[0]), err[0]
