"""The config system: every YAML under configs/ validates, and mistakes name the key and file."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from fourm.config import ConfigError, load_config, from_dict, save_config
from fourm.paths import CONFIG_DIR
from tests.config_schemas import schema_for


@dataclass(frozen=True)
class Inner:
    width: int
    dropout: float = 0.0


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    kind: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    note: Optional[str] = None
    extra: dict[str, float] = field(default_factory=dict)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_loads_nested_and_converts(tmp_path):
    cfg = load_config(write(tmp_path, "name: x\ninner: {width: 3, dropout: 1}\nsizes: [4, 5]\n"), Outer)
    assert cfg == Outer("x", Inner(3, 1.0), sizes=(4, 5))
    with pytest.raises(Exception):
        cfg.name = "y"  # frozen


def test_unknown_key_names_path_and_file(tmp_path):
    path = write(tmp_path, "name: x\ninner: {width: 3, dropuot: 0.1}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'inner\.dropuot' \(did you mean 'dropout'"):
        load_config(path, Outer)


def test_wrong_type_and_missing_value(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'inner\.width': expected an integer, got 'wide'"):
        load_config(write(tmp_path, "name: x\ninner: {width: wide}\n"), Outer)
    with pytest.raises(ConfigError, match=r"missing required key 'inner\.width'"):
        load_config(write(tmp_path, "name: x\ninner: {}\n"), Outer)
    with pytest.raises(ConfigError, match=r"key 'kind': 'c' is not one of 'a', 'b'"):
        load_config(write(tmp_path, "name: x\ninner: {width: 1}\nkind: c\n"), Outer)
    with pytest.raises(ConfigError, match=r"key 'sizes\[1\]': expected an integer"):
        load_config(write(tmp_path, "name: x\ninner: {width: 1}\nsizes: [1, 2.5]\n"), Outer)


def test_overrides(tmp_path):
    path = write(tmp_path, "name: x\ninner: {width: 3}\n")
    cfg = load_config(path, Outer, ["inner.width=8", "kind=b", "sizes=[7]", "extra.lr=1e-3"])
    assert cfg.inner.width == 8 and cfg.kind == "b" and cfg.sizes == (7,) and cfg.extra == {"lr": 1e-3}
    with pytest.raises(ConfigError, match="unknown key 'inner.widht'"):
        load_config(path, Outer, ["inner.widht=8"])
    with pytest.raises(ConfigError, match="expected the form"):
        load_config(path, Outer, ["inner.width"])


def test_save_and_reload_round_trip(tmp_path):
    cfg = Outer("x", Inner(3), sizes=(4,), note="hi")
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml", Outer) == cfg


def test_bad_yaml_names_file(tmp_path):
    with pytest.raises(ConfigError, match="c.yaml: not valid YAML"):
        load_config(write(tmp_path, "name: [unclosed\n"), Outer)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", Outer)


ALL_YAML = sorted(CONFIG_DIR.rglob("*.yaml"))


def test_there_are_configs():
    assert len(ALL_YAML) >= 5


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_shipped_yaml_validates(path):
    cls, validate = schema_for(path)
    cfg = load_config(path, cls)
    validate(cfg, path)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ConfigError, match="key 'inner': expected a mapping"):
        from_dict(Outer, {"name": "x", "inner": 3})
