"""How well a FourM grounds a caption's objects (caption -> objects, the first step of
configs/generate/caption_to_objects_to_rgb.yaml), read off the sampled object list itself,
before any layout or image is drawn:

    objects:     entries per generated list (true: the caption's objects)
    named:       share of generated entries whose "<colour> <shape>" the caption names
    recalled:    share of the caption's objects that some entry names
    by chance:   `named` against another sample's caption
    cell:        share of entries naming a captioned object that give its true cell (within one
                 cell: `near`); `hidden` counts as a cell

    PYTHONPATH=. .venv/bin/python bench/objects_binding.py [--model runs/fourm_tiny/model] \
        [--samples 128] [--cfg 1 2] [--temperature 1.0] [--top-p 0.9]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.layout_binding import binding_parser  # noqa: E402


def true_places(sample: dict) -> dict[tuple[str, str], tuple[int, int] | None]:
    """{(colour, shape): cell or None} of a raw sample's objects.txt."""
    from fourm.datasets.scenes.grounding import parse_grounded_objects

    return {(o.colour, o.shape): o.cell for o in parse_grounded_objects(sample["objects"])}


def score(text: str, own: dict, other: dict) -> dict[str, float]:
    """The bench's figures for one generated list against its own and another caption's objects."""
    from fourm.datasets.scenes.grounding import parse_grounded_objects

    entries = [(o.colour, o.shape, o.cell) for o in parse_grounded_objects(text)]
    named = [(c, s) in own for c, s, _ in entries]
    placed = [(place, own[(c, s)]) for c, s, place in entries if (c, s) in own]
    exact = [p == t for p, t in placed]
    near = [p == t or (p is not None and t is not None and max(abs(p[0] - t[0]), abs(p[1] - t[1])) <= 1)
            for p, t in placed]
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    return {"objects": len(entries), "named": mean(named), "by_chance": mean([(c, s) in other for c, s, _ in entries]),
            "recalled": len({(c, s) for c, s, _ in entries} & set(own)) / len(own),
            "cell": mean(exact), "near": mean(near)}


@torch.no_grad()
def groundings(model_dir: str, split: str, samples: int, scale: float, temperature: float, top_p: float,
               batch_size: int = 16, seed: int = 0) -> dict:
    from eval.context import encode_values, read_samples
    from fourm.generation import generate_target
    from fourm.generation.outputs import decode_tokens, load_modality_tokenizers
    from fourm.generation_config import TargetConfig
    from fourm.model import FourM

    model = FourM.from_pretrained(model_dir).eval()
    specs = {n: model.config.spec(n) for n in ("caption", "objects")}
    tokenizers = load_modality_tokenizers(specs)
    rows, _ = read_samples(split, samples)
    target = TargetConfig(modality="objects", scheme="autoregressive", temperature=temperature, top_p=top_p,
                          cfg_scale=scale)
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        caption = encode_values(specs["caption"], tokenizers["caption"], [s["caption"] for s in batch])
        ids = generate_target(model, {"caption": caption}, "objects", target, generator)
        texts = decode_tokens(specs["objects"], tokenizers["objects"], ids)
        for i, text in enumerate(texts):
            scores.append(score(text, true_places(batch[i]), true_places(batch[(i + 1) % len(batch)])))
    out = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
    out["true_objects"] = sum(len(true_places(s)) for s in rows) / len(rows)
    return {"cfg_scale": scale, "temperature": temperature, **out}


def main() -> int:
    parser = binding_parser(__doc__, [1.0, 2.0])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for scale in args.cfg:
        r = groundings(args.model, args.split, args.samples, scale, args.temperature, args.top_p)
        print(f"cfg {scale:g}, temperature {args.temperature:g}, top-p {args.top_p:g}: objects {r['objects']:.2f} per "
              f"list (caption {r['true_objects']:.2f}); named by the caption {r['named']:.3f} (another caption's "
              f"{r['by_chance']:.3f}); caption's objects recalled {r['recalled']:.3f}; true cell {r['cell']:.3f}, "
              f"within one cell {r['near']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
