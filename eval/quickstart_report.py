"""The quickstart's report (`quickstart/report.html`): the shipped generation configs run on val
samples (inputs | generations | ground truth, one PNG grid per config), the evaluators' scores
(rgb->semseg mIoU, rgb->depth abs-rel, caption->rgb consistency, FlexTok PSNR/SSIM per token
count) and FlexTok's coarse-to-fine reconstructions, on one page.

    write_quickstart_report("runs/fourm_tiny/model", "data/scenes/val", "quickstart", examples=6)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

log = logging.getLogger(__name__)

GENERATIONS = ("rgb_to_depth_semseg_caption", "caption_to_rgb", "semseg_to_rgb", "depth_to_rgb",
               "caption_to_semseg_to_rgb", "caption_to_colorseg_to_rgb", "caption_to_objects_to_rgb")
EVALS = ("semseg", "semseg_finetuned", "depth", "consistency", "consistency_chained", "consistency_colorseg",
         "consistency_objects", "consistency_true_layout", "flextok")
MODEL_LABELS = {"flextok": "FlexTok", "semseg_finetuned": "FourM fine-tuned"}  # else "FourM"
# The headline figures of the report, (eval task, metric, label).
HEADLINES = (("semseg", "miou", "rgb→semseg mIoU"), ("semseg", "pixel_acc", "rgb→semseg pixel accuracy"),
             ("semseg_finetuned", "miou", "rgb→semseg mIoU, FourM fine-tuned to the task"),
             ("depth", "abs_rel", "rgb→depth abs-rel"), ("depth", "delta1", "rgb→depth δ<1.25"),
             ("consistency", "consistency", "caption→rgb consistency"),
             ("consistency", "class_recall", "caption→rgb class recall"),
             ("consistency", "mismatched_consistency", "caption→rgb consistency against other captions (chance)"),
             ("consistency_chained", "consistency", "caption→semseg→rgb consistency"),
             ("consistency_chained", "mismatched_consistency", "caption→semseg→rgb against other captions (chance)"),
             ("consistency_colorseg", "consistency", "caption→colorseg→rgb_grid consistency"),
             ("consistency_colorseg", "mismatched_consistency",
              "caption→colorseg→rgb_grid against other captions (chance)"),
             ("consistency_objects", "consistency", "caption→objects→colorseg→rgb_grid consistency"),
             ("consistency_objects", "mismatched_consistency",
              "caption→objects→colorseg→rgb_grid against other captions (chance)"),
             ("consistency_true_layout", "consistency", "true colorseg→rgb_grid consistency (the image step alone)"),
             ("consistency", "judge_consistency", "same check on real images (judge's segmentation)"),
             ("consistency", "reference_consistency", "same check on real images (true segmentation)"),
             ("consistency_colorseg", "reconstruction_consistency",
              "same check on real images through the rgb_grid tokenizer (judge's segmentation)"))


def generation_rows(model, gen_cfg, samples: Sequence[dict], tokenizers: dict, generator: torch.Generator,
                    decode_steps: Optional[int] = None) -> tuple[list[list], list[str]]:
    """Run one GenerationConfig on raw samples -> grid rows [conditions | generated | ground truth]
    of uint8 tiles, and the column titles."""
    from eval.context import encode_values, raw_key
    from fourm.generation import generate_chain
    from fourm.generation.outputs import decode_tokens, preview_image

    spec = model.config.spec
    conds = [c.modality for c in gen_cfg.conditions]
    targets = [t.modality for t in gen_cfg.targets]
    inputs = {n: encode_values(spec(n), tokenizers[n], [s[raw_key(spec(n))] for s in samples]) for n in conds}
    outputs = generate_chain(model, gen_cfg, inputs, generator)  # {target: ids (B, N)}
    decoded = {n: decode_tokens(spec(n), tokenizers[n], outputs[n], steps=decode_steps, generator=generator) for n in targets}
    rows = []
    for i, sample in enumerate(samples):
        row = [preview_image(spec(n), sample[raw_key(spec(n))]) for n in conds]
        row += [preview_image(spec(n), decoded[n][i]) for n in targets]
        row += [preview_image(spec(n), shown_truth(spec(n), tokenizers[n], sample[raw_key(spec(n))])) for n in targets]
        rows.append(row)
    titles = [f"input {n}" for n in conds] + [f"generated {n}" for n in targets] + [f"true {n}" for n in targets]
    return rows, titles


def shown_truth(spec, tokenizer, raw):
    """The ground truth to show beside a generation: the raw value, or for a tokenizer that
    summarises its raw file (object centres of a label map) what it makes of it."""
    from eval.context import encode_values
    from fourm.generation.outputs import decode_tokens

    if not getattr(tokenizer, "summarises_raw", False):
        return raw
    return decode_tokens(spec, tokenizer, encode_values(spec, tokenizer, [raw]))[0]


def model_for(config_model: str, checkpoint: str, specialists: Sequence[str]) -> str:
    """The model a shipped config runs on in the report: the fine-tuned specialist it names (one of
    `specialists`), else the report's checkpoint (the any-to-any FourM)."""
    named = Path(config_model).as_posix()
    return named if named in {Path(s).as_posix() for s in specialists} else checkpoint


def generation_section(checkpoint: str, specialists: Sequence[str], samples, out: Path, seed: int,
                       decode_steps: Optional[int]):
    from eval.report import Figure, Section
    from eval.visuals import write_grid
    from fourm.generation.outputs import load_modality_tokenizers
    from fourm.generation_config import load_generation_config
    from fourm.model import FourM
    from fourm.paths import resolve

    figures, models = [], {}  # models: {path: (FourM, its tokenizers)}, each loaded once
    for name in GENERATIONS:
        gen_cfg = load_generation_config(f"configs/generate/{name}.yaml")
        path = model_for(gen_cfg.model, checkpoint, specialists)
        if path not in models:
            model = FourM.from_pretrained(resolve(path)).eval()
            models[path] = model, load_modality_tokenizers({m.name: m for m in model.config.modalities})
        model, tokenizers = models[path]
        generator = torch.Generator().manual_seed(seed)
        rows, titles = generation_rows(model, gen_cfg, samples, tokenizers, generator, decode_steps)
        grid = write_grid(out / f"generate_{name}.png", rows, titles, [s["__key__"][-6:] for s in samples])
        targets = ", ".join(f"{t.modality} ({t.scheme})" for t in gen_cfg.targets)
        figures.append(Figure(str(grid), f"configs/generate/{name}.yaml: {targets}" + (
            f" (model {path})" if path != checkpoint else "")))
        log.info("report: %s done", name)
    return Section("Any-to-any generation on val samples", text="Each row is one val sample: the conditions, "
                   "what the tiny FourM generated from them (targets in order, each joining the conditions of "
                   "the next), and the ground truth.", images=figures)


def evaluation_sections(checkpoint: str, specialists: Sequence[str], out: Path,
                        overrides: dict[str, Sequence[str]]) -> tuple[list, dict]:
    """Run the shipped eval configs (each on `model_for` its model); returns report sections and
    {task: metrics}."""
    from eval.config import load_eval_config
    from eval.report import Figure, Section, Table
    from eval.run import class_tables, evaluate, score_rows

    sections, metrics = [], {}
    for task in EVALS:
        cfg = load_eval_config(f"configs/eval/{task}.yaml", list(overrides.get(task, ())))
        result = evaluate(cfg, checkpoint=model_for(cfg.model, checkpoint, specialists), out_dir=str(out / "eval" / task))
        metrics[task] = result["metrics"]
        rows = score_rows(result, MODEL_LABELS.get(task, "FourM"))
        figures = [Figure(f, Path(f).stem.replace("_", " ")) for f in result["figures"]]
        sections.append(Section(f"Evaluation: {task} (configs/eval/{task}.yaml)",
                                tables=[Table("scores", rows), *class_tables(result)], images=figures))
        log.info("report: eval %s done", task)
    return sections, metrics


def headline_values(metrics: dict[str, dict], extra: dict[str, Any]) -> dict[str, Any]:
    values = {label: metrics.get(task, {}).get(key) for task, key, label in HEADLINES}
    flextok = metrics.get("flextok", {})
    for key, value in flextok.items():
        if key.startswith("psnr@"):
            values[f"FlexTok PSNR with {key[5:]} tokens"] = value
    values.update(extra)
    return values


def values_table(values: dict[str, Any]):
    from eval.report import Table

    return Table("Headline figures (scenes val split)", {label: {"value": v} for label, v in values.items()})


def write_quickstart_report(checkpoint: str, data: str, out: str | Path, examples: int = 6, seed: int = 0,
                            eval_overrides: Optional[dict] = None, decode_steps: Optional[int] = None,
                            extra: Optional[dict] = None, specialists: Sequence[str] = ()) -> dict:
    """Everything above into `out`/report.html; returns the headline metrics. `checkpoint`: the
    any-to-any FourM every shipped config runs on, except those naming one of `specialists`
    (fine-tuned from it: the caption route's), which run on that."""
    from eval.context import read_samples
    from eval.report import Section, write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples, _ = read_samples(data, examples)
    eval_sections, metrics = evaluation_sections(checkpoint, specialists, out, eval_overrides or {})
    gen = generation_section(checkpoint, specialists, samples, out, seed, decode_steps)
    summary = headline_values(metrics, extra or {})
    intro = Section("fourm quickstart", text=f"Model {checkpoint}; data {data}. Scores from the eval configs below; "
                    "the generation grids use the shipped configs in configs/generate/. "
                    "An input image (rgb→…) is read twice, as FlexTok tokens (rgb) and as 8×8 pixel patches "
                    "(rgb_pixels, the encoder's exact view, as 4M reads RGB); dense maps decode in one argmax pass. Images are "
                    "generated as FlexTok tokens (rgb), and from a shape-and-colour layout (colorseg) as the 16×16 "
                    "grid (caption→colorseg→rgb_grid), whose cells hold shapes that 32 FlexTok tokens cannot; "
                    "caption→objects→… first lists the caption's objects, left to right, each with the grid cell "
                    "where it shows. Configs naming a model fine-tuned from FourM run on it: "
                    + (", ".join(specialists) if specialists else "none here") + ".",
                    tables=[values_table(summary)])
    path = write_report(out / "report.html", "fourm quickstart report", [intro, gen, *eval_sections])
    log.info("wrote %s", path)
    return {"report": str(path), **summary}
