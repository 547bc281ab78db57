"""Segmentation probe (task probe): encoder features of the `inputs` (e.g. rgb tokens) of the
frozen FourM, a `eval.probe.SegmentationProbe` trained on `probe.train_data` for a fixed number
of steps, then mIoU / pixel accuracy / per-class IoU on the evaluation data against the raw
class maps of `target` (a registry modality; the model itself need not have it)."""
from __future__ import annotations

import torch

from eval.context import EvalContext, read_samples


def features_and_targets(model, ctx: EvalContext, samples, target_spec):
    feats, valid, targets = [], [], []
    for batch in ctx.batches(samples):
        from eval.probe import encoder_features

        f, v = encoder_features(model, ctx.conditions(batch, model, ctx.cfg.inputs))
        feats.append(f.cpu())
        valid.append(v.cpu())
        targets.append(ctx.ground_truth(batch, target_spec).long())
    return torch.cat(feats), torch.cat(valid), torch.cat(targets)


def run(model, ctx: EvalContext) -> dict:
    from eval.meters import SegmentationMeter
    from eval.probe import SegmentationProbe, fit_probe
    from eval.visuals import colorize_classes, write_grid, write_line_plot

    cfg, p = ctx.cfg, ctx.cfg.probe
    target_spec = ctx.target_spec
    names = ctx.class_names(target_spec)
    train_samples, _ = read_samples(p.train_data, p.max_train_samples)
    train = features_and_targets(model, ctx, train_samples, target_spec)
    val = features_and_targets(model, ctx, ctx.samples, target_spec)
    torch.manual_seed(cfg.seed)  # the probe's initialisation
    probe = SegmentationProbe(train[0].shape[-1], len(names), train[2].shape[-1], p.grid, p.head, p.hidden)
    losses = fit_probe(probe, *train, steps=p.steps, batch_size=p.batch_size, lr=p.lr, generator=ctx.generator)
    meter = SegmentationMeter(len(names), class_names=names)
    with torch.no_grad():
        pred = torch.cat([probe(val[0][i:i + cfg.batch_size], val[1][i:i + cfg.batch_size]).argmax(1)
                          for i in range(0, val[0].shape[0], cfg.batch_size)])
    meter.update(pred, val[2])
    path = write_line_plot(ctx.out_dir / "probe_loss.png", {"probe": (list(range(1, len(losses) + 1)), losses)},
                           "step", "cross-entropy", "segmentation probe training")
    ctx.add_figure(path, "probe training loss")
    n = max(len(names), 8)
    rows = [[colorize_classes(pred[i].numpy(), num_classes=n), colorize_classes(val[2][i].numpy(), num_classes=n)]
            for i in range(min(cfg.examples, pred.shape[0]))]
    path = write_grid(ctx.out_dir / "probe_examples.png", rows, ["probe", "ground truth"])
    ctx.add_figure(path, "probe prediction | ground truth")
    return {**meter.compute(), "train_samples": int(train[0].shape[0]), "final_train_loss": losses[-1],
            "samples": int(pred.shape[0])}
