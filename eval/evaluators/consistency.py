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
    mismatched_consistency = the check of each generated image against another sample's caption
                     (the next in its batch): the chance level; consistency means something only
                     well above it
    judge_consistency = the check on the real image with the judge's segmentation of it: the
                     ceiling of the judge (a weak rgb -> semseg misses objects a perfect generator drew)
    reconstruction_consistency = the check (judge's segmentation) on the real image passed through
                     the `via` tokenizer, decode(encode(image)): the ceiling of the image tokens a
                     generator writes (a perfect FourM can draw no better than its tokenizer)

The judge that segments the images is the model itself (its rgb -> semseg), or with `judge` a
U-Net baseline trained on the real images (eval/baselines): independent of the generator, and
far stronger than a tiny FourM's own segmentation (on the quickstart model, judge_consistency
0.12 for the model itself).

With `plan` (e.g. semseg), those targets are generated from the caption first and condition the
image: the chained route caption -> semseg -> rgb, judged the same way.

The inputs need not be a caption: the objects checked are always the sample's scene graph, so
from the true layout (inputs [colorseg]) the check scores the image step of a route alone.
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


def generate_images(model, ctx: EvalContext, batch) -> tuple[torch.Tensor, list[np.ndarray]]:
    """The `plan` targets, then the `via` image, from the inputs -> (image ids (B, N), uint8
    images (H, W, 3))."""
    from eval.visuals import rgb_to_uint8
    from fourm.generation import generate_target

    image_spec = model.config.spec(ctx.cfg.via)
    conds = ctx.conditions(batch, model, ctx.cfg.inputs)
    for step in ctx.cfg.plan:  # generated planning targets join the conditions of the image
        conds[step.modality] = generate_target(model, seen_by(step, conds), step.modality, step, ctx.generator)
    image_step = ctx.target_config(model, image_spec.name)
    image_ids = generate_target(model, seen_by(image_step, conds), image_spec.name, image_step, ctx.generator)
    return image_ids, [rgb_to_uint8(x) for x in ctx.decode(image_spec, image_ids)]


def seen_by(step, conds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The conditions a target sees: its `condition_on` names (checked against the inputs and plan
    when the config loads), or all of them (as in `fourm generate`)."""
    return {n: v for n, v in conds.items() if not step.condition_on or n in step.condition_on}


def predict_segmentation(model, ctx: EvalContext, image_ids: torch.Tensor, images: list[np.ndarray]) -> list[np.ndarray]:
    """The target class maps (H, W) the model predicts from images alone (their `via` tokens and
    their `via_views` re-tokenization)."""
    from fourm.generation import generate_target

    seg_spec = model.config.spec(ctx.cfg.target)
    conds = {ctx.cfg.via: image_ids, **reencoded_views(model, ctx, images)}
    seg_ids = generate_target(model, conds, seg_spec.name, ctx.target_config(model, seg_spec.name), ctx.generator)
    return [np.asarray(x) for x in ctx.decode(seg_spec, seg_ids)]


def image_segmenter(model, ctx: EvalContext):
    """f(image ids (B, N), uint8 images [(H, W, 3)]) -> class maps [(H, W)]: the U-Net baseline of
    `judge` (trained on real images: an independent judge), else the model's own prediction."""
    if not ctx.cfg.judge:
        return lambda image_ids, images: predict_segmentation(model, ctx, image_ids, images)
    from eval.baselines.data import rgb_to_input
    from eval.baselines.evaluate import predict
    from eval.baselines.train_unet import load_unet_baseline
    from fourm.paths import resolve

    folder = resolve(ctx.cfg.judge)
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"judge: {folder} holds no trained U-Net (model.safetensors); train it with "
                         f"python -m eval.baselines.train_unet --config configs/baselines/unet_semseg.yaml")
    unet, unet_cfg = load_unet_baseline(folder, ctx.device)
    if unet_cfg.task != "semseg":
        raise ValueError(f"judge: {folder} is a {unet_cfg.task} U-Net, consistency needs a semseg one")
    size = (unet_cfg.data.resolution,) * 2

    def segment(image_ids, images):
        rgb = torch.from_numpy(np.stack([resized(im, size) for im in images])).permute(0, 3, 1, 2)  # uint8 (B, 3, H, W)
        return [p.numpy() for p in predict(unet, rgb_to_input(rgb).to(ctx.device), "semseg").cpu()]

    return segment


def resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == shape:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize(shape[::-1], Image.BILINEAR))


@torch.no_grad()
def run(model, ctx: EvalContext) -> dict:
    from eval.visuals import colorize_classes, write_grid

    cfg = ctx.cfg
    image_spec, seg_spec = model.config.spec(cfg.via), model.config.spec(cfg.target)
    input_spec = model.config.spec(cfg.inputs[0])  # shown in the example rows
    class_names = [c.lower() for c in ctx.class_names(seg_spec)]
    palette = ctx.manifest.get("palette")
    if not palette:
        raise ValueError(f"{cfg.data}: consistency needs the colour palette of the data's manifest.json")
    colour_names, colours = [c.lower() for c in palette], np.array(list(palette.values()), dtype=np.uint8)

    def check(objs, image, seg):
        image = resized(np.asarray(image)[..., :3], seg.shape)
        return check_objects(objs, seg, nearest_colour(image, colours), class_names, colour_names, cfg.min_pixels)

    segment = image_segmenter(model, ctx)  # a missing judge fails here, before any generation
    checks, per_sample, rows, reference, judge, mismatched, rebuilt = [], [], [], [], [], [], []
    for batch in ctx.batches():
        objects = [scene_objects(s) for s in batch]
        real_images = [np.asarray(x)[..., :3] for x in ctx.values(batch, image_spec)]
        # The same check on the real image and its true segmentation: the ceiling of the metric;
        # with the judge's segmentation of the real image: the ceiling of the judge.
        reference += [c for o, im, seg in zip(objects, real_images, ctx.values(batch, seg_spec)) for c in check(o, im, np.asarray(seg))]
        real_ids = ctx.encode(batch, image_spec).to(ctx.device)  # (B, N); a U-Net judge reads pixels only
        real_segs = segment(real_ids, real_images)
        judge += [c for o, im, seg in zip(objects, real_images, real_segs) for c in check(o, im, seg)]
        rebuilt += reconstruction_checks(ctx, real_ids, image_spec, objects, segment, check)
        image_ids, images = generate_images(model, ctx, batch)
        segs = segment(image_ids, images)
        # Chance level: each image checked against another sample's caption (the next in the batch).
        if len(batch) > 1:
            mismatched += [c for o, im, seg in zip(objects[1:] + objects[:1], images, segs) for c in check(o, im, seg)]
        for sample, objs, image, seg in zip(batch, objects, images, segs):
            result = check(objs, image, seg)
            checks += result
            per_sample.append(all(c and k for c, k in result))
            if len(rows) < cfg.examples:
                rows.append([input_tile(input_spec, ctx.values([sample], input_spec)[0]), image,
                             colorize_classes(np.clip(seg, 0, 255), num_classes=max(len(class_names), 8)),
                             f"{sum(c and k for c, k in result)}/{len(result)} objects"])
    path = write_grid(ctx.out_dir / "consistency_examples.png", rows, [cfg.inputs[0], "generated", "segmentation", "consistent"])
    ctx.add_figure(path, f"{cfg.inputs[0]} | generated image | segmentation predicted from it | objects found")
    return {"consistency": _both(checks), "class_recall": _first(checks),
            "sample_all_present": sum(per_sample) / len(per_sample) if per_sample else None,
            "reference_consistency": _both(reference), "judge_consistency": _both(judge),
            "judge_class_recall": _first(judge), "reconstruction_consistency": _both(rebuilt),
            "mismatched_consistency": _both(mismatched),
            "objects": len(checks), "samples": len(per_sample)}


def input_tile(spec, value):
    """The first input of an example row: a caption as its text, any other modality as its picture."""
    from fourm.generation.outputs import preview_image

    return str(value) if spec.kind == "text" else preview_image(spec, value)


def reconstruction_checks(ctx: EvalContext, ids: torch.Tensor, image_spec, objects, segment, check) -> list:
    """The check on decode(ids) for the real images' `via` token ids (B, N), segmented by the judge."""
    from eval.visuals import rgb_to_uint8

    images = [rgb_to_uint8(x) for x in ctx.decode(image_spec, ids)]
    return [c for o, im, seg in zip(objects, images, segment(ids, images)) for c in check(o, im, seg)]


def _both(checks) -> float | None:
    """Fraction of objects with class and colour present."""
    return sum(c and k for c, k in checks) / len(checks) if checks else None


def _first(checks) -> float | None:
    """Fraction of objects with class present."""
    return sum(c for c, _ in checks) / len(checks) if checks else None
