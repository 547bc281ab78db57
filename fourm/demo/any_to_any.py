"""The any-to-any tab's work: condition files -> token ids -> chained generation -> decoded,
previewed and saved outputs.

    cfg = settings_yaml.to_config(data, session.specs)
    outputs = run(session, {"caption": Path("cap.txt")}, cfg, flextok_steps=25, flextok_guidance=1.0)
    outputs[0].preview   # uint8 (H, W, 3); .text for text targets; .files to download
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

Progress = Optional[Callable[[float, str], None]]


@dataclass
class Output:
    """One generated target: preview uint8 (H, W, 3), text (text targets), legend (class maps and
    depth, else None), files written for download (PNG, raw .npy, .txt)."""

    name: str
    preview: np.ndarray
    text: Optional[str]
    legend: Optional[np.ndarray]
    files: list[Path]


def encode_conditions(session, files: Mapping[str, Path], cfg) -> dict:
    """{name: (1, N) int64} for every condition of cfg, each from its file (errors name the file)."""
    import torch

    from fourm.generation.outputs import encode_condition_file

    missing = [c.modality for c in cfg.conditions if c.modality not in files]
    if missing:
        raise ValueError(f"condition '{missing[0]}': no file given")
    inputs = {}
    for c in cfg.conditions:
        ids = encode_condition_file(session.specs[c.modality], session.tokenizer(c.modality), files[c.modality])
        inputs[c.modality] = torch.as_tensor(ids, dtype=torch.long)[None]  # (1, N)
    return inputs


def decode_output(session, name: str, ids, folder: Path, flextok_steps: int, flextok_guidance: float, seed: int) -> Output:
    import torch

    from fourm.demo.legends import legend_for
    from fourm.generation.outputs import decode_tokens, preview_image, save_output

    spec = session.specs[name]
    generator = torch.Generator().manual_seed(seed)
    (value,) = decode_tokens(spec, session.tokenizer(name), ids, steps=flextok_steps,
                             guidance_scale=flextok_guidance, generator=generator)
    files = save_output(folder, "demo", spec, value)
    text = str(value) if spec.kind == "text" else None
    return Output(name, preview_image(spec, value), text, legend_for(spec, value, session.class_names), files)


def run(session, files: Mapping[str, Path], cfg, flextok_steps: int = 25, flextok_guidance: float = 1.0,
        progress: Progress = None) -> list[Output]:
    """Generate cfg's targets in order from the condition files; decode and save each."""
    import torch

    from fourm.generation.chain import generate_chain

    if flextok_steps < 1 or flextok_guidance < 0:
        raise ValueError(f"FlexTok decoding needs steps >= 1 and guidance >= 0 (got {flextok_steps}, {flextok_guidance})")
    for t in cfg.targets:
        session.tokenizer(t.modality)  # every target decodable: checked before any model work
    report = progress or (lambda fraction, message: None)
    report(0.0, "tokenizing the conditions")
    inputs = encode_conditions(session, files, cfg)
    report(0.2, f"generating {', '.join(t.modality for t in cfg.targets)}")
    generated = generate_chain(session.model, cfg, inputs, torch.Generator().manual_seed(cfg.seed))
    folder = session.new_folder("generate")
    outputs = []
    for i, t in enumerate(cfg.targets):
        report(0.6 + 0.4 * i / len(cfg.targets), f"decoding {t.modality}")
        outputs.append(decode_output(session, t.modality, generated[t.modality], folder, flextok_steps,
                                     flextok_guidance, cfg.seed))
    return outputs
