"""Dense prediction (semseg, depth, normals): generate the target map from the inputs, decode it
with the target's tokenizer and score it against the raw ground truth of the data.

Metrics by the target's raw data: class_map -> miou, pixel_acc, per_class_iou (names from the
data's manifest); depth_map -> abs_rel, rmse, delta1..3 (pixels with ground truth > 0);
normal_map -> mean/median angular error and % within 11.25/22.5/30 degrees (non-background)."""
from __future__ import annotations

import torch

from eval.context import EvalContext, stack_decoded


def make_meter(ctx: EvalContext, spec):
    from eval.meters import DepthMeter, NormalsMeter, SegmentationMeter

    if spec.data == "class_map":
        names = ctx.class_names(spec)
        return SegmentationMeter(len(names), class_names=names)
    if spec.data == "depth_map":
        return DepthMeter(ctx.cfg.depth_align)
    if spec.data == "normal_map":
        return NormalsMeter()
    raise ValueError(f"dense evaluation needs a class, depth or normal map target, '{spec.name}' holds {spec.data}")


@torch.no_grad()
def run(model, ctx: EvalContext) -> dict:
    from fourm.generation import generate_target

    cfg = ctx.cfg
    spec = model.config.spec(cfg.target)
    meter = make_meter(ctx, spec)
    examples = []
    for batch in ctx.batches():
        conds = ctx.conditions(batch, model, cfg.inputs)
        ids = generate_target(model, conds, spec.name, ctx.target_config(model, spec.name), ctx.generator)  # (B, N)
        truth = ctx.ground_truth(batch, spec)
        pred = stack_decoded(spec.data, ctx.decode(spec, ids), truth)
        if spec.data == "class_map":
            pred = pred.clamp(0, meter.num_classes - 1)
        meter.update(pred, truth)
        examples += [(batch[i], pred[i], truth[i]) for i in range(len(batch))][: cfg.examples - len(examples)]
    write_examples(model, ctx, spec, examples)
    return {**meter.compute(), "samples": len(ctx.samples)}


def write_examples(model, ctx: EvalContext, spec, examples) -> None:
    """inputs | prediction | ground truth, one row per example sample."""
    from eval.visuals import write_grid
    from fourm.generation.outputs import preview_image

    cfg = ctx.cfg
    rows = []
    for sample, pred, truth in examples:
        inputs = [preview_image(model.config.spec(n), ctx.ground_truth([sample], model.config.spec(n))[0].numpy()
                                if model.config.spec(n).kind != "text" else ctx.values([sample], model.config.spec(n))[0])
                  for n in cfg.inputs]
        if spec.data == "class_map":
            n = len(ctx.class_names(spec))
            from eval.visuals import colorize_classes

            tiles = [colorize_classes(pred.numpy(), num_classes=max(n, 8)), colorize_classes(truth.numpy(), num_classes=max(n, 8))]
        else:
            value = (lambda x: x[0].numpy()) if spec.data == "depth_map" else (lambda x: x.numpy())
            tiles = [preview_image(spec, value(pred)), preview_image(spec, value(truth))]
        rows.append([*inputs, *tiles])
    path = ctx.out_dir / f"{cfg.task}_examples.png"
    titles = [*cfg.inputs, "prediction", "ground truth"]
    write_grid(path, rows, titles, [s.get("__key__", "")[-8:] for s, _, _ in examples])
    ctx.add_figure(path, f"{' + '.join(cfg.inputs)} -> {spec.name}: {' | '.join(titles)}")
