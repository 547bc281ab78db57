"""Multimodal masking: budgets, disjoint input/target, determinism, span masking, FlexTok
prefixes, and bad samples."""
import dataclasses

import numpy as np
import pytest
import torch

from fourm.config import ConfigError, load_config
from fourm.data import synthetic_specs
from fourm.masking import (Masker, MaskingConfig, MixtureComponent, TextSpecials, collate, load_masking_config,
                           span_mask, split_budget, unmask_spans)
from fourm.paths import CONFIG_DIR

SPECS = synthetic_specs()
SPECIALS = TextSpecials(eos_id=3, sentinel_ids=tuple(range(4, 20)))
ALL_TO_ALL = MixtureComponent("all", {"*": 0.5}, {"*": 0.5})


def make_masker(**overrides) -> Masker:
    cfg = MaskingConfig(input_tokens=(8, 24), target_tokens=(8, 24), mixture=(ALL_TO_ALL,))
    return Masker(dataclasses.replace(cfg, **overrides), SPECS, {"caption": SPECIALS})


def sample(seed=0, caption_len=12) -> dict:
    rng = np.random.default_rng(seed)
    out = {s.name: rng.integers(0, s.vocab_size, s.max_tokens) for s in SPECS if s.kind != "text"}
    out["caption"] = list(rng.integers(20, 200, caption_len))
    return out


def test_image_budgets_are_respected_and_no_token_is_input_and_target():
    masker = make_masker()
    gen = torch.Generator().manual_seed(0)
    for i in range(200):
        masked = masker(sample(i), gen)
        n_in = sum(int(t.is_input.sum()) for n, t in masked.items() if n != "caption")
        n_tgt = sum(int(t.is_target.sum()) for n, t in masked.items() if n != "caption")
        assert n_in <= 24 and n_tgt <= 24
        for t in masked.values():
            assert not (t.is_input & t.is_target).any()


def test_split_budget_caps_and_fills():
    counts = split_budget(10, np.array([0.9, 0.1, 0.0]), np.array([3, 20, 5]))
    assert counts.tolist() == [3, 7, 0]
    assert split_budget(100, np.array([0.5, 0.5]), np.array([3, 4])).tolist() == [3, 4]


def test_same_seed_same_masks_other_seed_other_masks():
    masker = make_masker()
    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return [masker(sample(i), gen) for i in range(5)]
    a, b, c = run(1), run(1), run(2)
    key = lambda ms: [(n, t.is_input.tolist(), t.is_target.tolist(), t.ids.tolist()) for m in ms for n, t in m.items()]
    assert key(a) == key(b) and key(a) != key(c)


@pytest.mark.parametrize("n,noise", [(1, 1), (2, 1), (10, 3), (20, 19), (20, 20), (64, 20)])
def test_span_masking_round_trip(n, noise):
    tokens = list(range(100, 100 + n))
    gen = torch.Generator().manual_seed(n * 7 + noise)
    for _ in range(20):
        inputs, targets = span_mask(tokens, noise, 3.0, SPECIALS, gen)
        assert unmask_spans(inputs, targets, SPECIALS) == tokens
        assert targets[0] == SPECIALS.sentinel_ids[0] and targets[-1] == SPECIALS.eos_id
        assert sum(t >= 100 for t in targets) == noise
        sentinels = [t for t in inputs if t in SPECIALS.sentinel_ids]
        assert sentinels == list(SPECIALS.sentinel_ids[: len(sentinels)])


def test_text_has_input_and_target_sequences_with_own_positions():
    masker = make_masker(input_tokens=(40, 40), target_tokens=(40, 40),
                         mixture=(MixtureComponent("t", {"caption": 1.0}, {"caption": 1.0}),))
    masked = masker(sample(0, caption_len=12), torch.Generator().manual_seed(0))
    t = masked["caption"]
    n_in = int(t.is_input.sum())
    assert t.positions[:n_in].tolist() == list(range(n_in))
    assert t.positions[n_in:].tolist() == list(range(t.ids.numel() - n_in))
    assert unmask_spans(t.ids[t.is_input].tolist(), t.ids[t.is_target].tolist(), SPECIALS) == sample(0, 12)["caption"]


def test_flextok_prefix_targets_are_power_of_two_prefixes():
    masker = make_masker(seq_prefix_prob=1.0, input_tokens=(0, 0), target_tokens=(1, 40),
                         mixture=(MixtureComponent("x", {}, {"rgb": 1.0}),))
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for i in range(50):
        t = masker(sample(i), gen)["rgb"]
        k = int(t.is_target.sum())
        assert k & (k - 1) == 0 and t.is_target[:k].all()
        seen.add(k)
    assert len(seen) >= 3


def test_rgb_to_all_only_feeds_rgb():
    masker = make_masker(mixture=(MixtureComponent("rgb2all", {"rgb": 1.0}, {"*": 0.5}),))
    gen = torch.Generator().manual_seed(0)
    for i in range(20):
        for name, t in masker(sample(i), gen).items():
            assert name == "rgb" or not t.is_input.any()


def test_a_component_budget_overrides_the_config_budget():
    own = MixtureComponent("few", {"*": 0.5}, {"*": 0.5}, input_tokens=(3, 3), target_tokens=(5, 5))
    masker = make_masker(input_tokens=(40, 40), target_tokens=(40, 40), mixture=(own,), seq_prefix_prob=0.0)
    gen = torch.Generator().manual_seed(0)
    for i in range(10):
        out = masker(sample(i, caption_len=0), gen)  # no caption: text inputs are whole, not counted
        assert sum(int(t.is_input.sum()) for t in out.values()) == 3
        assert sum(int(t.is_target.sum()) for t in out.values()) == 5
    with pytest.raises(ValueError, match="mixture 'bad': input_tokens"):
        make_masker(mixture=(MixtureComponent("bad", {"*": 1.0}, {"*": 1.0}, input_tokens=(5, 2)),))


def test_missing_modality_and_empty_caption_are_left_out():
    masker = make_masker(input_tokens=(60, 60), target_tokens=(60, 60))
    s = sample(0)
    del s["depth"]
    s["caption"] = []
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        masked = masker(s, gen)
        assert "depth" not in masked and "caption" not in masked
    batch = collate([masker(s, gen), masker(sample(1), gen)], [sp.name for sp in SPECS])
    assert not batch["depth"].is_input[0].any() and not batch["depth"].is_target[0].any()


def test_token_outside_vocabulary_names_modality_and_value():
    s = sample(0)
    s["semseg"][3] = 5000
    with pytest.raises(ValueError, match="'semseg'.*5000"):
        make_masker()(s, torch.Generator())
    s = sample(0)
    s["depth"] = s["depth"][:5]
    with pytest.raises(ValueError, match="'depth'.*expected 16"):
        make_masker()(s, torch.Generator())


def test_mixture_naming_an_unknown_modality_is_a_config_error():
    with pytest.raises(ConfigError, match="normals"):
        make_masker(mixture=(MixtureComponent("x", {"normals": 1.0}, {"*": 1.0}),))


def test_direction_masks_everything_of_the_named_modalities():
    masker = make_masker()
    masked = masker.direction(sample(0), ["rgb"], ["depth"])
    assert set(masked) == {"rgb", "depth"}
    assert masked["rgb"].is_input.all() and masked["depth"].is_target.all()
    no_input = masker.direction(sample(0), [], ["caption"])
    assert no_input["caption"].ids[0] == SPECIALS.sentinel_ids[0] and not no_input["caption"].is_input.any()
    s = sample(0)
    del s["rgb"]
    assert masker.direction(s, ["rgb"], ["depth"]) is None


def test_shipped_masking_configs_load_and_typos_are_errors(tmp_path):
    for path in (CONFIG_DIR / "masking").glob("*.yaml"):
        load_masking_config(path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("input_tokens: [1, 2]\ntarget_tokens: [1, 2]\nmixtures: []\n")
    with pytest.raises(ConfigError, match="mixtures"):
        load_config(bad, MaskingConfig)
