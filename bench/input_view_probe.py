"""Which view of the image should FourM's encoder read for segmentation? A short FourM run on one
direction alone, <view> -> semseg (the quickstart model's settings, `configs/train/tiny.yaml`), then
`fourm eval` of rgb -> semseg on the val split through that view:

    PYTHONPATH=. .venv/bin/python bench/input_view_probe.py --view rgb_pixels [--steps 400] [--out runs/bench/view_probe]
    PYTHONPATH=. .venv/bin/python bench/input_view_probe.py --view rgb_grid
    PYTHONPATH=. .venv/bin/python bench/input_view_probe.py --view rgb_pixels --patch-stem conv

Needs the quickstart's token shards (data/scenes_tokens, with the view and semseg) and tokenizers.
Prints and writes <out>/<view>/result.json: val cross-entropy, mIoU, pixel accuracy, per-class IoU.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def masking_yaml(view: str) -> str:
    """The view in (as much of it as the quickstart budget allows), semseg out."""
    return (f"input_tokens: [64, 192]\ntarget_tokens: [64, 128]\nmixture:\n"
            f"  - {{name: {view}_to_semseg, input_alphas: {{{view}: 1.0}}, target_alphas: {{semseg: 1.0}}}}\n")


def probe(view: str, steps: int, out: Path, patch_stem: str = "linear") -> dict:
    from eval.config import load_eval_config
    from eval.run import evaluate
    from fourm.modalities import load_registry
    from train.fourm_config import load_train_config
    from train.fourm_trainer import train

    folder = out / (view if patch_stem == "linear" else f"{view}_{patch_stem}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "masking.yaml").write_text(masking_yaml(view))
    # code appearance tables exist for token grids only, not for pixel patches
    described = [view] if load_registry([view])[view].kind == "image_grid" else []
    overrides = [f"run_dir={folder / 'run'}", f"steps={steps}", f"val_every={steps}", f"checkpoint_every={steps}",
                 f"model.modalities=[{view},semseg]", f"model.code_appearance=[{','.join([*described, 'semseg'])}]",
                 f"data.masking={folder / 'masking.yaml'}", f"model.patch_stem={patch_stem}",
                 "data.text_tokenizers={}", f"data.val_directions=[{{inputs: [{view}], targets: [semseg]}}]"]
    train(load_train_config("configs/train/tiny.yaml", overrides))
    logged = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    val_ce = next((row[f"val/{view}->semseg"] for row in reversed(logged) if f"val/{view}->semseg" in row), None)
    result = evaluate(load_eval_config("configs/eval/semseg.yaml", [f"inputs=[{view}]"]),
                      checkpoint=str(folder / "run" / "model"), out_dir=str(folder / "eval"))["metrics"]
    summary = {"view": view, "patch_stem": patch_stem, "steps": steps, "val_ce": val_ce,
               "miou": result["miou"], "pixel_acc": result["pixel_acc"], "per_class_iou": result["per_class_iou"]}
    (folder / "result.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--view", default="rgb_pixels", help="an image modality of the registry (rgb_pixels, rgb_grid)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--patch-stem", default="linear", choices=["linear", "conv"],
                        help="how pixel patches are embedded (model.patch_stem)")
    parser.add_argument("--out", default="runs/bench/view_probe")
    args = parser.parse_args()
    print(json.dumps(probe(args.view, args.steps, Path(args.out), args.patch_stem), indent=2))


if __name__ == "__main__":
    main()
