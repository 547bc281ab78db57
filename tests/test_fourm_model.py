"""FourM on micro sizes: shapes, per-modality losses, attention masks (cross-modality blocking,
causal text), the KV cache, save/load, and bad batches."""
import pytest
import torch

from fourm.data import synthetic_specs
from fourm.model import PRESETS, FourM, ModalityTokens, preset_config

SPECS = synthetic_specs()


def make_model(**overrides) -> FourM:
    torch.manual_seed(0)
    return FourM(preset_config("micro", SPECS, **overrides)).eval()


def random_batch(B=3, seed=0, p_in=0.3, p_tgt=0.3, text_len=10) -> dict:
    gen = torch.Generator().manual_seed(seed)
    batch = {}
    for spec in SPECS:
        N = text_len if spec.kind == "text" else spec.max_tokens
        ids = torch.randint(0, spec.vocab_size, (B, N), generator=gen)
        if spec.kind == "text":  # first half input sequence, second half target sequence
            is_input = torch.arange(N).expand(B, -1) < N // 2
            positions = torch.cat([torch.arange(N // 2), torch.arange(N - N // 2)]).expand(B, -1)
            batch[spec.name] = ModalityTokens(ids, is_input, ~is_input, positions.clone())
            continue
        r = torch.rand(B, N, generator=gen)
        batch[spec.name] = ModalityTokens(ids, r < p_in, r > 1 - p_tgt, torch.arange(N).expand(B, -1).clone())
    return batch


def test_presets_table_matches_4m_sizes():
    assert PRESETS["B"] == (768, 12, 12, 12)
    assert PRESETS["L"][:3] == (1024, 24, 24) and PRESETS["XL"][:3] == (2048, 24, 24)
    assert {"micro", "tiny", "small"} <= set(PRESETS)


def test_forward_gives_per_modality_losses_and_all_params_get_gradients():
    model = make_model().train()
    batch = random_batch()
    out = model(batch)
    assert set(out.losses) == {s.name for s in SPECS}
    assert torch.isfinite(out.loss)
    expected = torch.stack(list(out.losses.values())).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.num_targets["depth"] == int(batch["depth"].is_target.sum())
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_absent_modality_is_left_out_of_the_loss_but_its_head_still_gets_a_gradient():
    model = make_model().train()
    batch = random_batch()
    del batch["semseg"]
    out = model(batch)
    assert "semseg" not in out.losses
    out.loss.backward()
    assert model.heads["semseg"].weight.grad is not None
    assert model.heads["semseg"].weight.grad.abs().sum() == 0


def test_target_logits_shapes_and_zero_outside_targets():
    model = make_model()
    batch = random_batch()
    logits = model.target_logits(batch)
    for spec in SPECS:
        t = batch[spec.name]
        assert logits[spec.name].shape == (*t.ids.shape, spec.vocab_size)
        assert logits[spec.name][~t.is_target].abs().sum() == 0


def test_sample_with_no_input_gives_a_finite_loss():
    batch = random_batch(p_in=0.0)
    batch["caption"].is_input[:] = False
    out = make_model()(batch)
    assert torch.isfinite(out.loss)


def test_decoder_mask_blocks_modalities_and_is_causal_for_text():
    model = make_model()
    g = model._gather(random_batch(B=1), "is_target")
    mask = model._decoder_self_mask(g)[0, 0]  # (T, T)
    mod, pos = g.modality[0], g.positions[0]
    caption = model.names.index("caption")
    same = mod[:, None] == mod[None, :]
    assert not mask[~same].any()  # blocked across modalities
    text = mod == caption
    text_mask = mask[text][:, text]
    assert torch.equal(text_mask, pos[text][None, :] <= pos[text][:, None])  # causal within text
    depth = mod == model.names.index("depth")
    assert mask[depth][:, depth].all()  # full within an image modality


def test_changing_later_text_targets_or_other_modalities_leaves_logits_unchanged():
    model = make_model()
    batch = random_batch(B=2)
    base = model.target_logits(batch)
    changed = {k: ModalityTokens(v.ids.clone(), v.is_input, v.is_target, v.positions) for k, v in batch.items()}
    changed["caption"].ids[:, -1] = (changed["caption"].ids[:, -1] + 1) % 256  # last text target token
    new = model.target_logits(changed)
    # The last target token is only fed to later positions (there are none) -> nothing changes.
    for name in base:
        torch.testing.assert_close(new[name], base[name])
    changed["caption"].ids[:, 6] = (changed["caption"].ids[:, 6] + 1) % 256  # an earlier text target
    new = model.target_logits(changed)
    assert not torch.allclose(new["caption"][:, 7:], base["caption"][:, 7:])
    torch.testing.assert_close(new["caption"][:, :7], base["caption"][:, :7])
    torch.testing.assert_close(new["depth"], base["depth"])  # other modalities never see text targets


def test_inputs_reach_the_decoder_through_cross_attention():
    model = make_model()
    batch = random_batch(B=2)
    base = model.target_logits(batch)["depth"]
    batch["rgb"].ids[batch["rgb"].is_input] = (batch["rgb"].ids[batch["rgb"].is_input] + 1) % 256
    assert not torch.allclose(model.target_logits(batch)["depth"], base)


@pytest.mark.parametrize("causal_kinds", [("text",), ("text", "image_seq")])
def test_kv_cache_decoding_matches_the_full_forward(causal_kinds):
    model = make_model(causal_kinds=causal_kinds)
    name = "caption" if causal_kinds == ("text",) else "rgb"
    batch = random_batch(B=2)
    if name == "rgb":
        N = batch["rgb"].ids.shape[1]
        batch["rgb"].is_input[:] = False
        batch["rgb"].is_target[:] = True
        targets = batch["rgb"].ids
        positions = torch.arange(N).expand(2, -1)
    else:
        t = batch["caption"]
        targets = t.ids[:, t.is_target[0]]
        positions = t.positions[:, t.is_target[0]]
    full = model.target_logits(batch)[name]
    full = full[:, batch[name].is_target[0]]  # (B, T, V)
    state = model.start_decoding(model.encode(batch), name)
    steps = []
    for i in range(targets.shape[1]):
        prev = targets[:, i - 1: i] if i else torch.zeros_like(targets[:, :1])
        first = torch.full_like(prev, i == 0, dtype=torch.bool)
        steps.append(model.decode_step(state, prev, positions[:, i: i + 1], first))
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-4)


def test_save_and_load_pretrained_round_trip(tmp_path):
    model = make_model(norm="rmsnorm", qk_norm=False, bias=True)
    model.save_pretrained(tmp_path / "m")
    loaded = FourM.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    batch = random_batch()
    torch.testing.assert_close(loaded(batch).loss, model(batch).loss)


def test_bad_batches_give_clear_errors():
    model = make_model()
    batch = random_batch()
    batch["depth"].ids[0, batch["depth"].is_target[0].nonzero()[0, 0]] = 999
    with pytest.raises(ValueError, match="'depth'.*999"):
        model(batch)
    batch = random_batch()
    batch["normals"] = batch.pop("depth")
    with pytest.raises(ValueError, match="normals"):
        model(batch)
    batch = random_batch()
    batch["depth"].is_input[:] = True
    batch["depth"].is_target[:] = True
    with pytest.raises(ValueError, match="both input and target"):
        model(batch)
    batch = random_batch(p_tgt=0.0)
    batch["caption"].is_target[:] = False
    with pytest.raises(ValueError, match="no target"):
        model(batch)


def test_grid_positions_align_cells_of_different_grids():
    """A 16x16 RGB grid and an 8x8 semseg grid over the same image: the four fine cells inside a
    coarse cell sit symmetrically around it, so their mean position is the coarse cell's; 8x8
    cells sit at 0..7 with units 8."""
    from fourm.model.embeddings import cell_centres, sincos, sincos_2d

    assert torch.allclose(cell_centres(8, 8.0), torch.arange(8, dtype=torch.float64))
    fine = cell_centres(16, 8.0).reshape(8, 2).mean(dim=1)  # (8,) mean of the two fine cells per coarse cell
    assert torch.allclose(fine, cell_centres(8, 8.0))
    table = sincos_2d(16, 16, 32, 8.0).reshape(16, 16, 32)  # (H, W, D)
    row_half = table[4, 6, :16]  # fine row 4 lies in coarse row 2 (centre 1.75)
    assert torch.allclose(row_half, sincos(torch.tensor([1.75]), 16)[0], atol=1e-6)


def test_grid_position_units_space_cells_and_default_keeps_old_models():
    """grid_position_units spaces grid cells in the position table; a config without the field
    (models saved before it existed) gets 0: every grid's cells at the integer positions 0..n-1."""
    from fourm.modalities import ModalitySpec
    from fourm.model.embeddings import sincos, sincos_2d

    spec = ModalitySpec("seg", "image_grid", "class_map", 16, 16, "seg.png", "", grid_size=(4, 4))
    default = FourM(preset_config("micro", [spec]))
    assert default.config.grid_position_units == 0.0
    half = default.config.dim // 2
    legacy = sincos(torch.arange(4.0), half)  # (4, D/2): cells 0..3
    assert torch.equal(default.embeddings["seg"].positions.reshape(4, 4, -1)[:, 0, :half], legacy)
    spaced = FourM(preset_config("micro", [spec], grid_position_units=128.0))
    rows = sincos(torch.tensor([16.0 - 0.5, 48.0 - 0.5]), default.config.dim // 2)  # cells 0 and 1 of 4
    table = spaced.embeddings["seg"].positions.reshape(4, 4, -1)
    assert torch.allclose(table[0, 0, : default.config.dim // 2], rows[0], atol=1e-6)
    assert torch.allclose(table[1, 0, : default.config.dim // 2], rows[1], atol=1e-6)
    with pytest.raises(ValueError, match="grid_position_units"):
        preset_config("micro", [spec], grid_position_units=-1.0)


def grid_target_batch() -> dict:
    """depth (an image_grid modality) wholly a target, the other modalities partly inputs."""
    batch = random_batch(B=2)
    for name, t in batch.items():
        t.is_target[:] = name == "depth"
        if name == "depth":
            t.is_input[:] = False
    return batch


@pytest.mark.parametrize("slopes", [(0.0, 50.0), (5.0, 500.0)])
def test_grid_cross_bias_is_applied_and_the_kv_cache_path_agrees(slopes):
    batch = grid_target_batch()
    plain = make_model().target_logits(batch)["depth"]
    model = make_model(grid_cross_bias=slopes)
    full = model.target_logits(batch)["depth"]  # (B, N, V)
    assert (full - plain).abs().max() > 2e-5  # same weights (seed), only the bias differs (small at init)
    N = full.shape[1]
    state = model.start_decoding(model.encode(batch), "depth")
    zeros, positions = torch.zeros(2, N, dtype=torch.long), torch.arange(N).expand(2, -1)
    stepped = model.decode_step(state, zeros, positions, torch.ones(2, N, dtype=torch.bool))
    torch.testing.assert_close(stepped, full, rtol=1e-4, atol=1e-4)


def test_grid_cross_bias_penalises_distance_between_cells_only():
    model = make_model(grid_cross_bias=(0.0, 64.0))
    batch = grid_target_batch()
    enc = model.encode(batch)
    depth = model.names.index("depth")
    h, w = model.config.spec("depth").grid_size
    mask = model._cross_mask(enc, torch.full((2, 1), depth), torch.zeros(2, 1, dtype=torch.long))  # cell (0, 0)
    assert mask.shape == (2, 2, 1, enc.memory.shape[1])
    assert torch.all(mask[:, 0][enc.valid[:, None]] == 0)  # slope 0: a global head
    grid_inputs = enc.valid & (enc.modality >= 0) & torch.tensor(
        [model.config.modalities[m].kind == "image_grid" for m in range(len(model.names))])[enc.modality.clamp(min=0)]
    rows, cols = enc.positions // w, enc.positions % w
    expected = -64.0 * ((rows / h) ** 2 + (cols / w) ** 2)
    torch.testing.assert_close(mask[:, 1, 0][grid_inputs], expected[grid_inputs].float())
    assert torch.all(mask[:, 1, 0][enc.valid & ~grid_inputs] == 0)  # register, sequences, text: no bias
    assert torch.all(mask[:, 1, 0][~enc.valid] == float("-inf"))


def test_grid_cross_bias_config_is_checked():
    with pytest.raises(ValueError, match="one slope per head"):
        make_model(grid_cross_bias=(1.0,))
    with pytest.raises(ValueError, match=">= 0"):
        make_model(grid_cross_bias=(1.0, -1.0))
