"""Caption -> rgb consistency of a trained FourM under different generation settings: scheme,
guidance, temperature, FlexTok decoder guidance, and the chained route through a generated segmentation (`plan`).

    python bench/caption_to_rgb_settings.py                        # runs/fourm_tiny/model, 64 val captions
    python bench/caption_to_rgb_settings.py --samples 32 --only baseline plan_semseg

Each setting is configs/eval/consistency.yaml with its rgb generation (and plan) replaced; the
same seed for all, so they differ only by the setting. Prints a markdown table and writes
runs/bench/caption_to_rgb_settings.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

RGB = {"modality": "rgb", "scheme": "roar", "steps": 8, "temperature": 1.0, "top_k": 50, "cfg_scale": 3.0}
PLAN = [{"modality": "semseg", "scheme": "roar", "steps": 8, "temperature": 1.0, "top_p": 0.9, "cfg_scale": 2.0}]
SETTINGS = {
    "baseline": {"rgb": {}},
    "cfg_1": {"rgb": {"cfg_scale": 1.0}},
    "cfg_6": {"rgb": {"cfg_scale": 6.0}},
    "temperature_0.5": {"rgb": {"temperature": 0.5}},
    "maskgit_8": {"rgb": {"scheme": "maskgit"}},
    "left_to_right": {"rgb": {"scheme": "autoregressive"}},
    "plan_semseg": {"rgb": {"cfg_scale": 1.0, "cfg_weights": {"caption": 2.0, "semseg": 1.5}}, "plan": PLAN},
    "plan_semseg_cfg3": {"rgb": {}, "plan": PLAN},
    "flextok_guidance_3": {"rgb": {}, "eval": {"decode_guidance": 3.0}},
}


def setting_config(base: dict, setting: dict, samples: int, out: str) -> dict:
    cfg = dict(base, max_samples=samples, out_dir=out, **setting.get("eval", {}))
    rgb = dict(RGB, **setting["rgb"])
    if "cfg_weights" in rgb and rgb.get("cfg_scale") == 1.0:
        rgb.pop("cfg_scale")
    cfg["generation"] = [rgb] + [g for g in base["generation"] if g["modality"] != "rgb"]
    cfg["plan"] = setting.get("plan", [])
    return cfg


def main() -> None:
    from eval.config import EvalConfig
    from eval.run import evaluate
    from fourm.config import from_dict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="runs/fourm_tiny/model")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--only", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--out", default="runs/bench/caption_to_rgb_settings")
    args = ap.parse_args()
    base = yaml.safe_load(Path("configs/eval/consistency.yaml").read_text())
    results = {}
    for name in args.only:
        start = time.time()
        cfg = from_dict(EvalConfig, setting_config(base, SETTINGS[name], args.samples, f"{args.out}/{name}"))
        m = evaluate(cfg, checkpoint=args.checkpoint)["metrics"]
        results[name] = {k: m[k] for k in ("consistency", "class_recall", "sample_all_present", "judge_consistency")}
        results[name]["seconds"] = round(time.time() - start, 1)
        print(name, results[name], flush=True)
    print("\n| setting | consistency | class recall | all objects | seconds |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['consistency']:.3f} | {r['class_recall']:.3f} | {r['sample_all_present']:.3f} | {r['seconds']} |")
    judge = next(iter(results.values()))["judge_consistency"]
    print(f"\njudge ceiling (real images, the model's own segmentation): {judge:.3f}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
