"""Generation outputs: token ids <-> raw values <-> files, for any modality (dispatch on spec.data).

    toks = load_modality_tokenizers(specs)                                 # {name: tokenizer}
    values = decode_tokens(spec, toks[name], ids, steps=25, generator=g)  # one raw value per sample
    paths = save_output("out", key, spec, values[0])                       # PNG (+ .npy) or .txt
    ids = encode_condition_file(spec, toks[name], "cap.txt")               # a user file -> 1D int64 ids

Raw values follow `modality_tokenizers.raw` (one sample, numpy):
    image_rgb   float32 (3, H, W) in [-1, 1]      depth_map  float32 (H, W) metres, 0 = invalid
    class_map   int64 (H, W) class index          normal_map float32 (3, H, W) unit normals, 0 = invalid
    text        str

Condition files (`encode_condition_file`), checked before any model work:
    image_rgb   .png/.jpg 8-bit RGB (grey is repeated to 3 channels, alpha dropped). Size policy:
                must be square; a size other than the tokenizer's is resized to it (bilinear,
                antialiased, as FlexTok itself does).
    depth_map   .npy float (H, W) metres, or a 16-bit PNG in millimetres; 0 = invalid
    class_map   .png 8/16-bit single channel, or .npy integer (H, W)
    normal_map  .png 8-bit RGB encoded n * 127.5 + 127.5 (scenes convention), or .npy float (H, W, 3)
    text        .txt (stripped; at most the modality's max_tokens tokens)
    any kind    a 1D integer .npy is taken as token ids, as before
Maps other than RGB must have exactly the tokenizer's size: depth, classes and normals are not
resampled behind the user's back.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from fourm.modalities import ModalitySpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_PNG_SCALE = 1000.0  # 16-bit depth PNGs hold millimetres
Ids = Union[torch.Tensor, Sequence[torch.Tensor]]


# ----------------------------------------------------------------------------- tokenizers

def load_modality_tokenizers(specs: Mapping[str, ModalitySpec], dirs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{name: tokenizer} for every spec, from `dirs[name]` or the registry's `spec.tokenizer` folder."""
    from fourm.paths import resolve
    from modality_tokenizers.base import CONFIG_FILE, load_tokenizer

    dirs = dict(dirs or {})
    out = {}
    for name, spec in specs.items():
        given = dirs.get(name, spec.tokenizer)
        if not given:
            raise FileNotFoundError(f"modality '{name}': no tokenizer folder (give one, e.g. --tokenizer {name}=DIR)")
        folder = resolve(given)
        if not (Path(folder) / CONFIG_FILE).is_file():
            hint = f" (train it with `fourm tokenizer train --config {spec.tokenizer_config}`)" if spec.tokenizer_config else ""
            raise FileNotFoundError(f"modality '{name}': no trained tokenizer at {folder}{hint}")
        tokenizer = load_tokenizer(folder)
        out[name] = tokenizer.eval() if hasattr(tokenizer, "eval") else tokenizer
    return out


def expected_size(tokenizer: Any) -> Optional[int]:
    """Side in pixels of the square maps a neural tokenizer takes (None for text)."""
    config = getattr(tokenizer, "config", None) or getattr(tokenizer, "cfg", None)
    return getattr(config, "image_size", None)


# ----------------------------------------------------------------------------- decoding

def _rows(ids: Ids) -> list[torch.Tensor]:
    """(B, N) tensor or a list of 1D tensors/arrays -> list of 1D int64 tensors."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 2:
            raise ValueError(f"token ids must be (B, N), got shape {tuple(ids.shape)}")
        return [r.long() for r in ids.unbind(0)]
    return [torch.as_tensor(np.asarray(r)).long().reshape(-1) for r in ids]


@torch.no_grad()
def decode_tokens(spec: ModalitySpec, tokenizer: Any, ids: Ids, *, steps: Optional[int] = None,
                  guidance_scale: Optional[float] = None, generator: Optional[torch.Generator] = None) -> list:
    """Token ids of B samples -> B raw values (see the module docstring). `steps` and
    `guidance_scale` are FlexTok's decoding settings; other kinds ignore them."""
    from modality_tokenizers.raw import to_numpy

    rows = _rows(ids)
    if spec.kind == "text":
        return tokenizer.decode([r.tolist() for r in rows])
    if spec.kind == "image_seq":  # rows may differ in length (1..max_tokens)
        batch = tokenizer.decode(rows, steps=steps, guidance_scale=guidance_scale, generator=generator)
    else:
        batch = tokenizer.decode(torch.stack(rows))
    if spec.data == "class_map":
        return [x.astype(np.int64) for x in to_numpy(spec.data, batch)]
    if spec.data == "depth_map":
        return [x.astype(np.float32) for x in to_numpy(spec.data, batch)]
    return [x.float().cpu().numpy() for x in batch]  # image_rgb / normal_map (3, H, W), channels first


# ----------------------------------------------------------------------------- showing and saving

def preview_image(spec: ModalitySpec, value: Any) -> np.ndarray:
    """A raw value -> uint8 (H, W, 3) for display: RGB, colourised depth / classes / normals, or a text tile."""
    from fourm import visuals

    if spec.data == "image_rgb":
        return visuals.rgb_to_uint8(value)
    if spec.data == "depth_map":
        return visuals.colorize_depth(value)
    if spec.data == "class_map":
        return visuals.colorize_classes(value, palette=spec.palette or None)
    if spec.data == "normal_map":
        return visuals.normals_to_rgb(value, channels_first=True)
    return visuals.text_tile(str(value), (128, 128))


def _atomic(path: Path, write) -> Path:
    """Write through `write(tmp_path)` under a temporary name, then rename into place."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def _save_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    return _atomic(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def save_npy(path: Path, array: np.ndarray) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    return _atomic(path, write)


def save_output(out_dir: str | os.PathLike, key: str, spec: ModalitySpec, value: Any) -> list[Path]:
    """Write one decoded value: <key>.<name>.png for RGB; .png (colourised) + .npy (raw array) for
    depth / classes / normals; .txt for text. Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{Path(key).name}.{spec.name}"
    if spec.data == "text":
        return [_atomic(Path(f"{stem}.txt"), lambda tmp: tmp.write_text(str(value) + "\n", encoding="utf-8"))]
    paths = [_save_png(Path(f"{stem}.png"), preview_image(spec, value))]
    if spec.data != "image_rgb":
        paths.append(save_npy(Path(f"{stem}.npy"), np.asarray(value)))
    return paths


# ----------------------------------------------------------------------------- condition files

def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(img).astype(np.uint16)
            if img.mode not in ("L", "P", "RGB", "RGBA"):
                img = img.convert("RGB")
            return np.asarray(img)
    except OSError as err:
        raise ValueError(f"{path}: cannot read the image ({err})") from err


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the .npy file ({err})") from err


def _raw_value(spec: ModalitySpec, path: Path) -> Any:
    """A raw file -> one sample in the shard convention of spec.data (what `raw.to_tensor` takes)."""
    suffix = path.suffix.lower()
    want = f"condition '{spec.name}' ({spec.data})"
    if spec.data == "text":
        if suffix != ".txt":
            raise ValueError(f"{path}: {want} needs a .txt file")
        return path.read_text(encoding="utf-8").strip()
    if suffix in IMAGE_SUFFIXES:
        x = _read_png(path)
    elif suffix == ".npy":
        x = _read_npy(path)
    else:
        raise ValueError(f"{path}: {want} needs a .png/.jpg or .npy file, not '{suffix}'")
    return _check_raw(spec, path, x, suffix)


def _check_raw(spec: ModalitySpec, path: Path, x: np.ndarray, suffix: str) -> np.ndarray:
    data = spec.data
    if data == "image_rgb":
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=-1)
        if x.ndim != 3 or x.shape[-1] not in (3, 4) or x.dtype != np.uint8:
            raise ValueError(f"{path}: expected an 8-bit RGB image, got {x.dtype} {x.shape}")
        return x[..., :3]
    if data == "depth_map":
        if suffix == ".npy" and (x.ndim != 2 or not np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"{path}: expected float depth in metres of shape (H, W), got {x.dtype} {x.shape}")
        if suffix != ".npy" and (x.ndim != 2 or x.dtype != np.uint16):
            raise ValueError(f"{path}: a depth PNG must be 16-bit single channel (millimetres), got {x.dtype} {x.shape}")
        return x.astype(np.float32) if suffix == ".npy" else x.astype(np.float32) / DEPTH_PNG_SCALE
    if data == "class_map":
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{path}: expected an integer class map of shape (H, W), got {x.dtype} {x.shape}")
        return x.astype(np.int64)
    if data == "normal_map":
        png_ok = suffix != ".npy" and x.ndim == 3 and x.shape[-1] == 3 and x.dtype == np.uint8
        npy_ok = suffix == ".npy" and x.ndim == 3 and x.shape[-1] == 3 and np.issubdtype(x.dtype, np.floating)
        if not (png_ok or npy_ok):
            raise ValueError(f"{path}: expected normals as an 8-bit RGB PNG (n*127.5+127.5) or float .npy (H, W, 3), "
                             f"got {x.dtype} {x.shape}")
        return x
    raise ValueError(f"{path}: unknown raw data kind {data!r}")


def _check_size(spec: ModalitySpec, path: Path, value: np.ndarray, size: Optional[int]) -> None:
    h, w = value.shape[:2]
    if size is None:
        return
    if spec.data == "image_rgb":
        if h != w:
            raise ValueError(f"{path}: {w}x{h} image, but '{spec.name}' needs a square image (it is resized to {size}x{size})")
    elif (h, w) != (size, size):
        raise ValueError(f"{path}: {w}x{h} map, but the '{spec.name}' tokenizer expects {size}x{size}")


def _token_ids_file(spec: ModalitySpec, path: Path, ids: np.ndarray) -> np.ndarray:
    if spec.kind == "image_patches":
        raise ValueError(f"{path}: '{spec.name}' takes an image file (pixel patches), not token ids")
    if spec.kind == "image_grid" and ids.size != spec.max_tokens:
        raise ValueError(f"{path}: {ids.size} token ids, but '{spec.name}' has a grid of {spec.max_tokens}")
    if not 1 <= ids.size <= spec.max_tokens:
        raise ValueError(f"{path}: {ids.size} token ids, outside 1..{spec.max_tokens} for '{spec.name}'")
    if int(ids.min()) < 0 or int(ids.max()) >= spec.vocab_size:
        raise ValueError(f"{path}: token ids outside 0..{spec.vocab_size - 1} for '{spec.name}'")
    return ids.astype(np.int64)


@torch.no_grad()
def encode_condition_file(spec: ModalitySpec, tokenizer: Any, path: str | os.PathLike) -> np.ndarray:
    """A raw file (or a 1D integer .npy of token ids) -> 1D int64 token ids of one sample.
    Errors name the file and what was expected (see the module docstring for the formats)."""
    from modality_tokenizers.raw import to_tensor

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: condition file for '{spec.name}' not found")
    if path.suffix.lower() == ".npy":
        arr = _read_npy(path)
        if arr.ndim == 1:
            if not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"{path}: a 1D .npy must hold integer token ids, got {arr.dtype}")
            return _token_ids_file(spec, path, arr)
    value = _raw_value(spec, path)
    if spec.data == "text":
        if not value:
            raise ValueError(f"{path}: the text is empty")
        ids = np.asarray(tokenizer.encode_text(value), dtype=np.int64)
        if ids.size > spec.max_tokens:
            raise ValueError(f"{path}: {ids.size} tokens, more than the {spec.max_tokens} of '{spec.name}'")
        return ids
    size = expected_size(tokenizer)
    _check_size(spec, path, value, size)
    batch = to_tensor(spec.data, [value])  # (1, C, H, W) or (1, H, W)
    if spec.data == "image_rgb" and size and batch.shape[-1] != size:
        import torch.nn.functional as F

        batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    ids = tokenizer.encode(batch)  # (1, N)
    return np.asarray(ids.detach().cpu() if hasattr(ids, "detach") else ids, dtype=np.int64).reshape(-1)
