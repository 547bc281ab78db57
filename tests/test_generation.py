"""Generation on a micro FourM with random weights: every scheme fills every target position,
seeded runs repeat, the KV cache changes nothing but speed, guidance at scale 1 is no guidance,
top-k 1 is greedy, and config mistakes name the file and key."""
import dataclasses

import pytest
import torch

from fourm.config import ConfigError
from fourm.data import synthetic_specs
from fourm.generation import GuidancePlan, combine, filter_top_k, filter_top_p, generate_target, plan_passes, temperature_at, tokens_per_step
from fourm.generation.samplers import MaskGITSampler, SamplingParams
from fourm.generation_config import TargetConfig, check_modalities, load_generation_config
from fourm.model import FourM, preset_config

torch.set_num_threads(1)
SPECS = synthetic_specs()
VOCAB = {s.name: s.vocab_size for s in SPECS}
B = 2


def make_model(causal_kinds=("text",), **overrides) -> FourM:
    torch.manual_seed(0)
    return FourM(preset_config("micro", SPECS, causal_kinds=causal_kinds, **overrides)).eval()


MODEL = make_model()
CAUSAL_RGB_MODEL = make_model(("text", "image_seq"))


def conditions(*names, seed=1):
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for spec in SPECS:
        if spec.name in names:
            n = 8 if spec.kind == "text" else spec.max_tokens
            out[spec.name] = torch.randint(4, spec.vocab_size, (B, n), generator=gen)
    return out


def generate(model, target, conds, seed=0, **cfg):
    return generate_target(model, conds, target, TargetConfig(modality=target, **cfg), torch.Generator().manual_seed(seed))


CASES = [  # (model, target, conditions, scheme, expected length)
    (MODEL, "depth", ("rgb",), "maskgit", 16),
    (MODEL, "depth", ("rgb", "caption"), "roar", 16),
    (MODEL, "semseg", ("depth",), "autoregressive", 16),  # non-causal kind: left-to-right ROAR
    (MODEL, "rgb", ("caption",), "maskgit", 12),
    (MODEL, "rgb", ("semseg",), "roar", 12),
    (CAUSAL_RGB_MODEL, "rgb", ("caption",), "autoregressive", 12),
    (MODEL, "caption", ("rgb",), "autoregressive", 10),
]


@pytest.mark.parametrize("model, target, conds, scheme, length", CASES)
def test_every_scheme_fills_every_target_position_with_in_vocab_ids(model, target, conds, scheme, length):
    num_tokens = None if target in ("depth", "semseg") else length
    ids = generate(model, target, conditions(*conds), scheme=scheme, steps=4, num_tokens=num_tokens, cfg_scale=2.0)
    assert ids.shape == (B, length) and ids.dtype == torch.long
    assert bool(((ids >= 0) & (ids < VOCAB[target])).all())


@pytest.mark.parametrize("model, target, conds, scheme, length", CASES[:2] + CASES[4:6])
def test_a_seeded_generator_repeats_and_another_seed_differs(model, target, conds, scheme, length):
    kw = dict(scheme=scheme, steps=4, num_tokens=None if target == "depth" else length)
    a, b = (generate(model, target, conditions(*conds), seed=3, **kw) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, generate(model, target, conditions(*conds), seed=4, **kw))


@pytest.mark.parametrize("model, target, sampling", [
    (MODEL, "caption", dict(temperature=0.0)),
    (MODEL, "caption", dict(temperature=1.0, top_p=0.9)),
    (CAUSAL_RGB_MODEL, "rgb", dict(temperature=0.0)),
    (CAUSAL_RGB_MODEL, "rgb", dict(temperature=1.0, top_k=20, cfg_scale=2.5)),
    (CAUSAL_RGB_MODEL, "rgb", dict(temperature=0.0, cfg_scale=4.0, cfg_schedule="linear")),
])
def test_autoregressive_with_cache_gives_the_tokens_of_full_reruns(model, target, sampling):
    conds = conditions("depth", "semseg")
    kw = dict(scheme="autoregressive", num_tokens=12, **sampling)
    cached = generate(model, target, conds, use_cache=True, **kw)
    assert torch.equal(cached, generate(model, target, conds, use_cache=False, **kw))


def test_text_stops_at_eos_and_pads_after_it():
    model = make_model(bias=True)
    head = model.heads["caption"]
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.zero_()
        head.bias[3] = 10.0  # [EOS] is the most likely token everywhere
    ids = generate(model, "caption", conditions("rgb"), scheme="autoregressive", num_tokens=6, temperature=0.0)
    assert ids.tolist() == [[3, 0, 0, 0, 0, 0]] * B


def test_guidance_schedule_decays_every_scale_to_one():
    plan = GuidancePlan(tuple(plan_passes(["a"], 3.0)), "linear")
    assert [p.weight for p in plan.at(0, 5)] == [None, 3.0] and [p.weight for p in plan.at(2, 5)] == [None, 2.0]
    assert [p.conditions for p in plan.at(4, 5)] == [("a",)]  # scale 1: the conditional pass alone
    assert [p.weight for p in plan.at(4, 5, keep_all=True)] == [None, 1.0]
    weighted = GuidancePlan(tuple(plan_passes(["a", "b"], 1.0, {"a": 3.0, "b": 0.0})), "cosine")
    assert [p.weight for p in weighted.at(4, 5)] == [None, pytest.approx(1.0), pytest.approx(1.0)]
    assert GuidancePlan(tuple(plan_passes(["a"], 3.0))).at(4, 5) == plan.at(0, 5)  # constant


def test_guidance_schedule_changes_parallel_decoding_but_not_its_first_step():
    model = make_model(init_std=0.3)  # larger weights than the default init: conditions change the logits
    conds = conditions("caption")
    kw = dict(scheme="roar", steps=4, cfg_scale=4.0, temperature=1.0)
    flat, decayed = (generate(model, "depth", conds, cfg_schedule=s, **kw) for s in ("constant", "linear"))
    assert not torch.equal(flat, decayed)
    first = generate(model, "depth", conds, **{**kw, "steps": 1})  # one step: the schedule is at its start
    assert torch.equal(first, generate(model, "depth", conds, cfg_schedule="linear", **{**kw, "steps": 1}))


@pytest.mark.parametrize("model, target, scheme", [(MODEL, "depth", "maskgit"), (MODEL, "rgb", "roar"),
                                                    (CAUSAL_RGB_MODEL, "rgb", "autoregressive")])
def test_guidance_scale_one_equals_no_guidance(model, target, scheme):
    conds = conditions("caption", "semseg")
    kw = dict(scheme=scheme, steps=4, num_tokens=None if target == "depth" else 12)
    plain = generate(model, target, conds, **kw)
    assert torch.equal(plain, generate(model, target, conds, cfg_scale=1.0, **kw))
    # the weighted formula u + 1 * (c - u) with one condition: same tokens up to float rounding
    one = {"caption": conds["caption"]}
    assert torch.equal(generate(model, target, one, **kw), generate(model, target, one, cfg_weights={"caption": 1.0}, **kw))


def test_guidance_mixes_pass_logits():
    u, c1, c2 = torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]), torch.tensor([1.0, 3.0])
    passes = plan_passes(["a"], 3.0)
    assert [p.conditions for p in passes] == [(), ("a",)]
    assert combine([u, c1], passes).tolist() == [4.0, 0.0]  # u + 3 (c - u)
    passes = plan_passes(["a", "b"], 1.0, {"a": 2.0, "b": 0.5})
    assert [p.conditions for p in passes] == [(), ("a",), ("b",)]
    assert combine([u, c1, c2], passes).tolist() == [3.0, 1.5]  # u + 2 (c1 - u) + 0.5 (c2 - u)


@pytest.mark.parametrize("model, target, scheme", [(MODEL, "depth", "maskgit"), (MODEL, "rgb", "roar"),
                                                    (MODEL, "caption", "autoregressive")])
def test_top_k_one_equals_greedy(model, target, scheme):
    conds = conditions("semseg")
    kw = dict(scheme=scheme, steps=4, num_tokens=None if target == "depth" else 10)
    greedy = generate(model, target, conds, temperature=0.0, **kw)
    assert torch.equal(greedy, generate(model, target, conds, temperature=1.5, top_k=1, seed=7, **kw))


def test_causal_target_refuses_parallel_schemes():
    with pytest.raises(ValueError, match="causally.*autoregressive"):
        generate(MODEL, "caption", conditions("rgb"), scheme="maskgit")


def test_maskgit_choice_temperature_reorders_positions_but_not_the_first_pick_without_noise():
    """Confident position 0 goes first without noise; with a large choice temperature the order
    follows the Gumbel draws, so other positions go first for some seeds."""
    logits = torch.zeros(1, 4, 3)
    logits[0, 0, 0] = 10.0  # position 0: one token almost certain; the others uniform
    ids, done = torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.bool)

    def first_pick(choice, seed):
        sampler = MaskGITSampler(SamplingParams(temperature=0.0), "linear", choice)
        sampler.set_steps(4, 4)
        return int(sampler.step(logits, ids, done, torch.Generator().manual_seed(seed)).new[0].nonzero())

    assert {first_pick(0.0, seed) for seed in range(20)} == {0}
    assert len({first_pick(100.0, seed) for seed in range(20)}) > 1
    with pytest.raises(ValueError, match="choice_temperature"):
        TargetConfig(modality="depth", choice_temperature=-1.0)


def test_sampling_helpers():
    assert tokens_per_step(16, 4, "cosine") == [2, 3, 5, 6] and sum(tokens_per_step(16, 4, "linear")) == 16
    assert tokens_per_step(3, 8, "cosine") == [1, 1, 1]  # steps capped at the token count
    assert temperature_at(0, 5, 2.0, "linear") == 2.0 and temperature_at(4, 5, 2.0, "cosine") == pytest.approx(0.0)
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_top_k(logits, 2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_p(logits, 0.5)).tolist() == [[False, True, True, True]]
    assert [p.weight for p in plan_passes(["a", "b"], 3.0, {"a": 2.0})] == [None, 2.0, 3.0]
    assert len(plan_passes(["a"], 1.0)) == 1


def write(tmp_path, text):
    path = tmp_path / "gen.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("yaml_text, match", [
    ("targets: [{modality: rgb, scheme: diffusion}]", r"gen\.yaml: key 'targets\[0\]\.scheme': 'diffusion' is not one of"),
    ("targets: [{modality: rgb, num_tokens: 300}]", r"gen\.yaml: key 'targets\[0\]': num_tokens: 300 is outside 1\.\.256"),
    ("targets: [{modality: rgb, num_tokens: 0}]", r"key 'targets\[0\]': num_tokens: 0 is outside"),
    ("targets: [{modality: rgb, num_tokens: 100}]", r"gen\.yaml: key 'targets\[0\]\.num_tokens': 100 is outside 1\.\.32"),
    ("conditions: [{modality: lidar}]\ntargets: [{modality: rgb}]", r"gen\.yaml: key 'conditions\[0\]\.modality': unknown modality 'lidar'"),
    ("targets: [{modality: rgb, condition_on: [depth]}, {modality: depth}]", r"key 'targets\[0\]\.condition_on': 'depth'"),
    ("conditions: [{modality: rgb}]\ntargets: [{modality: rgb}]", r"key 'targets\[0\]\.modality': 'rgb' is already"),
    ("targets: [{modality: depth, stpes: 3}]", r"unknown key 'targets\[0\]\.stpes' \(did you mean 'steps'"),
    ("targets: [{modality: caption, scheme: maskgit}]", r"key 'targets\[0\]\.scheme': text \('caption'\) is decoded causally"),
    ("targets: [{modality: depth, num_tokens: 8}]", r"key 'targets\[0\]\.num_tokens': 'depth' is a token grid"),
])
def test_config_errors_name_the_file_and_key(tmp_path, yaml_text, match):
    with pytest.raises(ConfigError, match=match):
        load_generation_config(write(tmp_path, yaml_text), specs=SPECS)


def test_shipped_configs_pass_the_registry_checks_and_chain():
    cfg = load_generation_config("configs/generate/caption_to_semseg_to_rgb.yaml")
    assert cfg.conditions_of(1) == ("caption", "semseg")
    cfg = load_generation_config("configs/generate/rgb_to_depth_semseg_caption.yaml")
    assert cfg.conditions_of(1) == ("rgb", "rgb_pixels") and cfg.conditions_of(2) == ("rgb", "rgb_pixels", "depth", "semseg")
    cfg = load_generation_config("configs/generate/caption_to_colorseg_to_rgb.yaml")
    assert cfg.conditions_of(0) == ("caption",) and cfg.conditions_of(1) == ("colorseg",)  # the image from the layout alone
    cfg = load_generation_config("configs/generate/caption_to_objects_to_rgb.yaml")
    assert [t.scheme for t in cfg.targets] == ["autoregressive", "roar", "maskgit"]  # the object list left to right
    assert cfg.conditions_of(1) == ("objects",) and cfg.conditions_of(2) == ("colorseg",)  # as the specialist learns them


def chain_config(**target_overrides):
    from fourm.config import from_dict
    from fourm.generation_config import GenerationConfig

    data = {"conditions": [{"modality": "caption"}],
            "targets": [{"modality": "semseg", "steps": 2, "cfg_scale": 2.0},
                        {"modality": "rgb", "scheme": "roar", "steps": 3, "num_tokens": 8, **target_overrides},
                        {"modality": "depth", "steps": 2, "condition_on": ["semseg"]}]}
    return from_dict(GenerationConfig, data, source="chain.yaml")


def test_chain_feeds_earlier_targets_to_later_ones():
    from fourm.generation import generate_chain

    cfg = chain_config(cfg_weights={"caption": 2.0, "semseg": 1.5})
    check_modalities(cfg, SPECS, "chain.yaml")
    caption = torch.tensor([[10, 11, 12, 0], [13, 14, 0, 0]])
    out = generate_chain(MODEL, cfg, {"caption": caption}, torch.Generator().manual_seed(0))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"semseg": (2, 16), "rgb": (2, 8), "depth": (2, 16)}
    again = generate_chain(MODEL, cfg, {"caption": caption}, torch.Generator().manual_seed(0))
    assert all(torch.equal(out[k], again[k]) for k in out)


@pytest.mark.parametrize("value, match", [
    (torch.zeros(2, 5, dtype=torch.long), r"'semseg': 5 tokens, but its grid \[4, 4\] has 16"),
    (torch.zeros(2, 16), r"'semseg': expected integer token ids"),
    (torch.full((2, 16), 999), r"'semseg': token ids outside 0\.\.255"),
])
def test_bad_condition_inputs_fail_before_generation(value, match):
    from fourm.config import from_dict
    from fourm.generation import generate_chain
    from fourm.generation_config import GenerationConfig

    cfg = from_dict(GenerationConfig, {"conditions": [{"modality": "semseg"}], "targets": [{"modality": "rgb"}]})
    with pytest.raises(ValueError, match=match):
        generate_chain(MODEL, cfg, {"semseg": value}, torch.Generator())
    with pytest.raises(ValueError, match="no input for condition 'semseg'"):
        generate_chain(MODEL, cfg, {}, torch.Generator())


def test_generated_text_becomes_word_ids_for_later_targets():
    from fourm.generation import text_target_to_input

    ids = torch.tensor([[4, 20, 21, 3, 0], [4, 22, 3, 0, 0]])
    assert text_target_to_input(ids).tolist() == [[20, 21], [22, 0]]


def test_cli_generates_from_token_shards(tmp_path):
    import argparse

    import numpy as np

    from fourm.cli import generate as cli
    from fourm.data import synthetic_text_tokenizer, write_synthetic_token_shards

    MODEL.save_pretrained(tmp_path / "model")
    synthetic_text_tokenizer().save_pretrained(tmp_path / "tok")
    write_synthetic_token_shards(tmp_path / "shards", SPECS, num_shards=1, samples_per_shard=3)
    config = write(tmp_path, f"model: {tmp_path / 'model'}\nbatch_size: 2\nconditions: [{{modality: rgb}}]\n"
                             "targets:\n  - {modality: depth, steps: 2}\n"
                             "  - {modality: caption, scheme: autoregressive, num_tokens: 6}\n")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["generate", "--config", str(config), "--input", str(tmp_path / "shards"),
                              "--out", str(tmp_path / "out"), "--tokenizer", f"caption={tmp_path / 'tok'}", "seed=3",
                              "--no-decode"])  # decoded outputs: tests/test_generation_outputs.py
    assert args.func(args) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) == 6 and files[0] == "synth_000_00000.tok_caption.npy"
    assert np.load(tmp_path / "out" / "synth_000_00002.tok_depth.npy").shape == (16,)


def test_one_file_fills_every_condition_stored_in_the_same_raw_file():
    from fourm.generation.shards import condition_files

    cfg = load_generation_config("configs/generate/rgb_to_depth_semseg_caption.yaml")
    raw_exts = {"rgb": "rgb.png", "rgb_pixels": "rgb.png", "depth": "depth.npy"}
    assert condition_files(cfg, {"rgb": "x.png"}, raw_exts) == {"rgb": "x.png", "rgb_pixels": "x.png"}
    with pytest.raises(ValueError, match="condition 'rgb_pixels' has source input"):
        condition_files(cfg, {"rgb": "x.png"})  # without the registry's raw files nothing is shared
