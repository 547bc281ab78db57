"""Reconstruction figures of trained grid tokenizers on a split: mIoU (semseg), abs-rel (depth),
angular error (normals), codebook usage (all). Issue 4's targets: mIoU >= 0.90, abs-rel <= 0.05,
usage >= 50%. For class maps also how local the tokens are: the entropy of a cell's code given
the cell's exact pixels (0 when a token depends on its own cell only), the number of codes a
cell of pure floor gets, and the marginal code entropy (nats).

    PYTHONPATH=. .venv/bin/python bench/grid_tokenizers.py --modalities semseg depth \
        --split data/scenes/val [--tokenizer semseg=runs/tokenizers/semseg] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGETS = {"miou": (">=", 0.90), "abs_rel": ("<=", 0.05), "codebook_usage": (">=", 0.50)}


def raw_batches(split: str, spec, batch_size: int):
    from fourm.shards import iter_samples, list_shards
    from fourm.tokenize import shard_field
    from modality_tokenizers.raw import to_tensor

    field, items = shard_field(spec), []
    for sample in iter_samples(list_shards(split), [field]):
        items.append(sample[field])
        if len(items) == batch_size:
            yield to_tensor(spec.data, items)
            items = []
    if items:
        yield to_tensor(spec.data, items)


def evaluate(name: str, split: str, folder: str, batch_size: int = 64) -> dict:
    import torch

    import modality_tokenizers.grid  # noqa: F401  (registers "grid")
    from fourm.modalities import load_registry
    from modality_tokenizers.base import load_tokenizer
    from modality_tokenizers.grid.metrics import evaluate_reconstruction

    spec = load_registry([name])[name]
    tokenizer = load_tokenizer(folder or spec.tokenizer)
    start = time.time()
    with torch.inference_mode():
        result = evaluate_reconstruction(tokenizer, raw_batches(split, spec, batch_size))
    if spec.data == "class_map":
        result.update(code_locality(tokenizer, raw_batches(split, spec, batch_size)))
    result["eval_seconds"] = round(time.time() - start, 1)
    metrics_file = Path(folder or spec.tokenizer) / "metrics.json"
    if metrics_file.is_file():  # how long training took, as the trainer recorded it
        result["train_minutes"] = round(json.loads(metrics_file.read_text()).get("minutes", float("nan")), 1)
    return result


def code_locality(tokenizer, batches) -> dict:
    """Class maps: how much a cell's code depends on anything but the cell's own pixels."""
    import math
    from collections import Counter, defaultdict

    import torch
    from einops import rearrange

    def entropy(counter: Counter) -> float:
        n = sum(counter.values())
        return -sum(c / n * math.log(c / n) for c in counter.values())

    p = tokenizer.config.patch_size
    codes_of = defaultdict(Counter)  # exact cell pixels -> codes seen for them
    with torch.inference_mode():
        for maps in batches:  # (B, H, W) class indices
            ids = tokenizer.encode(maps).flatten().tolist()  # (B * h * w,)
            cells = rearrange(maps, "b (h p) (w q) -> (b h w) (p q)", p=p, q=p).to(torch.uint8).numpy()
            for cell, code in zip(cells, ids):
                codes_of[cell.tobytes()][code] += 1
    total = sum(sum(c.values()) for c in codes_of.values())
    floor = codes_of.get(bytes([1]) * (p * p), Counter())  # class 1 = floor in the scenes
    return {"code_entropy_given_cell": sum(sum(c.values()) * entropy(c) for c in codes_of.values()) / total,
            "codes_per_floor_cell": len(floor), "marginal_code_entropy": entropy(sum(codes_of.values(), Counter()))}


def verdicts(result: dict) -> dict:
    out = {}
    for key, (op, bound) in TARGETS.items():
        if key in result:
            out[key] = "pass" if (result[key] >= bound if op == ">=" else result[key] <= bound) else "FAIL"
    return out


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modalities", nargs="+", default=["semseg", "depth"])
    parser.add_argument("--split", default="data/scenes/val")
    parser.add_argument("--tokenizer", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folders = dict(item.split("=", 1) for item in args.tokenizer)
    results = {}
    for name in args.modalities:
        result = evaluate(name, args.split, folders.get(name, ""))
        results[name] = {**result, "targets": verdicts(result)}
        print(name, json.dumps(results[name]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
