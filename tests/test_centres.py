"""Object centres (tokenizer `object_centres`): one token per object at its centre's cell, with its
label and size bucket; decoding draws a disc per object; the shipped config matches the registry."""
import numpy as np
import pytest
import torch

from fourm.config import ConfigError
from modality_tokenizers import load_tokenizer
from modality_tokenizers.centres import ObjectCentreTokenizer

# 32x32 maps, a 4x4 grid of 8-pixel cells; labels 0 background, 1 floor, objects 2..5; buckets < 20, < 60, >= 60 px
TOKENIZER = ObjectCentreTokenizer(ObjectCentreTokenizer.Config(image_size=32, grid=4, num_labels=6,
                                                               first_object_label=2, size_edges=[20, 60], min_pixels=4))


def label_map() -> torch.Tensor:
    """(1, 32, 32): floor below row 8; a 10x10 square of label 3 centred in cell (1, 1); a 3x3
    square of label 5 in cell (3, 3); a 2x1 speck of label 2 (under min_pixels)."""
    m = torch.zeros(32, 32, dtype=torch.long)
    m[8:] = 1
    m[7:17, 7:17] = 3
    m[26:29, 26:29] = 5
    m[30, 0:2] = 2
    return m[None]


def token(label: int, bucket: int) -> int:
    return 1 + (label - 2) * 3 + bucket


def test_each_object_becomes_one_token_at_its_centre_cell():
    ids = TOKENIZER.encode(label_map())
    assert ids.shape == (1, 16) and TOKENIZER.vocab_size == 1 + 4 * 3
    expected = torch.zeros(16, dtype=torch.long)
    expected[1 * 4 + 1] = token(3, 2)  # 100 px: the large bucket
    expected[3 * 4 + 3] = token(5, 0)  # 9 px: the small bucket
    assert torch.equal(ids[0], expected)  # the 2-pixel speck is no object


def test_the_larger_object_keeps_a_shared_cell_and_split_regions_count_apart():
    m = torch.zeros(1, 32, 32, dtype=torch.long)
    m[0, 1:7, 1:7] = 2      # 36 px, centre in cell (0, 0)
    m[0, 1:3, 5:7] = 4      # painted over: label 4 takes 4 px of it, centre also in cell (0, 0)
    m[0, 20:24, 8:12] = 2   # a second region of label 2 in cell (2, 1)
    ids = TOKENIZER.encode(m)[0]
    assert ids[0] == token(2, 1) and ids[2 * 4 + 1] == token(2, 0) and int((ids > 0).sum()) == 2


def test_decoding_draws_each_object_as_a_disc_of_its_label_at_the_cell_centre(tmp_path):
    maps = TOKENIZER.decode(TOKENIZER.encode(label_map()))
    assert maps.shape == (1, 32, 32)
    assert maps[0, 12, 12] == 3 and maps[0, 28, 28] == 5 and maps[0, 0, 31] == 0
    assert int((maps == 3).sum()) > int((maps == 5).sum())  # larger bucket, larger disc
    TOKENIZER.save_pretrained(tmp_path)
    assert torch.equal(load_tokenizer(tmp_path).encode(label_map()), TOKENIZER.encode(label_map()))


def test_code_appearance_factors_each_id_into_shape_colour_and_size():
    tokenizer = ObjectCentreTokenizer(ObjectCentreTokenizer.Config(image_size=32, grid=4, num_labels=6, first_object_label=2,
                                                                   size_edges=[20, 60], label_factors=[2, 2]))
    table = tokenizer.code_appearance()  # [empty | factor 1 (2) | factor 2 (2) | size (3)]
    assert table.shape == (13, 8) and torch.equal(table[0], torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0]))
    assert torch.equal(table[token(5, 1)], torch.tensor([0.0, 0, 1, 0, 1, 0, 1, 0]))  # label 5 = (1, 1), middle size
    assert torch.equal(table[token(3, 2)], torch.tensor([0.0, 1, 0, 0, 1, 0, 0, 1]))  # label 3 = (0, 1), large
    assert torch.equal(tokenizer.measured_appearance, table)
    with pytest.raises(ValueError, match="multiply to 6, not the 4 object labels"):
        ObjectCentreTokenizer.Config(image_size=32, grid=4, num_labels=6, first_object_label=2, label_factors=[2, 3])


def test_joint_label_adds_one_column_per_whole_label():
    tokenizer = ObjectCentreTokenizer(ObjectCentreTokenizer.Config(image_size=32, grid=4, num_labels=6, first_object_label=2,
                                                                   size_edges=[20, 60], label_factors=[2, 2], joint_label=True))
    table = tokenizer.code_appearance()  # [empty | factor 1 (2) | factor 2 (2) | label (4) | size (3)]
    assert table.shape == (13, 12)
    assert torch.equal(table[token(5, 1)], torch.tensor([0.0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0]))  # label 5 = (1, 1)
    assert torch.equal(table[token(2, 0)], torch.tensor([0.0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0]))  # label 2 = (0, 0)
    # a caption naming labels (0, 0) and (1, 1): any scores over the factor columns alone sum to as
    # much on the crossed labels (0, 1) + (1, 0) as on the named ones, so they cannot rank both named
    # first; over the label columns they can
    objects = table[[token(label, 0) for label in (2, 3, 4, 5)]]  # labels (0,0), (0,1), (1,0), (1,1)
    by_factors = torch.zeros(12, 100)
    by_factors[1:5] = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    s = objects @ by_factors
    assert torch.allclose(s[0] + s[3], s[1] + s[2], atol=1e-5)
    by_labels = torch.zeros(12)
    by_labels[[5, 8]] = 1.0
    scores = objects @ by_labels
    assert scores[0] == scores[3] > scores[1] == scores[2]


def test_bad_inputs_and_settings_are_refused():
    with pytest.raises(ValueError, match=r"expected label maps \(B, 32, 32\)"):
        TOKENIZER.encode(torch.zeros(1, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected ids \(B, 16\) in 0..12"):
        TOKENIZER.decode(torch.full((1, 16), 13))
    with pytest.raises(ValueError, match="size_edges must be increasing"):
        ObjectCentreTokenizer.Config(image_size=32, grid=4, num_labels=6, first_object_label=2, size_edges=[60, 20])
    with pytest.raises(ValueError, match="multiple of grid"):
        ObjectCentreTokenizer.Config(image_size=30, grid=4, num_labels=6, first_object_label=2)


def test_the_shipped_centres_config_saves_a_tokenizer_that_fits_the_registry(tmp_path):
    from fourm.datasets.scenes.world import COLORSEG_NAMES
    from fourm.modalities import load_registry
    from train.fixed_tokenizer import save_fixed_tokenizer

    config = "configs/tokenizers/centres_scenes.yaml"
    assert save_fixed_tokenizer(config, [f"out={tmp_path / 'tok'}"])["tokens"] == 64
    spec = load_registry(["centres"])["centres"]
    tokenizer = load_tokenizer(tmp_path / "tok")
    assert tokenizer.vocab_size == spec.vocab_size and len(spec.palette) == len(COLORSEG_NAMES)
    assert tokenizer.encode(torch.zeros(2, 64, 64, dtype=torch.long)).shape == (2, 64)
    with pytest.raises(ConfigError, match="vocab_size 97"):
        save_fixed_tokenizer(config, [f"out={tmp_path / 'bad'}", "model.size_edges=[50]"])


def test_centres_of_rendered_scenes_name_their_objects():
    """On real scenes: one token per visible object, each decoding to a label of that scene."""
    from fourm.datasets.scenes.generate import render_sample
    from fourm.datasets.scenes.world import colorseg_label

    sample = render_sample(seed=0, split="val", index=4, resolution=64)
    tokenizer = ObjectCentreTokenizer(ObjectCentreTokenizer.Config(image_size=64, grid=8, num_labels=34,
                                                                   first_object_label=2, size_edges=[50, 150]))
    ids = tokenizer.encode(torch.from_numpy(np.asarray(sample.rendering.colorseg, dtype=np.int64))[None])[0]
    labels = {(int(i) - 1) // 3 + 2 for i in ids if i > 0}
    assert labels <= {colorseg_label(o.shape, o.color) for o in sample.scene.objects}
    assert len(labels) >= 1
