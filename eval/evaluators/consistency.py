"""Generation consistency: caption -> image -> segmentation, checked against the caption's scene
graph. For each sample: generate the `via` image tokens from the `inputs` (the caption), decode
them to RGB, predict the `target` class map from the generated image tokens with the same
model (which also reads the decoded image through the `via_views` tokenizers, e.g. rgb_grid, as
it reads a real image), decode it, then check every object of the sample's scene graph (`scene.json`):

    class present:   the object's shape class (its index in the manifest's class_names) covers
                     at least `min_pixels` pixels of the predicted map;
    colour present:  at least `min_pixels` of those pixels have, in the generated image, the
                     object's colour as their nearest colour of the manifest's palette, nearest
                     by the direction of the RGB vector (Euclidean distance between unit-length
                     RGB vectors), so that Lambert shading, which scales a colour, does not
                     change it (on the real val images at 64x64 this finds 98% of the objects,
                     plain RGB distance 96%).
    consistency      = objects with class and colour present / all objects (pooled)
    reference_consistency = the same check on the real image and its true segmentation (the
                     metric's ceiling: small or occluded objects can fail it even there)
    class_recall     = objects with class present / all objects
    sample_all_present = fraction of samples where every object is class-and-colour present
"""
from __future__ import annotations

import numpy as np
import torch

from eval.context import EvalContext
from eval.evaluators.caption import scene_objects


def _direction(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float64)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)


def nearest_colour(image: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> (H, W) index of the palette colour (palette (K, 3)) whose RGB direction
    is nearest (black pixels have no direction and go to colour 0)."""
    d = ((_direction(image)[:, :, None, :] - _direction(palette)[None, None]) ** 2).sum(-1)  # (H, W, K)
    return d.argmin(-1)


def check_objects(objects, seg: np.ndarray, colour_index: np.ndarray, class_names, colour_names, min_pixels: int):
    """[(class present, colour present)] for each (colour, shape) object."""
    out = []
    for colour, shape in objects:
        region = seg == class_names.index(shape) if shape in class_names else np.zeros_like(seg, dtype=bool)
        has_class = int(region.sum()) >= min_pixels
        has_colour = has_class and colour in colour_names and \
            int((colour_index[region] == colour_names.index(colour)).sum()) >= min_pixels
        out.append((has_class, has_colour))
    return out


def reencoded_views(model, ctx: EvalContext, images: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """The generated images (uint8 (H, W, 3) each) tokenized by every `via_views` modality, as a
    real image would be: {modality: (B, N) ids}."""
    from eval.context import encode_values

    return {name: encode_values(model.config.spec(name), ctx.tokenizers[name], images).to(ctx.device)
            for name in ctx.cfg.via_views}


@torch.no_grad()
def run(model, ctx: EvalContext) -> dict:
    from eval.visuals import colorize_classes, rgb_to_uint8, write_grid
    from fourm.generation import generate_target

    cfg = ctx.cfg
    image_spec, seg_spec = model.config.spec(cfg.via), model.config.spec(cfg.target)
    class_names = [c.lower() for c in ctx.class_names(seg_spec)]
    palette = ctx.manifest.get("palette")
    if not palette:
        raise ValueError(f"{cfg.data}: consistency needs the colour palette of the data's manifest.json")
    colour_names, colours = [c.lower() for c in palette], np.array(list(palette.values()), dtype=np.uint8)
    checks, per_sample, rows, reference = [], [], [], []
    for batch in ctx.batches():
        objects = [scene_objects(s) for s in batch]
        # The same check on the real image and its true segmentation: the ceiling of the metric.
        for objs, image, seg in zip(objects, ctx.values(batch, image_spec), ctx.values(batch, seg_spec)):
            reference += check_objects(objs, np.asarray(seg), nearest_colour(np.asarray(image)[..., :3], colours),
                                       class_names, colour_names, cfg.min_pixels)
        conds = ctx.conditions(batch, model, cfg.inputs)
        image_ids = generate_target(model, conds, image_spec.name, ctx.target_config(model, image_spec.name), ctx.generator)
        images = [rgb_to_uint8(x) for x in ctx.decode(image_spec, image_ids)]
        seg_ids = generate_target(model, {image_spec.name: image_ids, **reencoded_views(model, ctx, images)},
                                  seg_spec.name, ctx.target_config(model, seg_spec.name), ctx.generator)
        segs = [np.asarray(x) for x in ctx.decode(seg_spec, seg_ids)]
        for sample, objs, image, seg in zip(batch, objects, images, segs):
            if image.shape[:2] != seg.shape:
                from PIL import Image

                image = np.asarray(Image.fromarray(image).resize(seg.shape[::-1], Image.BILINEAR))
            result = check_objects(objs, seg, nearest_colour(image, colours), class_names, colour_names, cfg.min_pixels)
            checks += result
            per_sample.append(all(c and k for c, k in result))
            if len(rows) < cfg.examples:
                rows.append([str(ctx.values([sample], model.config.spec(cfg.inputs[0]))[0]), image,
                             colorize_classes(np.clip(seg, 0, 255), num_classes=max(len(class_names), 8)),
                             f"{sum(c and k for c, k in result)}/{len(result)} objects"])
    path = write_grid(ctx.out_dir / "consistency_examples.png", rows, ["caption", "generated", "segmentation", "consistent"])
    ctx.add_figure(path, "caption | generated image | segmentation predicted from it | objects found")
    n = len(checks)
    return {"consistency": sum(c and k for c, k in checks) / n if n else None,
            "class_recall": sum(c for c, _ in checks) / n if n else None,
            "sample_all_present": sum(per_sample) / len(per_sample) if per_sample else None,
            "reference_consistency": sum(c and k for c, k in reference) / len(reference) if reference else None,
            "objects": n, "samples": len(per_sample)}
