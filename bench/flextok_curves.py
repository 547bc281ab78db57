"""One plot of FlexTok's PSNR and SSIM vs token count for several `fourm eval` flextok runs
(e.g. nested dropout on/off, CFG 1/3), from their metrics.json, plus a markdown table.

    python bench/flextok_curves.py runs/eval/flextok runs/eval/flextok_no_nd runs/eval/flextok_cfg3 \
        --names "ND on, CFG 1" "ND off, CFG 1" "ND on, CFG 3" --out runs/eval/flextok_curves
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_curve(run: Path) -> dict[int, dict[str, float]]:
    path = run / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (run `fourm eval --config configs/eval/flextok.yaml --out {run}`)")
    metrics = json.loads(path.read_text())["metrics"]
    if "curve" not in metrics:
        raise ValueError(f"{path}: not a flextok eval (no 'curve')")
    return {int(k): v for k, v in metrics["curve"].items()}


def main() -> None:
    from eval.visuals import write_line_plot

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of `fourm eval` (task flextok)")
    parser.add_argument("--names", nargs="+", default=None, help="a legend name per run")
    parser.add_argument("--out", type=Path, default=Path("runs/eval/flextok_curves"))
    args = parser.parse_args()
    names = args.names or [run.name for run in args.runs]
    if len(names) != len(args.runs):
        parser.error("--names needs one name per run")
    curves = {name: read_curve(run) for name, run in zip(names, args.runs)}
    args.out.mkdir(parents=True, exist_ok=True)
    for metric, unit in (("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        series = {name: (sorted(c), [c[k][metric] for k in sorted(c)]) for name, c in curves.items()}
        path = write_line_plot(args.out / f"flextok_{metric}.png", series, "tokens kept", unit,
                               title=f"FlexTok {metric.upper()} vs tokens (scenes val)", log_x=True)
        print(f"wrote {path}")
    counts = sorted({k for c in curves.values() for k in c})
    print("| run | " + " | ".join(f"{k} tok" for k in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for name, c in curves.items():
        cells = [f"{c[k]['psnr']:.2f} / {c[k]['ssim']:.3f}" if k in c else "" for k in counts]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
