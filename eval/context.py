"""What every evaluator gets besides the model: the config, the raw samples with ground truth,
the modality tokenizers, a seeded generator, the output folder, and helpers to encode raw
conditions into token ids and to pick the decoding settings of a generated modality."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch

from eval.config import EvalConfig
from fourm.modalities import ModalitySpec


def raw_key(spec: ModalitySpec) -> str:
    """The name `fourm.shards` gives this modality's raw file: 'semseg.png' -> 'semseg'."""
    return spec.raw_ext.rsplit(".", 1)[0]


def read_samples(source: str, max_samples: Optional[int]) -> tuple[list[dict], dict]:
    """The first `max_samples` raw samples of `source` (decoded, see `fourm.shards`) and the
    shards' manifest.json ({} if there is none)."""
    from fourm.paths import resolve
    from fourm.shards import find_manifest, iter_samples, list_shards

    shards = list_shards(resolve(source))
    samples = []
    for sample in iter_samples(shards, image_size=None):
        if max_samples is not None and len(samples) >= max_samples:
            break
        samples.append(sample)
    if not samples:
        raise ValueError(f"{source}: no samples")
    return samples, find_manifest(shards[0]) or {}


@torch.no_grad()
def encode_values(spec: ModalitySpec, tokenizer: Any, values: Sequence) -> torch.Tensor:
    """Raw values of one modality -> token ids (B, N): text word ids padded with [PAD] = 0,
    images through the modality's tokenizer (RGB resized to the tokenizer's size if it differs)."""
    from fourm.generation.outputs import expected_size
    from fourm.generation.shards import pad_rows
    from modality_tokenizers.raw import to_tensor

    if spec.kind == "text":
        return pad_rows([tokenizer.encode_text(str(v).strip())[: spec.max_tokens] for v in values])
    x = to_tensor(spec.data, values)
    size = expected_size(tokenizer)
    if spec.data == "image_rgb" and size and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    ids = torch.as_tensor(tokenizer.encode(x)).long().cpu()
    return ids.reshape(ids.shape[0], -1)  # (B, N); pixel patches flat (B, N * values)


@dataclass
class EvalContext:
    cfg: EvalConfig
    samples: list[dict]
    manifest: dict
    tokenizers: dict[str, Any]
    out_dir: Path
    device: str = "cpu"
    target_spec: Optional[ModalitySpec] = None  # the evaluated modality (from the registry if the model lacks it)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (png path, caption) for the report

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.cfg.seed)

    def batches(self, samples: Optional[Sequence[dict]] = None) -> Iterator[list[dict]]:
        samples = self.samples if samples is None else samples
        for start in range(0, len(samples), self.cfg.batch_size):
            yield list(samples[start:start + self.cfg.batch_size])

    def values(self, batch: Sequence[dict], spec: ModalitySpec) -> list:
        """The raw ground truth of `spec` in each sample; a clear error if a sample lacks it."""
        key = raw_key(spec)
        missing = [s.get("__key__", "?") for s in batch if key not in s]
        if missing:
            raise ValueError(f"{self.cfg.data}: sample {missing[0]} has no '{spec.raw_ext}' (needed for '{spec.name}')")
        return [s[key] for s in batch]

    def ground_truth(self, batch: Sequence[dict], spec: ModalitySpec) -> torch.Tensor:
        """Raw values as a batch tensor in the `modality_tokenizers.raw` convention."""
        from modality_tokenizers.raw import to_tensor

        return to_tensor(spec.data, self.values(batch, spec))

    def encode(self, batch: Sequence[dict], spec: ModalitySpec) -> torch.Tensor:
        """Token ids (B, N) of a condition (see `encode_values`)."""
        return encode_values(spec, self.tokenizers[spec.name], self.values(batch, spec))

    def conditions(self, batch: Sequence[dict], model, names: Sequence[str]) -> dict[str, torch.Tensor]:
        return {n: self.encode(batch, model.config.spec(n)).to(self.device) for n in names}

    def target_config(self, model, name: str):
        """Decoding settings of `name`: the config's `generation` entry, else greedy: one parallel
        argmax pass (greedy MaskGIT over several steps fills objects with the confident background),
        autoregressive for causally decoded modalities."""
        from fourm.generation_config import TargetConfig

        for t in self.cfg.generation:
            if t.modality == name:
                return t
        if model.embeddings[name].causal:
            return TargetConfig(name, scheme="autoregressive", temperature=0.0)
        return TargetConfig(name, scheme="maskgit", steps=1, temperature=0.0)

    def decode(self, spec: ModalitySpec, ids) -> list:
        from fourm.generation.outputs import decode_tokens

        return decode_tokens(spec, self.tokenizers[spec.name], ids, steps=self.cfg.decode_steps,
                             guidance_scale=self.cfg.decode_guidance, generator=self.generator)

    def class_names(self, spec: ModalitySpec) -> list[str]:
        """Class names from the data's manifest, else 'class i' for the tokenizer's classes."""
        names = self.manifest.get("class_names")
        if names:
            return list(names)
        tok = self.tokenizers.get(spec.name)
        n = getattr(getattr(tok, "config", None), "num_classes", 0)
        if not n:
            raise ValueError(f"{self.cfg.data}: no manifest.json with class_names, and no class count in the '{spec.name}' tokenizer")
        return [f"class {i}" for i in range(n)]

    def add_figure(self, path: Path, caption: str) -> None:
        self.figures.append((str(path), caption))


def stack_decoded(data: str, values: Sequence, like: torch.Tensor) -> torch.Tensor:
    """Decoded raw values -> a batch tensor shaped like the ground truth `like` (class maps
    (B, H, W), depth (B, 1, H, W), normals / rgb (B, 3, H, W)); resized to its size (nearest for
    classes and depth) if the tokenizer works at another resolution."""
    import torch.nn.functional as F

    x = torch.from_numpy(np.stack([np.asarray(v) for v in values]))
    if data == "depth_map":
        x = x.float()[:, None]
    elif data == "class_map":
        x = x.long()
    else:
        x = x.float()
    if tuple(x.shape[-2:]) != tuple(like.shape[-2:]):
        size = tuple(like.shape[-2:])
        if data == "class_map":
            x = F.interpolate(x[:, None].float(), size=size, mode="nearest")[:, 0].long()
        else:
            x = F.interpolate(x, size=size, mode="nearest" if data == "depth_map" else "bilinear")
    return x
