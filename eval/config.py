"""EvalConfig: one YAML under configs/eval/ = one evaluator run (`fourm eval --config ...`).

The evaluator is chosen by `task`; every evaluator reads the raw samples of `data` (ground truth
as rendered, never tokenized), encodes the `inputs` with the model's tokenizers, generates through
`fourm.generation` and decodes through `fourm.generation.outputs`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from fourm.generation_config import TargetConfig

TASKS = ("semseg", "depth", "normals", "flextok", "caption", "consistency", "probe")


@dataclass(frozen=True)
class ProbeSection:
    """The segmentation probe on the frozen encoder (task probe): a head trained for `steps`
    AdamW steps on the encoder features of `max_train_samples` samples of `train_data`.
    head: linear (one linear map per output patch) or mlp (one hidden layer of `hidden`).
    grid: output patches per side (queries attending to the encoder features)."""

    train_data: str = "data/scenes/train"
    max_train_samples: int = 512
    steps: int = 300
    batch_size: int = 32
    lr: float = 1.0e-3
    head: Literal["linear", "mlp"] = "linear"
    hidden: int = 256
    grid: int = 8

    def __post_init__(self) -> None:
        if min(self.max_train_samples, self.steps, self.batch_size, self.hidden, self.grid) < 1:
            raise ValueError("probe: max_train_samples, steps, batch_size, hidden and grid must be >= 1")


@dataclass(frozen=True)
class EvalConfig:
    """task:        semseg | depth | normals (inputs -> target map, scored against the raw map),
                    flextok (reconstruction of `target`, an image_seq modality, vs token count),
                    caption (inputs -> target text, object recall against the scene graph),
                    consistency (inputs (a caption) -> `via` (rgb) -> target (a class map) vs the
                    caption's scene graph), probe (segmentation probe on the frozen encoder)
    model:          FourM folder (`--checkpoint` overrides it); for task flextok "" evaluates the
                    tokenizer alone (the target spec from the registry, its folder from `tokenizers`)
    data:           raw shards (folder, glob or brace range) with ground truth
    out_dir:        metrics.json, PNGs and report.html go here (`--out` overrides it)
    inputs:         the conditions; target: the modality evaluated; via: consistency's image
    via_views:      consistency: modalities that re-tokenize the decoded `via` image as extra
                    conditions of the target (rgb_grid: the model reads it as it reads a real image)
    judge:          consistency: a U-Net semseg baseline folder (eval/baselines) that segments
                    the images instead of the model ("": the model's own rgb -> semseg)
    plan:           consistency: targets generated from the inputs, in order, before the `via`
                    image, which they join as conditions (the chained route caption -> semseg -> rgb);
                    the target is still predicted from the generated image alone
    generation:     decoding settings per generated modality (TargetConfig); a modality not
                    listed decodes greedily (one parallel argmax pass, or autoregressive if causal)
    max_samples, batch_size, seed: how many samples, how many at once, the sampling seed
    tokenizers:     modality -> tokenizer folder (default: each model spec's `tokenizer`)
    decode_steps, decode_guidance: FlexTok decoding (default: the tokenizer's own)
    token_counts:   flextok: the numbers of leading tokens reconstructed from
    depth_align:    none (metric) or median (per-image median scaling)
    min_pixels:     consistency: pixels a class (and its colour) needs to count as present
    examples:       samples drawn in the PNG grid
    baseline:       a U-Net baseline's metrics.json (eval/baselines) shown beside FourM's numbers
    wandb:          off | offline | online (scalars and the PNGs)
    """

    task: Literal["semseg", "depth", "normals", "flextok", "caption", "consistency", "probe"]
    target: str
    model: str = "runs/fourm_tiny/model"
    data: str = "data/scenes/val"
    out_dir: str = "runs/eval"
    inputs: tuple[str, ...] = ("rgb",)
    via: str = "rgb"
    via_views: tuple[str, ...] = ()
    generation: tuple[TargetConfig, ...] = ()
    plan: tuple[TargetConfig, ...] = ()
    judge: str = ""
    max_samples: int = 64
    batch_size: int = 16
    seed: int = 0
    tokenizers: dict[str, str] = field(default_factory=dict)
    decode_steps: Optional[int] = None
    decode_guidance: Optional[float] = None
    token_counts: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    depth_align: Literal["none", "median"] = "none"
    min_pixels: int = 4
    examples: int = 6
    baseline: str = ""
    probe: ProbeSection = field(default_factory=ProbeSection)
    wandb: Literal["off", "offline", "online"] = "off"
    wandb_project: str = "fourm"

    def __post_init__(self) -> None:
        if self.max_samples < 1 or self.batch_size < 1:
            raise ValueError(f"max_samples and batch_size must be >= 1, got {self.max_samples} and {self.batch_size}")
        if self.task in ("flextok",) and (not self.token_counts or min(self.token_counts) < 1):
            raise ValueError(f"token_counts must be >= 1, got {list(self.token_counts)}")
        if self.target in self.inputs and self.task != "flextok":
            raise ValueError(f"target '{self.target}' is also an input")
        if self.task in ("semseg", "depth", "normals", "caption", "consistency", "probe") and not self.inputs:
            raise ValueError(f"task {self.task} needs at least one input modality")
        if (self.plan or self.judge) and self.task != "consistency":
            raise ValueError(f"plan and judge belong to task consistency, not task {self.task}")
        clash = [t.modality for t in self.plan if t.modality in (*self.inputs, self.via)]
        if clash:
            raise ValueError(f"plan: '{clash[0]}' is an input or the via image, it cannot be planned")
        self._check_condition_on()

    def _check_condition_on(self) -> None:
        """A planned or generated step may only name inputs and earlier planned targets."""
        available = list(self.inputs)
        for key, steps in (("plan", self.plan), ("generation", self.generation)):
            for i, step in enumerate(steps):
                bad = [n for n in step.condition_on if n not in available]
                if bad:
                    raise ValueError(f"key '{key}[{i}].condition_on': '{bad[0]}' is not an input or planned target "
                                     f"(available: {', '.join(available)})")
                if key == "plan":
                    available.append(step.modality)

    def required_modalities(self) -> tuple[str, ...]:
        """Modalities the checkpoint must have for this task."""
        if self.task == "flextok":
            return (self.target,)
        if self.task == "probe":
            return tuple(self.inputs)
        if self.task == "consistency":
            plan = tuple(t.modality for t in self.plan if t.modality != self.target)
            return (*self.inputs, *plan, self.via, *self.via_views, self.target)
        return (*self.inputs, self.target)


def load_eval_config(path, overrides=()) -> EvalConfig:
    from fourm.config import load_config

    return load_config(path, EvalConfig, overrides)
