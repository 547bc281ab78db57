"""FinetuneConfig: one YAML under configs/finetune/ describes a fine-tuning run of a trained FourM."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from fourm.data import DataConfig
from train.engine import EngineConfig


@dataclass(frozen=True)
class LoRASection:
    """rank, alpha: the update is (alpha / rank) * B A. targets: attn (q, kv, out projections)
    and/or mlp (SwiGLU in and out) linears of every encoder and decoder block."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[Literal["attn", "mlp"], ...] = ("attn", "mlp")

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"lora.rank must be >= 1, got {self.rank}")
        if not self.targets:
            raise ValueError("lora.targets: name at least one of attn, mlp")


@dataclass(frozen=True)
class TaskSection:
    """A fixed masking for transfer to one direction: every token of `inputs` goes to the
    encoder, every token of `targets` is predicted (e.g. rgb -> semseg)."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("task.targets: name at least one modality")
        both = set(self.inputs) & set(self.targets)
        if both:
            raise ValueError(f"task: '{sorted(both)[0]}' is both an input and a target")


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tune the FourM in `base_model` (a folder with model.safetensors + config.yaml).

    add_modalities:  registry names (in `modality_folder`, default configs/modalities) to add;
                     only their embeddings and heads are newly initialised, the rest is loaded
    frozen_steps:    stage 1: optimizer steps training only the new embeddings and heads with
                     the trunk frozen (0: skip); frozen_lr its learning rate (default engine.lr)
    steps:           stage 2: optimizer steps of fine-tuning (0: skip)
    method:          stage 2 trains everything (full) or LoRA adapters plus the new modalities'
                     embeddings and heads (lora); LoRA is merged into the weights on export
    task:            fixed masking (all inputs in, all targets out) instead of data.masking
    run_dir:         stage1/ and stage2/ (checkpoints, metrics.jsonl, config.yaml of each stage),
                     stage1/model (after stage 1) and model/ (the final plain FourM)
    """

    run_dir: str
    base_model: str
    data: DataConfig
    steps: int = 0
    add_modalities: tuple[str, ...] = ()
    modality_folder: str = ""
    frozen_steps: int = 0
    frozen_lr: Optional[float] = None
    method: Literal["full", "lora"] = "full"
    lora: LoRASection = field(default_factory=LoRASection)
    task: Optional[TaskSection] = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    log_every: int = 10
    val_every: int = 0
    checkpoint_every: int = 100
    wandb: Literal["off", "offline", "online"] = "off"
    wandb_project: str = "fourm"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0 or self.frozen_steps < 0:
            raise ValueError(f"steps and frozen_steps must be >= 0, got {self.steps} and {self.frozen_steps}")
        if self.steps + self.frozen_steps < 1:
            raise ValueError("steps + frozen_steps must be >= 1 (nothing to train)")
        if self.frozen_steps and not self.add_modalities:
            raise ValueError("frozen_steps > 0 trains only new modalities' parameters, but add_modalities is empty")
        if len(set(self.add_modalities)) != len(self.add_modalities):
            raise ValueError(f"add_modalities lists a modality twice: {list(self.add_modalities)}")


def load_finetune_config(path, overrides=()) -> FinetuneConfig:
    from fourm.config import load_config

    return load_config(path, FinetuneConfig, overrides)
