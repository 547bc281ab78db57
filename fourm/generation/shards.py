"""Run a GenerationConfig over token shards (batch mode) or over condition files (one sample),
and write the outputs, per sample and target:

    <out>/<key>.tok_<name>.npy   generated token ids (int32; image_seq 'auto': k ids)
    <out>/<key>.<name>.png       decoded RGB, or colourised depth / classes / normals
    <out>/<key>.<name>.npy       the raw decoded array of depth / classes / normals
    <out>/<key>.<name>.txt       decoded text
(`decode=False`: token ids only.) Decoding is fourm.generation.outputs; FlexTok targets use
the target's decode_steps / decode_guidance.

Conditions with `source: input` come from the shard sample (or, for one sample, the file given
for them); any other source is a file used for every sample: raw data (PNG, depth .npy, caption
.txt, ...) is tokenized with the modality's tokenizer, a 1D integer .npy is taken as token ids
(fourm.generation.outputs.encode_condition_file).
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


def needs_tokenizer(path: str | Path) -> bool:
    """False only for a 1D .npy of token ids, which is used as it is."""
    from fourm.paths import resolve

    p = resolve(path)
    if p.suffix.lower() != ".npy" or not p.is_file():
        return True
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False).ndim != 1
    except (OSError, ValueError):
        return True  # unreadable: encode_condition_file names the file


def encode_sources(specs: Mapping, files: Mapping[str, str], tokenizers: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{condition: file} -> {condition: 1D int64 ids}, every file checked (before any model work)."""
    from fourm.generation.outputs import encode_condition_file
    from fourm.paths import resolve

    return {name: encode_condition_file(specs[name], tokenizers.get(name), resolve(path)) for name, path in files.items()}


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


def write_outputs(out_dir: Path, keys: Sequence[str], outputs: Mapping[str, Any], specs: Mapping, cfg,
                  tokenizers: Mapping[str, Any], decode: bool = True, generator: Optional[torch.Generator] = None) -> None:
    """Token ids of every target, and with `decode` the decoded files (see the module docstring)."""
    from fourm.generation.outputs import decode_tokens, save_npy, save_output

    targets = {t.modality: t for t in cfg.targets}
    for name, ids in outputs.items():
        rows = [r.cpu().numpy().astype(np.int32) for r in (ids.unbind(0) if isinstance(ids, torch.Tensor) else ids)]
        for key, row in zip(keys, rows):
            save_npy(out_dir / f"{Path(key).name}.tok_{name}.npy", row)
        if not decode:
            continue
        t = targets[name]
        values = decode_tokens(specs[name], tokenizers[name], ids, steps=t.decode_steps, guidance_scale=t.decode_guidance,
                               generator=generator)
        for key, value in zip(keys, values):
            save_output(out_dir, key, specs[name], value)


def _generators(cfg, device: str) -> tuple[torch.Generator, torch.Generator]:
    """Token sampling and FlexTok decoding noise, both from the config's seed."""
    return torch.Generator(device=device).manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + 1)


def generate_from_shards(model, cfg, input_shards: str, out_dir: str | Path, tokenizers: Mapping[str, Any],
                         limit: Optional[int] = None, device: str = "cpu", decode: bool = True) -> int:
    """Generate every target of `cfg` for the samples of `input_shards`; returns the sample count.
    `tokenizers`: text conditions, file sources, and (with `decode` or num_tokens auto) the targets."""
    from fourm.data import SampleReader
    from fourm.shards import list_shards

    specs = {m.name: m for m in model.config.modalities}
    from_input = [specs[c.modality] for c in cfg.conditions if c.source == "input"]
    fixed = encode_sources(specs, {c.modality: c.source for c in cfg.conditions if c.source != "input"}, tokenizers)
    reader = SampleReader(from_input, {n: t for n, t in tokenizers.items() if specs[n].kind == "text"}, on_error="raise")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator, decode_generator = _generators(cfg, device)
    done = 0
    for chunk in batches(reader.samples(list_shards(input_shards)), cfg.batch_size, limit):
        missing = [s.name for s in from_input for x in chunk if s.name not in x]
        if missing:
            raise ValueError(f"sample '{chunk[0]['__key__']}' has no '{missing[0]}' to condition on")
        inputs = {c.modality: pad_rows([x[c.modality] if c.source == "input" else fixed[c.modality] for x in chunk])
                  for c in cfg.conditions}
        outputs = generate_chain(model, cfg, inputs, generator, tokenizers)
        write_outputs(out_dir, [x["__key__"] for x in chunk], outputs, specs, cfg, tokenizers, decode, decode_generator)
        done += len(chunk)
        log.info("generated %d samples", done)
    return done


def condition_files(cfg, given: Mapping[str, str], raw_exts: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """{condition: file} for one sample: `given` (e.g. --condition caption=cap.txt) fills the
    `source: input` conditions; other conditions keep their configured file. With `raw_exts`
    ({modality: raw_ext}), a `source: input` condition that was not given takes the file given
    for a modality stored in the same raw file (rgb and rgb_grid both tokenize <key>.rgb.png)."""
    names = [c.modality for c in cfg.conditions]
    extra = [n for n in given if n not in names]
    if extra:
        raise ValueError(f"--condition {extra[0]}: not a condition of this config (conditions: {', '.join(names) or 'none'})")
    raw_exts = raw_exts or {}
    by_raw_file = {raw_exts[n]: f for n, f in given.items() if n in raw_exts}  # raw_ext -> a given file
    files = {}
    for c in cfg.conditions:
        if c.modality in given:
            files[c.modality] = given[c.modality]
        elif c.source == "input" and raw_exts.get(c.modality) in by_raw_file:
            files[c.modality] = by_raw_file[raw_exts[c.modality]]
        elif c.source == "input":
            raise ValueError(f"condition '{c.modality}' has source input: give it as --condition {c.modality}=FILE")
        else:
            files[c.modality] = c.source
    return files


def generate_from_files(model, cfg, files: Mapping[str, np.ndarray], out_dir: str | Path, tokenizers: Mapping[str, Any],
                        key: str = "sample", device: str = "cpu", decode: bool = True) -> dict:
    """One sample from already encoded condition files ({condition: 1D ids}, `encode_sources`);
    writes <out>/<key>.* and returns the chain's outputs."""
    specs = {m.name: m for m in model.config.modalities}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator, decode_generator = _generators(cfg, device)
    inputs = {name: pad_rows([ids]) for name, ids in files.items()}
    outputs = generate_chain(model, cfg, inputs, generator, tokenizers)
    write_outputs(out_dir, [key], outputs, specs, cfg, tokenizers, decode, decode_generator)
    return outputs
