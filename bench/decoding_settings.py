"""Decoded scores of a trained FourM under different generation settings, one eval config at a
time: rgb -> semseg mIoU and rgb -> depth abs-rel (one argmax pass, guidance, sampled ROAR), and
caption -> rgb consistency (scheme, guidance, temperature, FlexTok decoder guidance, and the
chained route through a generated segmentation, `plan`), and caption -> colorseg -> rgb_grid
consistency (layout sampling, grid decoding, the true layout as the ceiling of the second step).

    python bench/decoding_settings.py --task semseg                 # runs/fourm_tiny/model
    python bench/decoding_settings.py --task consistency --samples 32 --only baseline plan_semseg
    python bench/decoding_settings.py --task consistency_colorseg --samples 64

Each setting is configs/eval/<task>.yaml with the generation entry of one modality replaced (and
for consistency a plan or eval fields); the same seed for all, so they differ only by the setting.
Prints a markdown table and writes runs/bench/decoding_settings/<task>/results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

ARGMAX = {"scheme": "maskgit", "steps": 1, "temperature": 0.0}
ROAR = {"scheme": "roar", "steps": 8, "temperature": 1.0, "top_p": 0.9}
DENSE = {
    "argmax": ARGMAX,
    "argmax_cfg2": dict(ARGMAX, cfg_scale=2.0),
    "argmax_cfg3": dict(ARGMAX, cfg_scale=3.0),
    "roar_sampled": ROAR,
    "roar_sampled_cfg2": dict(ROAR, cfg_scale=2.0),
}
RGB = {"scheme": "roar", "steps": 8, "temperature": 1.0, "top_k": 50, "cfg_scale": 3.0}
PLAN = [dict(ROAR, modality="semseg", cfg_scale=2.0)]
CAPTION_TO_RGB = {
    "baseline": {"entry": RGB},
    "cfg_1": {"entry": dict(RGB, cfg_scale=1.0)},
    "cfg_6": {"entry": dict(RGB, cfg_scale=6.0)},
    "temperature_0.5": {"entry": dict(RGB, temperature=0.5)},
    "maskgit_8": {"entry": dict(RGB, scheme="maskgit")},
    "left_to_right": {"entry": dict(RGB, scheme="autoregressive")},
    "plan_semseg": {"entry": dict(RGB, cfg_scale=1.0, cfg_weights={"caption": 2.0, "semseg": 1.5}), "plan": PLAN},
    "plan_semseg_cfg3": {"entry": RGB, "plan": PLAN},
    "flextok_guidance_3": {"entry": RGB, "eval": {"decode_guidance": 3.0}},
}
# caption -> colorseg -> rgb_grid (configs/eval/consistency_colorseg.yaml): how the layout is
# sampled, how the grid is decoded from it, and the true layout instead of a generated one.
LAYOUT = dict(ROAR, modality="colorseg", cfg_scale=3.0)
GRID = dict(ARGMAX, condition_on=["colorseg"])
CAPTION_TO_LAYOUT_TO_GRID = {
    "baseline": {"entry": GRID},
    "grid_maskgit_8_greedy": {"entry": dict(GRID, steps=8)},
    "grid_roar_t0.5": {"entry": dict(GRID, scheme="roar", steps=8, temperature=0.5)},
    "grid_with_caption": {"entry": ARGMAX},
    "layout_cfg2": {"entry": GRID, "plan": [dict(LAYOUT, cfg_scale=2.0)]},
    "layout_t0.7": {"entry": GRID, "plan": [dict(LAYOUT, temperature=0.7)]},
    "true_layout": {"entry": GRID, "plan": [], "eval": {"inputs": ["caption", "colorseg"]}},
}
TASKS = {  # task: (modality whose generation entry changes, settings, metrics shown)
    "semseg": ("semseg", {k: {"entry": v} for k, v in DENSE.items()}, ("miou", "pixel_acc")),
    "depth": ("depth", {k: {"entry": v} for k, v in DENSE.items()}, ("abs_rel", "delta1")),
    "consistency": ("rgb", CAPTION_TO_RGB, ("consistency", "mismatched_consistency", "class_recall", "judge_consistency")),
    "consistency_colorseg": ("rgb_grid", CAPTION_TO_LAYOUT_TO_GRID,
                             ("consistency", "mismatched_consistency", "class_recall", "judge_consistency")),
}


def setting_config(base: dict, modality: str, setting: dict, samples: int, out: str) -> dict:
    cfg = dict(base, max_samples=min(samples, base.get("max_samples", samples)), out_dir=out, **setting.get("eval", {}))
    entry = dict(setting["entry"], modality=modality)
    cfg["generation"] = [entry] + [g for g in base.get("generation", []) if g["modality"] != modality]
    if "plan" in setting:
        cfg["plan"] = setting["plan"]
    return cfg


def main() -> None:
    from eval.config import EvalConfig
    from eval.run import evaluate
    from fourm.config import from_dict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=list(TASKS), default="consistency")
    ap.add_argument("--checkpoint", default="runs/fourm_tiny/model")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", default="runs/bench/decoding_settings")
    args = ap.parse_args()
    modality, settings, shown = TASKS[args.task]
    base = yaml.safe_load(Path(f"configs/eval/{args.task}.yaml").read_text())
    out = Path(args.out) / args.task
    results = {}
    for name in args.only or list(settings):
        start = time.time()
        cfg = from_dict(EvalConfig, setting_config(base, modality, settings[name], args.samples, str(out / name)))
        metrics = evaluate(cfg, checkpoint=args.checkpoint)["metrics"]
        results[name] = {**{k: metrics.get(k) for k in shown}, "seconds": round(time.time() - start, 1)}
        print(name, results[name], flush=True)
    print(f"\n| setting | {' | '.join(shown)} | seconds |\n|---|{'---|' * (len(shown) + 1)}")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" if r[k] is not None else "-" for k in shown) + f" | {r['seconds']} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
