"""Fine-tuning a trained FourM: add modalities, transfer to a task, full or LoRA, on the same
DeepSpeed engine and training loop as pre-training (`train.fourm_trainer.train_model`).

    fourm finetune --config configs/finetune/normals.yaml [key.sub=value ...] [--nproc 2]

Stage 1 (`frozen_steps` > 0): only the new modalities' embeddings and heads train, the trunk
and the old modalities are frozen, so the model keeps what it knew while the new parts learn to
talk to it. Stage 2 (`steps` > 0): everything trains (method full), or LoRA adapters on the
trunk's attention/MLP linears plus the new embeddings and heads (method lora; merged into the
weights on export, so run_dir/model is a plain FourM). Masking: data.masking (the pre-training
mixture, which with '*' alphas covers the new modality), or with `task` a fixed masking.

Resuming: a finished stage 1 leaves run_dir/stage1/model and is not run again; stage 2 resumes
from run_dir/stage2/checkpoints like `fourm train`. With --nproc N the stages run under torchrun.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional

from train.finetune_config import FinetuneConfig

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- checks and building

def check_config(cfg: FinetuneConfig):
    """Everything that can be wrong with the config, before any model is loaded: the base
    checkpoint, the new modalities and the task's modalities. Returns (base FourMConfig, new specs)."""
    from fourm.modalities import load_registry
    from fourm.model.io import load_model_config
    from fourm.paths import resolve

    base_cfg = load_model_config(resolve(cfg.base_model))
    folder = resolve(cfg.modality_folder) if cfg.modality_folder else None
    new_specs = list(load_registry(cfg.add_modalities, folder).values()) if cfg.add_modalities else []
    have = list(base_cfg.modality_names)
    dup = [s.name for s in new_specs if s.name in have]
    if dup:
        raise ValueError(f"add_modalities: '{dup[0]}' is already in the base model {cfg.base_model} (has: {', '.join(have)})")
    if cfg.task is not None:
        names = have + [s.name for s in new_specs]
        unknown = [n for n in (*cfg.task.inputs, *cfg.task.targets) if n not in names]
        if unknown:
            raise ValueError(f"task: modality '{unknown[0]}' is neither in the base model nor in add_modalities "
                             f"(available: {', '.join(names)})")
    return base_cfg, new_specs


def stage_config(cfg: FinetuneConfig, name: str, steps: int, lr: Optional[float] = None):
    """The FourMTrainConfig of one stage (its own run folder under run_dir)."""
    import dataclasses

    from train.fourm_config import FourMTrainConfig

    engine = cfg.engine if lr is None else dataclasses.replace(cfg.engine, lr=lr)
    return FourMTrainConfig(run_dir=str(Path(cfg.run_dir) / name), steps=steps, data=cfg.data, engine=engine,
                            log_every=cfg.log_every, val_every=cfg.val_every, checkpoint_every=cfg.checkpoint_every,
                            wandb=cfg.wandb, wandb_project=f"{cfg.wandb_project}", progress=cfg.progress)


def build_masker(cfg: FinetuneConfig, specs, text_tokenizers: Mapping[str, Any]):
    """The task's fixed masking, or the mixture of data.masking."""
    from fourm.data import build_masker as mixture_masker
    from fourm.fixed_masking import FixedMasker
    from fourm.masking import TextSpecials

    if cfg.task is None:
        return mixture_masker(cfg.data, specs, text_tokenizers)
    specials = {name: TextSpecials.from_tokenizer(tok) for name, tok in text_tokenizers.items()}
    return FixedMasker(specs, cfg.task.inputs, cfg.task.targets, specials)


# ----------------------------------------------------------------------------- exports

def export_to(folder: Path, lora: Optional[tuple[int, float, tuple[str, ...]]] = None):
    """An export callback for `train_model`: consolidated weights -> plain FourM in `folder`
    (LoRA adapters, when given as (rank, alpha, targets), merged first). Rank 0 writes."""

    def export(engine, _default_folder) -> None:
        from fourm.model import FourM
        from fourm.model.lora import apply_lora, merge_lora

        state = engine.consolidated_state_dict()
        if state is not None:
            model = FourM(engine.module.config)
            if lora is not None:
                apply_lora(model, *lora)
            model.load_state_dict(state, strict=True)
            merge_lora(model).save_pretrained(folder)
            log.info("saved the fine-tuned model to %s", folder)
        engine.barrier()

    return export


def _copy_model(src: Path, dst: Path) -> None:
    """Copy a saved model folder whole (temp name, then rename)."""
    from train.engine import is_main

    if is_main():
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(tmp, dst)


# ----------------------------------------------------------------------------- the run

def finetune(cfg: FinetuneConfig, text_tokenizers: Optional[Mapping[str, Any]] = None) -> dict:
    """Run stage 1 and/or stage 2; returns {'stage1': last metrics, 'stage2': last metrics}.
    The final plain FourM is in run_dir/model."""
    from fourm.config import save_config
    from fourm.data import load_text_tokenizers
    from fourm.model import FourM
    from fourm.paths import resolve
    from train.engine import init_distributed, is_main, seed_everything
    from train.finetune_model import extend_model, new_parameter_prefixes, set_trainable
    from train.fourm_trainer import train_model

    base_cfg, new_specs = check_config(cfg)
    run_dir = Path(cfg.run_dir)
    init_distributed(cfg.engine.device)
    if is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "finetune_config.yaml")
    specs = list(base_cfg.modalities) + new_specs
    tokenizers = dict(text_tokenizers) if text_tokenizers is not None else load_text_tokenizers(cfg.data, specs)
    masker = build_masker(cfg, specs, tokenizers)
    results: dict = {}

    stage1_model = run_dir / "stage1" / "model"
    seed_everything(cfg.engine.seed)
    if cfg.frozen_steps and not (stage1_model / "model.safetensors").is_file():
        model, new_names = extend_model(FourM.from_pretrained(resolve(cfg.base_model)), new_specs)
        n = set_trainable(model, new_names)
        log.info("stage 1: %d steps training %.3fM parameters of %s (trunk frozen)", cfg.frozen_steps, n / 1e6,
                 ", ".join(s.name for s in new_specs))
        stage = stage_config(cfg, "stage1", cfg.frozen_steps, cfg.frozen_lr)
        results["stage1"] = train_model(stage, model, text_tokenizers=tokenizers, masker=masker,
                                        export=export_to(stage1_model))
    if cfg.frozen_steps:
        model = FourM.from_pretrained(stage1_model)
        if not cfg.steps:
            _copy_model(stage1_model, run_dir / "model")
            return results
    else:
        model, _ = extend_model(FourM.from_pretrained(resolve(cfg.base_model)), new_specs)

    lora = None
    if cfg.method == "lora":
        from fourm.model.lora import apply_lora

        lora = (cfg.lora.rank, cfg.lora.alpha, tuple(cfg.lora.targets))
        names = apply_lora(model, *lora) + [n for n, _ in model.named_parameters() if n.startswith(new_parameter_prefixes(new_specs))]
        n = set_trainable(model, names)
    else:
        n = set_trainable(model, None)
    log.info("stage 2 (%s): %d steps training %.3fM parameters", cfg.method, cfg.steps, n / 1e6)
    stage = stage_config(cfg, "stage2", cfg.steps)
    results["stage2"] = train_model(stage, model, text_tokenizers=tokenizers, masker=masker,
                                    export=export_to(run_dir / "model", lora))
    return results
