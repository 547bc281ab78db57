"""`evaluate(cfg)`: check, load, run one evaluator, write the results.

    result = evaluate(load_eval_config("configs/eval/semseg.yaml"), checkpoint="runs/fourm_tiny/model")

Everything that can be checked is checked before any work (the checkpoint's config is read
without its weights): the checkpoint exists and has every modality the task needs, the target
has the right kind of data. Then the tokenizers, the raw samples and the model load, the
evaluator runs (`eval.evaluators`), and out_dir gets metrics.json, the evaluator's PNGs and
report.html (with the U-Net baseline's numbers beside FourM's when `baseline` is set).
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Optional

from eval.config import EvalConfig

log = logging.getLogger(__name__)


def check(cfg: EvalConfig, folder: Path):
    """(FourMConfig, target spec) or a one-line error naming what is wrong."""
    from eval.evaluators import KINDS
    from fourm.model.io import load_model_config

    model_cfg = load_model_config(folder)
    have = model_cfg.modality_names
    missing = [n for n in cfg.required_modalities() if n not in have]
    if missing:
        raise ValueError(f"{folder}: the checkpoint has no modality '{missing[0]}', which eval task '{cfg.task}' needs "
                         f"(it has: {', '.join(have)})")
    if cfg.target in have:
        target = model_cfg.spec(cfg.target)
    else:
        from fourm.modalities import load_registry

        target = load_registry([cfg.target])[cfg.target]
    kind, data = KINDS[cfg.task]
    if (kind and target.kind != kind) or (data and target.data != data):
        raise ValueError(f"eval task '{cfg.task}' needs a target of {'kind ' + kind + ', ' if kind else ''}data {data}; "
                         f"'{target.name}' is {target.kind} / {target.data}")
    if cfg.task == "consistency":
        via = model_cfg.spec(cfg.via)
        if via.data != "image_rgb":
            raise ValueError(f"eval task 'consistency' needs an RGB `via`; got '{via.name}' ({via.data})")
    return model_cfg, target


def read_baseline(path: str) -> Optional[dict]:
    """The `metrics` of a U-Net baseline's metrics.json (eval/baselines), or None if there is none yet."""
    from fourm.paths import resolve

    if not path:
        return None
    p = resolve(path)
    if not p.is_file():
        log.warning("baseline %s not found: the report shows FourM's numbers alone "
                    "(train it: python -m eval.baselines.train_unet --config configs/baselines/...)", path)
        return None
    data = json.loads(p.read_text())
    return {"metrics": data.get("metrics", data), "budget": data.get("budget", {}), "path": str(path)}


def evaluate(cfg: EvalConfig, checkpoint: Optional[str] = None, out_dir: Optional[str] = None, device: str = "cpu") -> dict:
    """Run the evaluator of `cfg.task`; returns (and writes to out_dir/metrics.json) the result."""
    from eval.context import EvalContext, read_samples
    from eval.evaluators import evaluator
    from fourm.config import to_dict
    from fourm.generation.outputs import load_modality_tokenizers
    from fourm.model import FourM
    from fourm.paths import resolve

    run = evaluator(cfg.task)
    tokenizer_only = cfg.task == "flextok" and not (checkpoint or cfg.model)  # model: "" -> no FourM needed
    if tokenizer_only:
        from fourm.modalities import load_registry

        target = load_registry([cfg.target])[cfg.target]
        specs = {target.name: target}
    else:
        folder = resolve(checkpoint or cfg.model)
        model_cfg, target = check(cfg, folder)
        specs = {n: model_cfg.spec(n) for n in dict.fromkeys(cfg.required_modalities())}
    baseline = read_baseline(cfg.baseline)
    tokenizers = load_modality_tokenizers(specs, cfg.tokenizers)
    samples, manifest = read_samples(cfg.data, cfg.max_samples)
    out = Path(out_dir or cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = None if tokenizer_only else FourM.from_pretrained(folder, map_location=device).eval()
    ctx = EvalContext(cfg, samples, manifest, tokenizers, out, device, target_spec=target)
    start = time.perf_counter()
    metrics = run(model, ctx)
    result = {"task": cfg.task, "checkpoint": str(checkpoint or cfg.model), "data": cfg.data, "metrics": metrics,
              "baseline": baseline, "wall_s": round(time.perf_counter() - start, 1), "figures": [f for f, _ in ctx.figures],
              "config": to_dict(cfg)}
    write_json(out / "metrics.json", result)
    write_report(out, cfg, result, ctx.figures)
    log_wandb(cfg, out, result, ctx.figures)
    return {**result, "out_dir": str(out)}


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}


def score_rows(result: dict, label: str = "FourM") -> dict:
    """{label: the result's scalar metrics, "U-Net baseline": its same metrics where it has a baseline}."""
    rows = {label: scalars(result["metrics"])}
    if result.get("baseline"):
        rows["U-Net baseline"] = {k: v for k, v in scalars(result["baseline"]["metrics"]).items() if k in rows[label]}
    return rows


def class_tables(result: dict) -> list:
    """Per-class IoU (beside the baseline's) and the class confusion of a segmentation result."""
    from eval.report import Table

    tables, baseline = [], result.get("baseline")
    per_class = result["metrics"].get("per_class_iou")
    if isinstance(per_class, dict):
        per_rows = {"FourM": per_class}
        if baseline and isinstance(baseline["metrics"].get("per_class_iou"), dict):
            per_rows["U-Net baseline"] = baseline["metrics"]["per_class_iou"]
        tables.append(Table("Per-class IoU", per_rows))
    confusion = result["metrics"].get("confusion")
    if confusion:
        tables.append(Table("FourM: share of each true class's pixels (rows) given each class (columns)", confusion))
    return tables


def write_report(out: Path, cfg: EvalConfig, result: dict, figures) -> Path:
    from eval.report import Figure, Section, Table, write_report as write_html

    baseline = result.get("baseline")
    tables = [Table("Scores", score_rows(result)), *class_tables(result)]
    text = (f"Checkpoint {result['checkpoint']}, data {cfg.data} ({result['metrics'].get('samples', '?')} samples), "
            f"inputs {', '.join(cfg.inputs)}, target {cfg.target}.")
    if baseline:
        text += f"\n\nU-Net baseline: {baseline['path']} (budget: {baseline['budget'].get('samples_seen', '?')} training samples)."
    section = Section(f"{cfg.task}", text=text, tables=tables, images=[Figure(f, c) for f, c in figures])
    return write_html(out / "report.html", f"fourm eval: {cfg.task}", [section])


def log_wandb(cfg: EvalConfig, out: Path, result: dict, figures) -> None:
    if cfg.wandb == "off":
        return
    import wandb

    run = wandb.init(project=cfg.wandb_project, dir=str(out), mode=cfg.wandb, config=result["config"], job_type="eval")
    run.log({**{f"eval/{cfg.task}/{k}": v for k, v in scalars(result["metrics"]).items() if v is not None},
             **{f"eval/{cfg.task}/{Path(f).stem}": wandb.Image(f, caption=c) for f, c in figures}})
    run.finish()
