"""How well a FourM places a caption's objects as centres (caption -> centres, the first step of
configs/generate/caption_to_centres_to_rgb.yaml), read off the sampled tokens themselves, before
any layout or image is drawn:

    objects:        generated object tokens per sample (true: the scene's visible objects)
    named:          share of generated objects whose label (shape + colour) the caption names
    recalled:       share of the caption's labels that some generated object carries
    by chance:      `named` against another sample's caption

    PYTHONPATH=. .venv/bin/python bench/centres_binding.py [--model runs/fourm_tiny/model] \
        [--samples 128] [--cfg 1 1.5 3] [--temperature 1.0] [--steps 16] [--top-p 0.9]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.layout_binding import binding_parser, captioned_labels  # noqa: E402


def object_labels(ids: torch.Tensor, tokenizer) -> list[int]:
    """colorseg labels of the object tokens of one sample's centres (64,)."""
    return [tokenizer.object_of(int(i))[0] for i in ids if i > 0]


@torch.no_grad()
def placements(model_dir: str, split: str, samples: int, scale: float, temperature: float, steps: int,
               top_p: float = 0.9, batch_size: int = 16, seed: int = 0) -> dict:
    from eval.context import encode_values, read_samples
    from fourm.generation import generate_target
    from fourm.generation.outputs import load_modality_tokenizers
    from fourm.generation_config import TargetConfig
    from fourm.model import FourM

    model = FourM.from_pretrained(model_dir).eval()
    tokenizers = load_modality_tokenizers({n: model.config.spec(n) for n in ("caption", "centres")})
    rows, _ = read_samples(split, samples)
    target = TargetConfig(modality="centres", scheme="roar", steps=steps, temperature=temperature, top_p=top_p,
                          cfg_scale=scale)
    generator = torch.Generator().manual_seed(seed)
    counts, true_counts, named, recalled, chance = [], [], [], [], []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        caption = encode_values(model.config.spec("caption"), tokenizers["caption"], [s["caption"] for s in batch])
        ids = generate_target(model, {"caption": caption}, "centres", target, generator)
        for i, sample in enumerate(batch):
            made, own = object_labels(ids[i], tokenizers["centres"]), set(captioned_labels(sample))
            other = set(captioned_labels(batch[(i + 1) % len(batch)]))
            counts.append(len(made))
            true_counts.append(len(sample["scene"]["objects"]))
            named.append(sum(label in own for label in made) / max(len(made), 1))
            chance.append(sum(label in other for label in made) / max(len(made), 1))
            recalled.append(len(own & set(made)) / len(own))
    mean = lambda xs: sum(xs) / len(xs)
    return {"cfg_scale": scale, "temperature": temperature, "objects": mean(counts), "true_objects": mean(true_counts),
            "named": mean(named), "by_chance": mean(chance), "recalled": mean(recalled)}


def main() -> int:
    parser = binding_parser(__doc__, [1.0, 1.5, 3.0])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--top-p", type=float, default=0.9,
                        help="nucleus; below 1 it can cut every object id where 'no object' holds most of a cell's mass")
    args = parser.parse_args()
    torch.set_num_threads(2)
    for scale in args.cfg:
        r = placements(args.model, args.split, args.samples, scale, args.temperature, args.steps, args.top_p)
        print(f"cfg {scale:g}, temperature {args.temperature:g}, top-p {args.top_p:g}: objects {r['objects']:.2f} per sample "
              f"(scene {r['true_objects']:.2f}); named by the caption {r['named']:.3f} (another caption's "
              f"{r['by_chance']:.3f}); caption's labels recalled {r['recalled']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
