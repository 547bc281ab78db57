"""Run a GenerationConfig over token shards and write the outputs, one file per sample and target:

    <out>/<key>.<name>.npy     generated token ids (int32)
    <out>/<key>.<name>.txt     decoded text, for text targets

Conditions with `source: input` come from the shard sample; any other source is a token file
(.npy ids, or .txt text) used for every sample. Decoding image tokens to PNGs is not done here yet.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from fourm.generation.chain import generate_chain
from fourm.generation.generate import TEXT_PAD_ID

log = logging.getLogger(__name__)


def pad_rows(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Ragged id lists -> (B, L) long, [PAD] = 0 on the right."""
    out = torch.full((len(rows), max(1, max((len(r) for r in rows), default=1))), TEXT_PAD_ID, dtype=torch.long)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.as_tensor(np.asarray(row, dtype=np.int64))
    return out


def load_source(spec, path: str, text_tokenizer: Any = None) -> list:
    """A condition file -> one sample's ids (a list for text, a 1D array for images)."""
    from fourm.paths import resolve

    p = resolve(path)
    if not p.is_file():
        raise FileNotFoundError(f"condition '{spec.name}': source file {path} not found")
    if spec.kind == "text":
        if text_tokenizer is None:
            raise ValueError(f"condition '{spec.name}': a text source needs the modality's tokenizer")
        return text_tokenizer.encode_text(p.read_text().strip())
    if p.suffix != ".npy":
        raise ValueError(f"condition '{spec.name}': source {path} must be a .npy file of token ids")
    ids = np.load(p, allow_pickle=False)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"condition '{spec.name}': {path} holds {ids.dtype} {ids.shape}, expected 1D integer token ids")
    return ids


def batches(samples: Iterator[dict], size: int, limit: Optional[int]) -> Iterator[list[dict]]:
    chunk, count = [], 0
    for sample in samples:
        if limit is not None and count >= limit:
            break
        chunk.append(sample)
        count += 1
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_outputs(out_dir: Path, keys: Sequence[str], outputs: Mapping[str, torch.Tensor], specs: Mapping,
                  text_tokenizers: Mapping[str, Any]) -> None:
    for name, ids in outputs.items():
        rows = ids.cpu().numpy().astype(np.int32)  # (B, N)
        texts = text_tokenizers[name].decode(rows.tolist()) if specs[name].kind == "text" and name in text_tokenizers else None
        for b, key in enumerate(keys):
            stem = out_dir / Path(key).name
            np.save(f"{stem}.{name}.npy", rows[b])
            if texts is not None:
                Path(f"{stem}.{name}.txt").write_text(texts[b] + "\n")


def generate_from_shards(model, cfg, input_shards: str, out_dir: str | Path, text_tokenizers: Mapping[str, Any],
                         limit: Optional[int] = None, device: str = "cpu") -> int:
    """Generate every target of `cfg` for the samples of `input_shards`; returns the sample count."""
    from fourm.data import SampleReader
    from fourm.shards import list_shards

    specs = {m.name: m for m in model.config.modalities}
    from_input = [specs[c.modality] for c in cfg.conditions if c.source == "input"]
    fixed = {c.modality: load_source(specs[c.modality], c.source, text_tokenizers.get(c.modality))
             for c in cfg.conditions if c.source != "input"}
    reader = SampleReader(from_input, text_tokenizers, on_error="raise")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    done = 0
    for chunk in batches(reader.samples(list_shards(input_shards)), cfg.batch_size, limit):
        missing = [s.name for s in from_input for x in chunk if s.name not in x]
        if missing:
            raise ValueError(f"sample '{chunk[0]['__key__']}' has no '{missing[0]}' to condition on")
        inputs = {c.modality: pad_rows([x[c.modality] if c.source == "input" else fixed[c.modality] for x in chunk])
                  for c in cfg.conditions}
        outputs = generate_chain(model, cfg, inputs, generator)
        write_outputs(out_dir, [x["__key__"] for x in chunk], outputs, specs, text_tokenizers)
        done += len(chunk)
        log.info("generated %d samples", done)
    return done
