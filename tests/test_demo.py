"""The demo's work without a browser or gradio: FlexTok prefixes, chained generation with decoded,
saved outputs, settings -> a YAML that `load_generation_config` reads back, clear errors for bad
files and impossible settings. A micro checkpoint with random weights, 16 px, seconds."""
import numpy as np
import pytest
import torch

from fourm.config import ConfigError
from fourm.demo import any_to_any, flextok_view, settings_yaml
from fourm.demo.micro import build_micro_checkpoint
from fourm.demo.samples import write_condition_file
from fourm.demo.session import DemoSession


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    torch.set_num_threads(1)
    model_dir, samples_dir = build_micro_checkpoint(tmp_path_factory.mktemp("micro"))
    return DemoSession.load(model_dir, samples=samples_dir, work_dir=tmp_path_factory.mktemp("work"))


def sample_file(session, name):
    sample = session.samples[0]
    return write_condition_file(session.specs[name], sample.values[name], session.new_folder("test"), sample.key)


def test_session_loads_every_tokenizer_and_the_val_samples(session):
    assert list(session.tokenizers) == ["rgb", "caption", "depth", "semseg"] and not session.missing
    assert len(session.samples) == 6 and session.class_names[:2] == ["background", "floor"]
    assert set(session.samples[0].values) == {"rgb", "caption", "depth", "semseg"}


def test_token_counts_are_powers_of_two_plus_max_and_chosen():
    assert flextok_view.token_counts(8, 3) == [1, 2, 3, 4, 8]
    assert flextok_view.token_counts(32, 32) == [1, 2, 4, 8, 16, 32]
    assert flextok_view.token_counts(6, 1) == [1, 2, 4, 6]


def test_flextok_prefixes_decode_from_the_same_tokens(session):
    path = sample_file(session, "rgb")
    rec = flextok_view.reconstruct(session, path, num_tokens=3, guidance=1.5, steps=2, seed=0)
    assert len(rec.ids) == 8 and sorted(rec.by_count) == [1, 2, 3, 4, 8]
    assert all(img.shape == (16, 16, 3) and img.dtype == np.uint8 for img in rec.by_count.values())
    assert not np.array_equal(rec.by_count[1], rec.by_count[8])  # more tokens, another image
    again = flextok_view.reconstruct(session, path, num_tokens=3, guidance=1.5, steps=2, seed=0)
    assert np.array_equal(again.chosen_image, rec.chosen_image)  # seeded


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_tokens=9), "outside 1..8"), (dict(num_tokens=0), "outside 1..8"),
    (dict(guidance=-1.0), "guidance"), (dict(steps=0), "steps"),
])
def test_flextok_impossible_settings_are_errors(session, kwargs, message):
    settings = dict(num_tokens=2, guidance=1.0, steps=2, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        flextok_view.reconstruct(session, sample_file(session, "rgb"), **settings)


def test_bad_uploads_name_the_file(session, tmp_path):
    text_as_png = tmp_path / "photo.png"
    text_as_png.write_text("not an image")
    with pytest.raises(ValueError, match="photo.png"):
        flextok_view.reconstruct(session, text_as_png, 2, 1.0, 2, 0)
    wrong_depth = tmp_path / "depth.npy"
    np.save(wrong_depth, np.ones((8, 8), np.float32))
    cfg = settings_yaml.to_config(settings_yaml.settings_dict("m", ["depth"], [{"modality": "semseg"}], 0), session.specs)
    with pytest.raises(ValueError, match="8x8 map.*16x16"):
        any_to_any.run(session, {"depth": wrong_depth}, cfg, 2, 1.0)


def test_chained_generation_decodes_and_saves_every_target(session):
    targets = [{"modality": "caption", "scheme": "autoregressive", "temperature": 1.0},
               {"modality": "depth", "steps": 2}, {"modality": "semseg", "scheme": "roar", "steps": 2},
               {"modality": "rgb", "num_tokens": 4, "steps": 2, "cfg_scale": 2.0}]
    caption = write_condition_file(session.specs["caption"], "a small red cube", session.new_folder("typed"), "typed")
    data = settings_yaml.settings_dict("m", ["caption"], targets[1:], 3)  # a typed caption -> depth -> semseg -> rgb
    outputs = any_to_any.run(session, {"caption": caption}, settings_yaml.to_config(data, session.specs), 2, 1.0)
    assert [o.name for o in outputs] == ["depth", "semseg", "rgb"]
    assert all(o.preview.dtype == np.uint8 and o.preview.shape[-1] == 3 for o in outputs)
    assert [o.legend is not None for o in outputs] == [True, True, False]  # colour bar, classes, none for RGB
    assert [sorted(p.suffix for p in o.files) for o in outputs] == [[".npy", ".png"], [".npy", ".png"], [".png"]]

    data = settings_yaml.settings_dict("m", ["rgb"], targets[:1], 3)
    (text,) = any_to_any.run(session, {"rgb": sample_file(session, "rgb")}, settings_yaml.to_config(data, session.specs), 2, 1.0)
    assert isinstance(text.text, str) and text.files[0].read_text().strip() == text.text.strip()


def test_settings_yaml_loads_back_as_the_same_config(session, tmp_path):
    targets = [{"modality": "semseg", "scheme": "maskgit", "steps": 4, "temperature": 0.5, "cfg_scale": 2.0},
               {"modality": "rgb", "scheme": "roar", "steps": 3, "num_tokens": 5, "temperature": 1.0, "cfg_scale": 1.0}]
    data = settings_yaml.settings_dict(str(session.checkpoint), ["caption", "depth"], targets, 7)
    loaded = settings_yaml.write_yaml(data, tmp_path / "gen.yaml", session.specs)
    assert loaded == settings_yaml.to_config(data, session.specs)
    assert [t.modality for t in loaded.targets] == ["semseg", "rgb"] and loaded.targets[1].num_tokens == 5
    assert loaded.seed == 7 and [c.source for c in loaded.conditions] == ["input", "input"]


@pytest.mark.parametrize("targets, message", [
    ([], "at least one target"),
    ([{"modality": "rgb", "num_tokens": 9}], "num_tokens.*outside 1..8"),
    ([{"modality": "semseg", "num_tokens": 4}], "fixed size"),
    ([{"modality": "caption", "scheme": "maskgit"}], "autoregressive"),
    ([{"modality": "depth"}], "already a condition"),
])
def test_impossible_settings_never_reach_the_disk(session, tmp_path, targets, message):
    data = settings_yaml.settings_dict("m", ["depth"], targets, 0)
    with pytest.raises((ConfigError, ValueError), match=message):
        settings_yaml.write_yaml(data, tmp_path / "bad.yaml", session.specs)
    assert not (tmp_path / "bad.yaml").exists()


def test_the_app_builds_when_gradio_is_installed(session):
    pytest.importorskip("gradio")
    from fourm.demo.app import build_app

    demo = build_app(session)
    labels = {getattr(block, "label", None) for block in demo.blocks.values()}
    assert {"FlexTok", "Any-to-any", "number of tokens", "targets, in generation order"} <= labels


def test_default_roles_take_every_view_of_the_sample_image_as_conditions():
    """rgb and rgb_grid read the same file: both are conditions by default, the maps are targets."""
    from types import SimpleNamespace

    from fourm.demo.ui_any_to_any import default_roles
    from fourm.modalities import ModalitySpec

    specs = {s.name: s for s in (
        ModalitySpec("rgb", "image_seq", "image_rgb", 1000, 32, "rgb.png", ""),
        ModalitySpec("depth", "image_grid", "depth_map", 240, 64, "depth.npy", "", grid_size=(8, 8)),
        ModalitySpec("rgb_grid", "image_grid", "image_rgb", 1000, 64, "rgb.png", "", grid_size=(8, 8)),
        ModalitySpec("caption", "text", "text", 1024, 96, "caption.txt", ""))}
    with_samples = SimpleNamespace(tokenizers=dict.fromkeys(specs), specs=specs, samples=[object()])
    assert default_roles(with_samples) == (["rgb", "rgb_grid"], ["depth", "caption"])
    no_samples = SimpleNamespace(tokenizers=dict.fromkeys(specs), specs=specs, samples=[])
    assert default_roles(no_samples) == (["caption"], ["rgb", "depth", "rgb_grid"])


def test_a_legend_of_many_classes_lists_those_present_in_the_spec_colours():
    """colorseg's 34 classes: the legend lists only the labels in the map, each in the colour the
    map is drawn with (the registry entry's palette) and under the entry's class names."""
    from fourm.demo.legends import legend_for
    from fourm.modalities import load_registry
    from fourm.visuals import legend_image

    spec = load_registry(["colorseg"])["colorseg"]
    class_map = np.array([[0, 1], [10, 10]])  # background, floor, "red cube"
    legend = legend_for(spec, class_map, ["background", "floor", "sphere"])
    palette = np.array(spec.palette, dtype=np.uint8)
    expected = legend_image(["background", "floor", "red cube"], palette[[0, 1, 10]], indices=[0, 1, 10])
    assert np.array_equal(legend, expected)
    assert legend.shape[0] < legend_image(list(spec.class_names), palette).shape[0]
