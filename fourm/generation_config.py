"""GenerationConfig: one YAML under configs/generate/ = one chained any-to-any generation.

    cfg = load_generation_config("configs/generate/caption_to_rgb.yaml")   # checked against the registry

Conditions come from the input sample (`source: input`) or a file (`source: cap.txt`, a PNG, a
depth .npy, or a 1D .npy of token ids; see fourm.generation.outputs.encode_condition_file).
Targets are generated in order; each generated target joins the conditions of later targets
(`condition_on` narrows what a target sees). Every mistake (unknown modality, bad scheme, a token
count outside 1..256 or above the modality's max_tokens) is a `ConfigError` naming file and key,
raised before any model is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence, Union

from fourm.config import ConfigError, from_dict, read_yaml, apply_overrides

MAX_RGB_TOKENS = 256  # FlexTok: 1..256 ordered tokens per image


@dataclass(frozen=True)
class ConditionConfig:
    """modality: registry name. source: 'input' (the input sample's file of that modality, or the
    file given with `fourm generate --condition NAME=FILE`) or a path used for every sample: raw
    data (RGB PNG/JPG, depth .npy or 16-bit PNG, class map, normals PNG, .txt for text) or a 1D
    .npy of token ids."""

    modality: str
    source: str = "input"


@dataclass(frozen=True)
class TargetConfig:
    """One generated modality.

    scheme:        maskgit (confidence-ranked parallel), roar (random order, several tokens per
                   step) or autoregressive (left to right; KV cache for causally decoded kinds)
    steps:         decoding steps of maskgit / roar (capped at the token count)
    num_tokens:    tokens to generate: for image_seq (FlexTok RGB) 1..256, coarse to fine; for
                   text the longest caption; default the modality's max_tokens. 'auto' (image_seq
                   only): generate left to right and, at each power of two n = 2k, decode the
                   first k and the first 2k tokens with FlexTok; a sample stops at k once the two
                   images agree to auto_psnr dB (PSNR(decode(k), decode(2k)) >= auto_psnr), else it
                   gets all max_tokens (fourm.generation.adaptive)
    auto_psnr:     the agreement threshold of num_tokens 'auto', in dB
    decode_steps:  FlexTok decoding (image_seq targets): Euler steps of the flow decoder
                   (None: the tokenizer's sample_steps); other kinds ignore it
    decode_guidance: FlexTok decoding guidance scale (None: the tokenizer's default; 1 = none)
    temperature:   0 = greedy; temperature_schedule decays it to 0 over the steps (linear|cosine)
    token_schedule: fraction of tokens decoded per step for maskgit / roar (cosine|linear)
    top_k, top_p:  sampling filters (0 / 1.0 = off)
    choice_temperature: maskgit only: Gumbel noise on the confidence ranking, decaying to 0 over
                   the steps (0 = the most confident positions first, always)
    cfg_scale:     classifier-free guidance scale (1 = none); cfg_weights: per-condition scales
    cfg_schedule:  constant, or decay every guidance scale to 1 over the steps (linear|cosine):
                   guidance fixes what the first tokens show without pushing the last ones
    condition_on:  conditions this target sees (default: all conditions and earlier targets)
    use_cache:     decode causal targets with the decoder KV cache (False: full re-runs, for checks)
    """

    modality: str
    scheme: Literal["maskgit", "roar", "autoregressive"] = "maskgit"
    steps: int = 8
    num_tokens: Union[int, Literal["auto"], None] = None
    temperature: float = 1.0
    temperature_schedule: Literal["constant", "linear", "cosine"] = "constant"
    token_schedule: Literal["cosine", "linear"] = "cosine"
    top_k: int = 0
    top_p: float = 1.0
    choice_temperature: float = 0.0
    cfg_scale: float = 1.0
    cfg_weights: dict[str, float] = field(default_factory=dict)
    cfg_schedule: Literal["constant", "linear", "cosine"] = "constant"
    condition_on: tuple[str, ...] = ()
    use_cache: bool = True
    auto_psnr: float = 30.0
    decode_steps: Optional[int] = None
    decode_guidance: Optional[float] = None

    def __post_init__(self) -> None:
        fixed = self.num_tokens if isinstance(self.num_tokens, int) else None
        checks = [
            (self.steps >= 1, "steps", f"must be >= 1, got {self.steps}"),
            (fixed is None or 1 <= fixed <= MAX_RGB_TOKENS, "num_tokens",
             f"{self.num_tokens} is outside 1..{MAX_RGB_TOKENS}"),
            (self.auto_psnr > 0, "auto_psnr", f"must be > 0 dB, got {self.auto_psnr}"),
            (self.decode_steps is None or self.decode_steps >= 1, "decode_steps", f"must be >= 1, got {self.decode_steps}"),
            (self.decode_guidance is None or self.decode_guidance >= 0, "decode_guidance",
             f"must be >= 0, got {self.decode_guidance}"),
            (self.temperature >= 0, "temperature", f"must be >= 0, got {self.temperature}"),
            (self.top_k >= 0, "top_k", f"must be >= 0 (0 = off), got {self.top_k}"),
            (0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p}"),
            (self.choice_temperature >= 0, "choice_temperature", f"must be >= 0, got {self.choice_temperature}"),
            (self.cfg_scale >= 0, "cfg_scale", f"must be >= 0, got {self.cfg_scale}"),
        ]
        for ok, key, message in checks:
            if not ok:
                raise ValueError(f"{key}: {message}")


@dataclass(frozen=True)
class GenerationConfig:
    """conditions -> targets, in order. model: FourM checkpoint folder. seed: of the generator.
    batch_size: samples generated at once. output_dir: where decoded outputs are written."""

    targets: tuple[TargetConfig, ...]
    conditions: tuple[ConditionConfig, ...] = ()
    model: str = "runs/fourm_tiny"
    seed: int = 0
    batch_size: int = 4
    output_dir: str = "runs/generate"

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("targets: at least one target is needed")
        if self.batch_size < 1:
            raise ValueError(f"key 'batch_size': must be >= 1, got {self.batch_size}")
        seen = []
        for i, c in enumerate(self.conditions):
            if c.modality in seen:
                raise ValueError(f"key 'conditions[{i}].modality': '{c.modality}' is listed twice")
            seen.append(c.modality)
        for i, t in enumerate(self.targets):
            if t.modality in seen:
                raise ValueError(f"key 'targets[{i}].modality': '{t.modality}' is already a condition or an earlier target")
            for key, names in (("condition_on", t.condition_on), ("cfg_weights", tuple(t.cfg_weights))):
                bad = [n for n in names if n not in seen]
                if bad:
                    raise ValueError(f"key 'targets[{i}].{key}': '{bad[0]}' is not a condition or earlier target "
                                     f"(available: {', '.join(seen) or 'none'})")
            seen.append(t.modality)

    def conditions_of(self, index: int) -> tuple[str, ...]:
        """Names target `index` is conditioned on."""
        t = self.targets[index]
        available = [c.modality for c in self.conditions] + [p.modality for p in self.targets[:index]]
        return tuple(n for n in available if not t.condition_on or n in t.condition_on)


def check_modalities(cfg: GenerationConfig, specs: Sequence, source: str = "<generation config>") -> None:
    """Check modality names, schemes and token counts against the registry specs (ModalitySpec list)."""
    by_name = {s.name: s for s in specs}
    entries = [(f"conditions[{i}]", c.modality, None) for i, c in enumerate(cfg.conditions)]
    entries += [(f"targets[{i}]", t.modality, t) for i, t in enumerate(cfg.targets)]
    for key, name, target in entries:
        if name not in by_name:
            raise ConfigError(f"{source}: key '{key}.modality': unknown modality '{name}' (known: {', '.join(by_name)})")
        if target is not None:
            _check_target(by_name[name], target, f"{source}: key '{key}")


def _check_target(spec, target: TargetConfig, where: str) -> None:
    if spec.kind == "image_patches":
        raise ConfigError(f"{where}.modality': '{spec.name}' is image_patches, an encoder input only; it cannot be a target")
    if spec.kind == "text" and target.scheme != "autoregressive":
        raise ConfigError(f"{where}.scheme': text ('{spec.name}') is decoded causally; use autoregressive, not {target.scheme}")
    n = target.num_tokens
    if n is None:
        return
    if spec.kind == "image_grid":
        raise ConfigError(f"{where}.num_tokens': '{spec.name}' is a token grid of fixed size {spec.max_tokens}; leave num_tokens out")
    if n == "auto":
        if spec.kind != "image_seq":
            raise ConfigError(f"{where}.num_tokens': 'auto' needs an ordered image_seq target, '{spec.name}' is {spec.kind}")
        if target.scheme != "autoregressive":
            raise ConfigError(f"{where}.num_tokens': 'auto' grows the sequence left to right: use scheme autoregressive, not {target.scheme}")
        return
    if spec.kind == "image_seq" and n > spec.max_tokens:
        raise ConfigError(f"{where}.num_tokens': {n} is outside 1..{spec.max_tokens} (max_tokens of '{spec.name}')")


def load_generation_config(path: str | Path, specs: Optional[Sequence] = None, overrides: Sequence[str] = ()) -> GenerationConfig:
    """Load and fully check a generation YAML; `specs` default to the whole modality registry."""
    cfg = from_dict(GenerationConfig, apply_overrides(read_yaml(path), overrides), source=str(path))
    if specs is None:
        from fourm.modalities import load_registry

        specs = list(load_registry().values())
    check_modalities(cfg, specs, str(path))
    return cfg
