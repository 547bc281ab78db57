"""FourMTrainConfig: one YAML file describes a FourM pre-training run (see configs/train/)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from fourm.data import DataConfig
from train.engine import EngineConfig


@dataclass(frozen=True)
class ModelSection:
    """preset: a row of fourm.model.presets.PRESETS; any of dim/encoder_depth/decoder_depth/heads
    replaces the preset's value. modalities: names in the registry folder `modality_folder`
    (default configs/modalities). The rest are FourMConfig fields."""

    preset: str = "tiny"
    modalities: tuple[str, ...] = ("rgb", "depth", "semseg", "caption")
    modality_folder: str = ""
    dim: Optional[int] = None
    encoder_depth: Optional[int] = None
    decoder_depth: Optional[int] = None
    heads: Optional[int] = None
    # None keeps FourMConfig's own default, so defaults live in one place (fourm/model/config.py).
    mlp_ratio: Optional[float] = None
    norm: Optional[Literal["layernorm", "rmsnorm"]] = None
    qk_norm: Optional[bool] = None
    bias: Optional[bool] = None
    block_cross_modality: Optional[bool] = None
    causal_kinds: Optional[tuple[str, ...]] = None
    grid_position_units: Optional[float] = None
    grid_cross_bias: Optional[tuple[float, ...]] = None
    patch_stem: Optional[Literal["linear", "conv"]] = None
    code_appearance: tuple[str, ...] = ()  # image_grid modalities embedded through what their codes draw


@dataclass(frozen=True)
class FourMTrainConfig:
    """run_dir: checkpoints/ (DeepSpeed, for resuming), model/ (safetensors + config.yaml at the
    end), metrics.jsonl, config.yaml. steps: optimizer steps. *_every: in optimizer steps (0: off;
    a checkpoint and a validation are always made at the end). wandb: off | offline | online."""

    run_dir: str
    steps: int
    data: DataConfig
    model: ModelSection = field(default_factory=ModelSection)
    engine: EngineConfig = field(default_factory=EngineConfig)
    log_every: int = 10
    val_every: int = 0
    checkpoint_every: int = 100
    wandb: Literal["off", "offline", "online"] = "off"
    wandb_project: str = "fourm"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def load_train_config(path, overrides=()) -> FourMTrainConfig:
    from fourm.config import load_config

    return load_config(path, FourMTrainConfig, overrides)
