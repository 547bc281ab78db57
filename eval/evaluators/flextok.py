"""FlexTok reconstruction vs token count: encode each raw image of the data with the target
(image_seq) modality's tokenizer, decode its first k tokens for every k of `token_counts` (the
same noise for every k) and score PSNR / SSIM (per image, data range 2, averaged) against the
image. Writes a PSNR/SSIM-vs-tokens plot and a grid: original | k = k1 | k2 | ..."""
from __future__ import annotations

import torch

from eval.context import EvalContext, stack_decoded


@torch.no_grad()
def run(model, ctx: EvalContext) -> dict:
    from eval.meters import ReconstructionMeter

    cfg = ctx.cfg
    spec = ctx.target_spec  # model may be None: the tokenizer alone is evaluated
    counts = sorted({k for k in cfg.token_counts if k <= spec.max_tokens})
    if not counts:
        raise ValueError(f"token_counts {list(cfg.token_counts)}: none within 1..{spec.max_tokens} ('{spec.name}' max_tokens)")
    meters = {k: ReconstructionMeter() for k in counts}
    examples: list[list] = []
    for batch in ctx.batches():
        images = ctx.ground_truth(batch, spec)  # (B, 3, H, W) in [-1, 1]
        ids = ctx.encode(batch, spec)  # (B, R)
        recons = {}
        for k in counts:
            ctx.generator.manual_seed(cfg.seed)  # same noise for every k: differences come from the tokens
            recons[k] = stack_decoded(spec.data, ctx.decode(spec, ids[:, :k]), images).clamp(-1, 1)
            meters[k].update(recons[k], images)
        for i in range(min(len(batch), cfg.examples - len(examples))):
            examples.append([images[i].numpy()] + [recons[k][i].numpy() for k in counts])
    curve = {k: meters[k].compute() for k in counts}
    write_figures(ctx, spec, counts, curve, examples)
    return {**{f"psnr@{k}": curve[k]["psnr"] for k in counts}, **{f"ssim@{k}": curve[k]["ssim"] for k in counts},
            "curve": {str(k): curve[k] for k in counts}, "samples": len(ctx.samples)}


def write_figures(ctx: EvalContext, spec, counts, curve, examples) -> None:
    from eval.visuals import rgb_to_uint8, write_grid, write_line_plot

    out = ctx.out_dir
    for metric, unit in (("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        path = write_line_plot(out / f"flextok_{metric}.png", {spec.name: (counts, [curve[k][metric] for k in counts])},
                               "tokens", unit, f"{spec.name} reconstruction vs token count", log_x=True)
        ctx.add_figure(path, f"{unit} vs number of tokens")
    rows = [[rgb_to_uint8(x) for x in row] for row in examples]
    path = write_grid(out / "flextok_examples.png", rows, ["original", *[f"{k} tok" for k in counts]])
    ctx.add_figure(path, "original, then reconstructions from the first k tokens")
