"""A micro demo checkpoint with random weights, for tests and for trying the demo without training:
a 16x16 scenes val split, micro tokenizers (FlexTok 8 tokens, depth / segmentation grids 4x4,
BPE captions) and a micro FourM over them, each saved the way training saves it.

    ckpt, samples = build_micro_checkpoint("tmp/demo_micro")   # then: fourm demo --checkpoint ckpt --samples samples
"""
from __future__ import annotations

from pathlib import Path

RESOLUTION = 16
SCENE_CLASSES = 6  # background, floor, sphere, cube, cylinder, cone


def _grid_tokenizer(data: str, num_classes: int = 0):
    from modality_tokenizers.grid import GridTokenizer

    cfg = GridTokenizer.Config(data=data, image_size=RESOLUTION, patch_size=4, width=32, depth=1, heads=2,
                               stem_channels=8, levels=(4, 4, 3), num_classes=num_classes,
                               depth_log_mean=1.5, depth_log_std=0.5)
    return GridTokenizer(cfg).eval()


def _flextok(seed: int):
    """Micro FlexTok with every weight random: its zero-initialised projection to FSQ would give
    every image the same tokens, and the demo should show tokens that depend on the image."""
    import torch

    from modality_tokenizers.flextok import FlexTok, preset

    model = FlexTok(preset("micro"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def _text_tokenizer(samples_dir: Path):
    from fourm.shards import iter_samples, list_shards
    from modality_tokenizers.text import TextTokenizer

    captions = [s["caption"] for s in iter_samples(list_shards(str(samples_dir)), modalities=["caption"])]
    return TextTokenizer.fit(captions, TextTokenizer.Config(vocab_size=300, max_tokens=128, num_sentinels=16))


def build_micro_checkpoint(folder: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write data/, tokenizers/<name>/ and model/ under `folder`; returns (model dir, val shard dir).
    Takes a few seconds on one CPU core."""
    import torch

    from fourm.datasets.scenes.generate import generate_scenes
    from fourm.modalities import ModalitySpec
    from fourm.model import FourM, preset_config

    folder = Path(folder)
    generate_scenes(folder / "data", n=4, n_val=6, resolution=RESOLUTION, seed=seed, progress=False)
    samples_dir = folder / "data" / "val"
    torch.manual_seed(seed)
    tokenizers = {
        "rgb": _flextok(seed),
        "caption": _text_tokenizer(samples_dir),
        "depth": _grid_tokenizer("depth_map"),
        "semseg": _grid_tokenizer("class_map", SCENE_CLASSES),
    }
    raw = {"rgb": ("image_seq", "image_rgb", "rgb.png"), "caption": ("text", "text", "caption.txt"),
           "depth": ("image_grid", "depth_map", "depth.npy"), "semseg": ("image_grid", "class_map", "semseg.png")}
    specs = []
    for name, tok in tokenizers.items():
        tok_dir = folder / "tokenizers" / name
        tok.save_pretrained(tok_dir)
        kind, data, ext = raw[name]
        grid = tuple(tok.grid_size) if kind == "image_grid" else None
        specs.append(ModalitySpec(name, kind, data, tok.vocab_size, tok.max_tokens, ext, str(tok_dir.resolve()), grid_size=grid))
    model_dir = folder / "model"
    FourM(preset_config("micro", specs)).save_pretrained(model_dir)
    return model_dir, samples_dir
