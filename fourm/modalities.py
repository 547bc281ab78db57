"""The modality registry: one YAML file per modality under configs/modalities/, each validated
into a frozen `ModalitySpec`. Code branches on `spec.kind` (how tokens are laid out) and
`spec.data` (what the raw file holds), never on `spec.name`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Mapping, Optional, Sequence

from fourm.config import ConfigError, load_config
from fourm.paths import CONFIG_DIR

Kind = Literal["image_grid", "image_seq", "text", "image_patches"]
RawData = Literal["image_rgb", "depth_map", "class_map", "normal_map", "text"]


@dataclass(frozen=True)
class ModalitySpec:
    """One modality.

    name:        key used in shards and batches, e.g. 'depth' (files '<key>.depth.npy')
    kind:        image_grid (2D token grid), image_seq (ordered 1D tokens, FlexTok), text, or
                 image_patches (an image's 8-bit pixel patches on a grid: encoder input only, each
                 patch embedded linearly as 4M embeds RGB; never a target)
    data:        what the raw file holds; selects the raw <-> tensor conversion
    vocab_size:  number of token ids the tokenizer emits (text: including special tokens)
    max_tokens:  tokens per sample (image_grid: grid_h * grid_w; image_seq: registers; text: max length)
    raw_ext:     raw shard file extension after the key, e.g. 'depth.npy'
    tokenizer:   folder of the trained tokenizer (safetensors + config)
    tokenizer_config: YAML that trains that tokenizer with `fourm tokenizer train`
    grid_size:   (grid_h, grid_w) for image_grid and image_patches modalities
    patch_size:  image_patches only: pixels per patch side (a patch holds 3 * patch_size^2 values)
    palette:     class_map only: display colour (r, g, b) of each class, e.g. an object's own colour
                 (default: fixed distinct colours, `fourm.visuals.class_palette`)
    class_names: class_map only: the name of each class, for legends (default: the dataset
                 manifest's class_names)
    """

    name: str
    kind: Kind
    data: RawData
    vocab_size: int
    max_tokens: int
    raw_ext: str
    tokenizer: str
    tokenizer_config: str = ""
    grid_size: Optional[tuple[int, int]] = None
    palette: tuple[tuple[int, int, int], ...] = ()
    class_names: tuple[str, ...] = ()
    patch_size: int = 0

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"modality '{self.name}': vocab_size must be >= 2, got {self.vocab_size}")
        if self.max_tokens < 1:
            raise ValueError(f"modality '{self.name}': max_tokens must be >= 1, got {self.max_tokens}")
        if self.kind in ("image_grid", "image_patches"):
            if self.grid_size is None:
                raise ValueError(f"modality '{self.name}': kind {self.kind} needs grid_size [h, w]")
            if self.grid_size[0] * self.grid_size[1] != self.max_tokens:
                raise ValueError(f"modality '{self.name}': grid_size {list(self.grid_size)} does not give max_tokens {self.max_tokens}")
        if self.palette and (self.data != "class_map" or any(not 0 <= c <= 255 for rgb in self.palette for c in rgb)):
            raise ValueError(f"modality '{self.name}': palette is for class maps, colours 0..255 each")
        if self.class_names and self.data != "class_map":
            raise ValueError(f"modality '{self.name}': class_names are for class maps")
        if self.palette and self.class_names and len(self.palette) != len(self.class_names):
            raise ValueError(f"modality '{self.name}': {len(self.palette)} palette colours for "
                             f"{len(self.class_names)} class_names")
        if (self.kind == "image_patches") != (self.patch_size > 0):
            raise ValueError(f"modality '{self.name}': patch_size >= 1 goes with kind image_patches, and only with it")
        if self.kind == "image_patches" and (self.data != "image_rgb" or self.vocab_size != 256):
            raise ValueError(f"modality '{self.name}': image_patches holds 8-bit RGB (data image_rgb, vocab_size 256)")
        if (self.kind == "text") != (self.data == "text"):
            raise ValueError(f"modality '{self.name}': kind {self.kind} does not fit raw data {self.data}")

    @property
    def values_per_token(self) -> int:
        """Values each token carries: 1 id, or the 3 * patch_size^2 pixel values of a patch."""
        return 3 * self.patch_size ** 2 if self.kind == "image_patches" else 1

    @property
    def token_ext(self) -> str:
        """Extension of this modality's file in token shards: ids for images, the text itself for text
        (text is tokenized on the fly so span masking sees whole words)."""
        return self.raw_ext if self.kind == "text" else f"tok_{self.name}.npy"


class ModalityRegistry(Mapping[str, ModalitySpec]):
    """An ordered, read-only name -> ModalitySpec mapping."""

    def __init__(self, specs: Sequence[ModalitySpec]):
        self._specs: dict[str, ModalitySpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ConfigError(f"modality '{spec.name}' is declared twice")
            self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> ModalitySpec:
        if name not in self._specs:
            raise KeyError(f"unknown modality '{name}' (known: {', '.join(self._specs)})")
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def subset(self, names: Sequence[str]) -> "ModalityRegistry":
        return ModalityRegistry([self[n] for n in names])

    def of_kind(self, kind: str) -> list[ModalitySpec]:
        return [s for s in self._specs.values() if s.kind == kind]


def load_modality(path: str | Path) -> ModalitySpec:
    spec = load_config(path, ModalitySpec)
    if Path(path).stem != spec.name:
        raise ConfigError(f"{path}: the file name must be the modality name ('{spec.name}.yaml')")
    return spec


def load_registry(names: Sequence[str] | None = None, folder: str | Path | None = None) -> ModalityRegistry:
    """Load modalities from `folder` (default configs/modalities): all, or `names` in that order."""
    folder = Path(folder) if folder else CONFIG_DIR / "modalities"
    if names is None:
        return ModalityRegistry([load_modality(p) for p in sorted(folder.glob("*.yaml"))])
    specs = []
    for name in names:
        path = folder / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
            raise ConfigError(f"{path}: unknown modality '{name}' (known: {known})")
        specs.append(load_modality(path))
    return ModalityRegistry(specs)
