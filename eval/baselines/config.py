"""Config of a U-Net baseline run (configs/baselines/unet_*.yaml), validated by `fourm.config`.

The budget is fixed by `train.steps x train.batch_size` training samples; `max_wall_s` is only a
safety stop (a run that hits it says so in its results), so two runs with the same config see
the same samples in the same order whatever the machine's load.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from train.engine import EngineConfig


@dataclass(frozen=True)
class UNetModelConfig:
    """width: channels at full resolution, doubled at each of `levels` downsamplings."""

    width: int = 16
    levels: int = 3
    norm_groups: int = 8

    def __post_init__(self) -> None:
        if self.width < 1 or self.levels < 1 or self.norm_groups < 1:
            raise ValueError(f"width, levels and norm_groups must be >= 1, got {self.width}, {self.levels}, {self.norm_groups}")


@dataclass(frozen=True)
class BaselineDataConfig:
    """Raw shards (folders, globs or brace ranges, see `fourm.shards.list_shards`); samples are
    resized to `resolution` (RGB bilinear, targets nearest) and held in memory."""

    train: str = "data/scenes/train"
    val: str = "data/scenes/val"
    resolution: int = 64
    max_train_samples: Optional[int] = None
    max_val_samples: Optional[int] = None
    hflip: bool = True  # random horizontal flips of training samples (input and target together)


@dataclass(frozen=True)
class BaselineTrainConfig:
    steps: int = 400
    batch_size: int = 16
    max_wall_s: Optional[float] = None  # stop training early past this many seconds (reported)
    log_every: int = 25
    eval_batch_size: int = 64
    example_images: int = 6  # val samples drawn in examples.png

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1 or self.eval_batch_size < 1:
            raise ValueError("steps, batch_size, log_every and eval_batch_size must be >= 1")


@dataclass(frozen=True)
class UNetBaselineConfig:
    """task: semseg (cross-entropy over `num_classes`, default: the manifest's class_names) or
    depth (metric depth; loss on valid pixels only, GT > 0: L1 on log depth, or the
    scale-invariant log loss `silog` with weight `silog_lambda`)."""

    task: Literal["semseg", "depth"]
    out_dir: str
    data: BaselineDataConfig = field(default_factory=BaselineDataConfig)
    model: UNetModelConfig = field(default_factory=UNetModelConfig)
    train: BaselineTrainConfig = field(default_factory=BaselineTrainConfig)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(lr=2e-3, weight_decay=1e-4, warmup_steps=20))
    num_classes: Optional[int] = None
    depth_loss: Literal["log_l1", "silog"] = "log_l1"
    silog_lambda: float = 0.85
