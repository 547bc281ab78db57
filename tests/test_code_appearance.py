"""Code appearance: grid tokenizers describe what each code draws; FourM embeds and predicts tokens
through those rows (fourm/model/appearance.py); the trainer fills them from the tokenizers."""
import dataclasses

import pytest
import torch

from fourm.data import synthetic_specs
from fourm.model import FourM, preset_config
from fourm.model.io import load_pretrained, save_pretrained
from modality_tokenizers.grid import GridTokenizer
from train.code_appearance import code_appearance_tables

SPECS = synthetic_specs()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def micro_tokenizer(data: str) -> GridTokenizer:
    torch.manual_seed(0)
    cfg = GridTokenizer.Config(data=data, image_size=16, patch_size=4, width=32, depth=1, heads=2, stem_channels=8,
                               levels=(4, 4, 3), num_classes=5 if data == "class_map" else 0)
    return GridTokenizer(cfg).eval()


def model_with_tables(features: int = 6, seed: int = 0) -> FourM:
    torch.manual_seed(seed)
    model = FourM(preset_config("micro", SPECS, code_appearance={"semseg": features})).eval()
    gen = torch.Generator().manual_seed(seed)
    model.set_code_appearance({"semseg": torch.randn(256, features, generator=gen)})
    return model


@pytest.mark.parametrize("data, channels", [("image_rgb", 3), ("class_map", 5), ("depth_map", 2), ("normal_map", 4)])
def test_tokenizer_describes_every_code_by_its_decoded_cell(data, channels):
    table = micro_tokenizer(data).code_appearance()  # decoded: nothing measured yet
    assert table.shape == (48, channels * 4 * 4) and torch.isfinite(table).all()
    assert table.std(0).max() > 0  # codes draw differently
    if data == "class_map":  # class probabilities per pooled pixel
        sums = table.view(48, 5, 16).sum(1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


def test_measured_rows_are_the_mean_content_of_the_cells_of_each_code(tmp_path):
    tokenizer = micro_tokenizer("class_map")
    maps = torch.randint(0, 5, (6, 16, 16), generator=torch.Generator().manual_seed(1))
    tokenizer.describe_codes([maps[:4], maps[4:]])
    table, seen = tokenizer.measured_appearance
    ids = tokenizer.encode(maps).reshape(-1)
    code = int(ids[0])
    onehot = torch.nn.functional.one_hot(maps, 5).permute(0, 3, 1, 2).float()  # (6, 5, 16, 16)
    cells = onehot.unfold(2, 4, 4).unfold(3, 4, 4)  # (6, 5, 4, 4, 4, 4): cell row, col, pixel row, col
    cells = cells.permute(0, 2, 3, 1, 4, 5).reshape(6 * 16, 5 * 4 * 4)  # pool side 4 = patch 4: pixels
    assert torch.allclose(table[code], cells[ids == code].mean(0), atol=1e-6)
    assert int(seen.sum()) == ids.unique().numel()
    unseen = int((~seen).nonzero()[0])
    assert torch.allclose(table[unseen], micro_tokenizer("class_map").code_appearance()[unseen], atol=1e-6)
    tokenizer.save_pretrained(tmp_path)
    loaded = GridTokenizer.from_pretrained(tmp_path)
    assert torch.equal(loaded.code_appearance(), table)


def test_codes_that_draw_alike_get_the_same_appearance_logit_and_embedding():
    model = model_with_tables()
    table = model.heads["semseg"].appearance_table.clone()
    table[7] = table[3]
    model.heads["semseg"].appearance_table.copy_(table)
    model.embeddings["semseg"].appearance.table.copy_(table)
    with torch.no_grad():
        model.heads["semseg"].weight.zero_()
        model.embeddings["semseg"].tokens.weight.zero_()
        logits = model.heads["semseg"](torch.randn(5, 32))
        emb = model.embeddings["semseg"].token_embedding(torch.tensor([3, 7, 4]))
    # equal up to float rounding: a CPU may sum a row's products in another order by its place in the batch
    assert torch.allclose(logits[:, 3], logits[:, 7], atol=1e-6) and not torch.allclose(logits[:, 3], logits[:, 4], atol=1e-3)
    assert torch.allclose(emb[0], emb[1], atol=1e-6) and not torch.allclose(emb[0], emb[2], atol=1e-3)


def test_tables_are_standardised_saved_and_trained_through(tmp_path):
    from tests.test_fourm_model import random_batch

    model = model_with_tables()
    rows = model.embeddings["semseg"].appearance.table
    assert torch.allclose(rows.mean(0), torch.zeros(6), atol=1e-5) and torch.allclose(rows.std(0), torch.ones(6), atol=1e-4)
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path).eval()
    batch = random_batch()
    assert torch.equal(model(batch).loss, loaded(batch).loss)
    model.train()(batch).loss.backward()
    assert model.embeddings["semseg"].appearance.project.weight.grad.abs().sum() > 0
    assert model.heads["semseg"].to_appearance.weight.grad.abs().sum() > 0


def test_models_without_tables_keep_their_saved_weight_names():
    plain = FourM(preset_config("micro", SPECS))
    assert not [k for k in plain.state_dict() if "appearance" in k]
    assert "heads.semseg.weight" in plain.state_dict()


def test_bad_tables_and_names_are_clear_errors():
    with pytest.raises(ValueError, match="'flow' is not one of the model's modalities"):
        preset_config("micro", SPECS, code_appearance={"flow": 4})
    model = FourM(preset_config("micro", SPECS, code_appearance={"semseg": 6}))
    with pytest.raises(ValueError, match="no table given for modality 'semseg'"):
        model.set_code_appearance({})
    with pytest.raises(ValueError, match=r"shape \(256, 5\), the model expects \(256, 6\)"):
        model.set_code_appearance({"semseg": torch.zeros(256, 5)})
    specs = {s.name: s for s in SPECS}
    with pytest.raises(ValueError, match="modality 'caption' is text"):
        code_appearance_tables(specs, ["caption"])
    with pytest.raises(ValueError, match="'flow' is not one of model.modalities"):
        code_appearance_tables(specs, ["flow"])


def test_trainer_reads_the_tables_from_the_trained_tokenizer(tmp_path):
    tokenizer = micro_tokenizer("class_map")
    tokenizer.save_pretrained(tmp_path / "semseg")
    # 48 codes: the micro tokenizer's FSQ levels (4, 4, 3)
    spec = dataclasses.replace(specs_by_name()["semseg"], vocab_size=48, tokenizer=str(tmp_path / "semseg"))
    tables = code_appearance_tables({"semseg": spec}, ["semseg"])
    assert torch.equal(tables["semseg"], tokenizer.code_appearance())
    wrong = dataclasses.replace(spec, vocab_size=64)
    with pytest.raises(ValueError, match="has 48 codes, the registry says vocab_size 64"):
        code_appearance_tables({"semseg": wrong}, ["semseg"])


def specs_by_name() -> dict:
    return {s.name: s for s in SPECS}
