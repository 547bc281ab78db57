"""Pixel patches (kind image_patches): the lossless tokenizer, the registry checks, masking them as
inputs only, FourM reading them, generation conditioned on them, and the errors for using them as
targets."""
import numpy as np
import pytest
import torch

from fourm.config import ConfigError
from fourm.generation import generate_target
from fourm.generation.chain import check_input
from fourm.generation_config import ConditionConfig, GenerationConfig, TargetConfig, check_modalities
from fourm.masking import Masker, MaskingConfig, MixtureComponent, collate
from fourm.modalities import ModalitySpec
from fourm.model import FourM, ModalityTokens, preset_config
from modality_tokenizers import load_tokenizer
from modality_tokenizers.patches import PixelPatchTokenizer

PIXELS = ModalitySpec("rgb_pixels", "image_patches", "image_rgb", 256, 16, "rgb.png", "", grid_size=(4, 4), patch_size=4)
SEMSEG = ModalitySpec("semseg", "image_grid", "class_map", 8, 16, "semseg.png", "", grid_size=(4, 4))
SPECS = [PIXELS, SEMSEG]
TOKENIZER = PixelPatchTokenizer(PixelPatchTokenizer.Config(image_size=16, patch_size=4))


def images(B: int, seed: int = 0) -> torch.Tensor:
    """(B, 3, 16, 16) 8-bit images in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, 3, 16, 16), generator=gen).float() / 127.5 - 1.0


def test_tokenizer_round_trip_is_exact_and_patches_are_cells(tmp_path):
    x = images(2)
    values = TOKENIZER.encode(x)
    assert values.shape == (2, 16, 48) and int(values.min()) >= 0 and int(values.max()) <= 255
    assert torch.equal(TOKENIZER.decode(values), x)
    # patch 5 is grid row 1, column 1: pixels 4..7 x 4..7, values ordered row, column, channel
    pixel = ((x[0, :, 5, 6] + 1) * 127.5).round().long()  # row 5, col 6 = (1, 2) inside the patch
    assert torch.equal(values[0, 5, (1 * 4 + 2) * 3: (1 * 4 + 2) * 3 + 3], pixel)
    TOKENIZER.save_pretrained(tmp_path)
    assert torch.equal(load_tokenizer(tmp_path).encode(x), values)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 16, 16\)"):
        TOKENIZER.encode(images(1)[:, :, :8])


@pytest.mark.parametrize("fields, match", [
    (dict(kind="image_grid", patch_size=4), "patch_size >= 1 goes with kind image_patches"),
    (dict(patch_size=0), "patch_size >= 1 goes with kind image_patches"),
    (dict(vocab_size=1000), "8-bit RGB"),
    (dict(data="depth_map"), "8-bit RGB"),
])
def test_registry_refuses_inconsistent_patch_specs(fields, match):
    base = dict(name="px", kind="image_patches", data="image_rgb", vocab_size=256, max_tokens=16,
                raw_ext="rgb.png", tokenizer="", grid_size=(4, 4), patch_size=4)
    with pytest.raises(ValueError, match=match):
        ModalitySpec(**{**base, **fields})


def sample(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"rgb_pixels": TOKENIZER.encode(images(1, seed))[0].numpy().reshape(-1),  # flat, as in token shards
            "semseg": rng.integers(0, 8, 16)}


def test_masking_keeps_patches_inputs_only_even_under_a_wildcard_target():
    config = MaskingConfig((4, 20), (4, 20), (MixtureComponent("all", {"*": 1.0}, {"*": 1.0}),))
    masker = Masker(config, SPECS)
    gen = torch.Generator().manual_seed(0)
    masked = [masker(sample(i), gen) for i in range(20)]
    assert all(not bool(m["rgb_pixels"].is_target.any()) for m in masked if "rgb_pixels" in m)
    assert sum(int(m["rgb_pixels"].is_input.sum()) for m in masked if "rgb_pixels" in m) > 0
    batch = collate(masked[:3], ["rgb_pixels", "semseg"])
    assert batch["rgb_pixels"].ids.shape == (3, 16, 48) and batch["semseg"].ids.shape == (3, 16)


def test_masking_refuses_patches_named_as_a_target():
    config = MaskingConfig((4, 8), (4, 8), (MixtureComponent("bad", {"semseg": 1.0}, {"rgb_pixels": 1.0}),))
    with pytest.raises(ConfigError, match="mixture 'bad'.*'rgb_pixels'.*encoder input only"):
        Masker(config, SPECS)
    direction_masker = Masker(MaskingConfig((4, 8), (4, 8), (MixtureComponent("a", {"*": 1.0}, {"*": 1.0}),)), SPECS)
    with pytest.raises(ValueError, match="encoder input only"):
        direction_masker.direction(sample(0), ["semseg"], ["rgb_pixels"])
    with pytest.raises(ValueError, match="expected 16 patches of 48 values, got 47"):
        direction_masker.prepare({"rgb_pixels": np.zeros(47)})


def model(patch_stem: str = "linear") -> FourM:
    torch.manual_seed(0)
    return FourM(preset_config("micro", SPECS, grid_position_units=16, grid_cross_bias=(0.0, 16.0), patch_stem=patch_stem))


def direction_batch(seed: int = 0, B: int = 3) -> dict:
    masker = Masker(MaskingConfig((1, 1), (1, 1), (MixtureComponent("a", {"*": 1.0}, {"*": 1.0}),)), SPECS)
    return collate([masker.direction(sample(seed + b), ["rgb_pixels"], ["semseg"]) for b in range(B)], ["rgb_pixels", "semseg"])


@pytest.mark.parametrize("patch_stem", ["linear", "conv"])
def test_fourm_reads_the_pixels_and_trains_their_embedding(patch_stem):
    net = model(patch_stem).train()
    assert "rgb_pixels" not in net.heads  # an input has no output head
    batch = direction_batch()
    out = net(batch)
    out.loss.backward()
    assert set(out.losses) == {"semseg"}
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing
    net.eval()
    changed = direction_batch()
    changed["rgb_pixels"].ids[:, 5] = 255 - changed["rgb_pixels"].ids[:, 5]  # another picture in one cell
    with torch.no_grad():
        before, after = net.target_logits(batch)["semseg"], net.target_logits(changed)["semseg"]
    assert not torch.allclose(before, after)


def test_fourm_refuses_patches_as_targets_or_of_the_wrong_width():
    net = model()
    batch = direction_batch()
    batch["rgb_pixels"].is_target[:, 0], batch["rgb_pixels"].is_input[:, 0] = True, False
    with pytest.raises(ValueError, match="encoder input only"):
        net(batch)
    batch = direction_batch()
    batch["rgb_pixels"].ids = batch["rgb_pixels"].ids[..., :47]
    with pytest.raises(ValueError, match=r"must be \(B, N, 48\)"):
        net(batch)


def test_a_few_steps_learn_a_map_that_only_the_pixels_tell():
    """semseg class of a cell = the red level of its patch (in 8 steps): from no input the model
    can only learn the marginal (ln 8 ~ 2.08 nats); through the pixels it must do better."""
    net = model().train()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)

    def batch(B=16):
        cells = torch.from_numpy(rng.integers(0, 8, (B, 16)))
        values = (cells * 32 + 16)[..., None].expand(B, 16, 48).clone()  # every value of a patch the level
        ones, pos = torch.ones(B, 16, dtype=torch.bool), torch.arange(16).expand(B, -1).clone()
        return {"rgb_pixels": ModalityTokens(values, ones, ~ones, pos), "semseg": ModalityTokens(cells, ~ones, ones, pos.clone())}

    for _ in range(150):
        loss = net(batch()).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert net.eval()(batch(64)).loss.item() < 1.0  # 0.26 measured (2.08 from no input)


def test_generation_takes_flat_patch_conditions_and_refuses_them_as_targets():
    net = model().eval()
    flat = TOKENIZER.encode(images(2)).reshape(2, -1)  # (B, N * values): the form shards and files give
    check_input(PIXELS, flat, 16)
    with pytest.raises(ValueError, match="16 patches hold 768"):
        check_input(PIXELS, flat[:, :-1], 16)
    target = TargetConfig(modality="semseg", scheme="maskgit", steps=2, temperature=0.0)
    ids = generate_target(net, {"rgb_pixels": flat}, "semseg", target, torch.Generator().manual_seed(0))
    assert ids.shape == (2, 16) and int(ids.max()) < 8
    cfg = GenerationConfig(targets=(TargetConfig(modality="rgb_pixels"),), conditions=(ConditionConfig("semseg"),))
    with pytest.raises(ConfigError, match=r"targets\[0\].modality': 'rgb_pixels' is image_patches, an encoder input only"):
        check_modalities(cfg, SPECS)


def test_conv_patch_stem_embeds_each_patch_alone_at_unit_scale():
    from fourm.model.patch_stem import ConvPatchStem

    torch.manual_seed(0)
    stem = ConvPatchStem(4, 32)
    values = TOKENIZER.encode(images(2)).reshape(32, 48).float() / 127.5 - 1.0
    out = stem(values)
    assert out.shape == (32, 32) and 0.9 < out.std().item() < 1.1
    assert torch.allclose(stem(values[5:6]), out[5:6], atol=1e-6)  # a patch's embedding ignores the others
    with pytest.raises(ValueError, match="power of 2"):
        ConvPatchStem(6, 32)
    with pytest.raises(ValueError, match="patch_stem must be 'linear' or 'conv'"):
        model("mlp")


def test_a_batch_where_no_sample_has_patches_still_runs():
    """Validation from no input collates every name; rgb_pixels then arrives as an empty (B, 0) block."""
    masker = Masker(MaskingConfig((1, 1), (1, 1), (MixtureComponent("a", {"*": 1.0}, {"*": 1.0}),)), SPECS)
    batch = collate([masker.direction(sample(b), [], ["semseg"]) for b in range(2)], ["rgb_pixels", "semseg"])
    assert batch["rgb_pixels"].ids.shape == (2, 0)
    assert set(model()(batch).losses) == {"semseg"}


def test_the_shipped_pixel_tokenizer_config_saves_a_loadable_tokenizer_and_checks_the_registry(tmp_path):
    from train.fixed_tokenizer import save_fixed_tokenizer

    config = "configs/tokenizers/rgb_pixels_scenes.yaml"
    assert save_fixed_tokenizer(config, [f"out={tmp_path / 'tok'}"]) == {"tokens": 64, "values_per_token": 192}
    tokenizer = load_tokenizer(tmp_path / "tok")
    assert tokenizer.encode(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 192)
    with pytest.raises(ConfigError, match="rgb_pixels"):
        save_fixed_tokenizer(config, [f"out={tmp_path / 'bad'}", "model.patch_size=4"])
