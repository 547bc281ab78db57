"""The modality registry: YAML entries validate into frozen specs; mistakes are named."""
import pytest

from fourm.config import ConfigError
from fourm.modalities import ModalityRegistry, load_registry


def test_default_set_has_the_four_modalities_with_their_kinds():
    reg = load_registry(["rgb", "caption", "depth", "semseg"])
    assert {n: reg[n].kind for n in reg} == {"rgb": "image_seq", "caption": "text", "depth": "image_grid", "semseg": "image_grid"}
    assert reg["depth"].token_ext == "tok_depth.npy" and reg["caption"].token_ext == "caption.txt"
    assert [s.name for s in reg.of_kind("image_grid")] == ["depth", "semseg"]


def test_unknown_modality_is_named():
    with pytest.raises(ConfigError, match="unknown modality 'surface'"):
        load_registry(["surface"])
    with pytest.raises(KeyError, match="unknown modality 'x'"):
        load_registry(["rgb"])["x"]


def write(folder, name, body):
    (folder / f"{name}.yaml").write_text(body)


def test_bad_entries(tmp_path):
    write(tmp_path, "d", "name: d\nkind: image_grid\ndata: depth_map\nvocab_size: 10\nmax_tokens: 4\nraw_ext: d.npy\ntokenizer: x\n")
    with pytest.raises(ConfigError, match="needs grid_size"):
        load_registry(["d"], tmp_path)
    write(tmp_path, "d", "name: d\nkind: image_grid\ndata: depth_map\nvocab_size: 10\nmax_tokens: 4\ngrid_size: [2, 3]\nraw_ext: d.npy\ntokenizer: x\n")
    with pytest.raises(ConfigError, match="does not give max_tokens 4"):
        load_registry(["d"], tmp_path)
    write(tmp_path, "t", "name: t\nkind: txt\ndata: text\nvocab_size: 10\nmax_tokens: 4\nraw_ext: t.txt\ntokenizer: x\n")
    with pytest.raises(ConfigError, match=r"t\.yaml: key 'kind': 'txt' is not one of"):
        load_registry(["t"], tmp_path)
    write(tmp_path, "c", "name: c\nkind: image_grid\ndata: class_map\nvocab_size: 10\nmax_tokens: 4\ngrid_size: [2, 2]\n"
                         "raw_ext: c.png\ntokenizer: x\npalette: [[0, 0, 0], [300, 0, 0]]\n")
    with pytest.raises(ConfigError, match="palette is for class maps"):
        load_registry(["c"], tmp_path)
    write(tmp_path, "u", "name: v\nkind: text\ndata: text\nvocab_size: 10\nmax_tokens: 4\nraw_ext: t.txt\ntokenizer: x\n")
    with pytest.raises(ConfigError, match="file name must be the modality name"):
        load_registry(["u"], tmp_path)


def test_colorseg_palette_shows_each_object_in_its_own_colour():
    """colorseg's display palette: label 2 + shape * 8 + colour is drawn in that colour."""
    from fourm.datasets.scenes.world import PALETTE, colorseg_label

    spec = load_registry(["colorseg"])["colorseg"]
    assert len(spec.palette) == 2 + 4 * len(PALETTE)
    assert spec.palette[colorseg_label("cone", "red")] == PALETTE["red"]
    assert spec.palette[colorseg_label("sphere", "gray")] == PALETTE["gray"]


def test_registry_is_read_only_and_rejects_duplicates():
    reg = load_registry(["rgb"])
    with pytest.raises(ConfigError, match="declared twice"):
        ModalityRegistry([reg["rgb"], reg["rgb"]])
    with pytest.raises(Exception):
        reg["rgb"].vocab_size = 3
