"""The procedural scenes dataset: geometry of the written modalities against analytic ray casts
done here from the scene graph alone, determinism, resume, splits, captions."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from fourm.datasets.codecs import decode_normals
from fourm.datasets.scenes.generate import generate_scenes, render_sample
from fourm.datasets.scenes.world import CLASS_NAMES, COLORSEG_NAMES, PALETTE, sample_scene
from fourm.shards import iter_samples, list_shards

RES = 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    generate_scenes(out, n=8, n_val=2, resolution=RES, seed=3, shard_size=4, progress=False)
    return out


@pytest.fixture(scope="module")
def samples(dataset):
    return list(iter_samples(list_shards(dataset / "train")))


# --------------------------------------------------------------------------- analytic reference

def camera_rays(camera: dict):
    """Origin (3,), unit world directions (3, H*W) and forward axis, from intrinsics + rotation."""
    h, w = camera["height"], camera["width"]
    k = camera["intrinsics"]
    rows, cols = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    # camera frame: x right, y up, looking down -z
    d_cam = np.stack([(cols - k["cx"]) / k["fx"], -(rows - k["cy"]) / k["fy"], -np.ones_like(rows)]).reshape(3, -1)
    rot = np.array(camera["world_to_camera_rotation"])  # rows: right, up, back
    d = rot.T @ d_cam
    return np.array(camera["position"]), d / np.linalg.norm(d, axis=0), -rot[2]


def ray_sphere(origin, d, centre, radius):
    """Nearest positive t per ray, inf on a miss."""
    oc = origin[:, None] - np.asarray(centre)[:, None]
    b = (oc * d).sum(0)
    disc = b * b - ((oc * oc).sum(0) - radius * radius)
    t = -b - np.sqrt(np.where(disc >= 0, disc, 0.0))
    return np.where((disc >= 0) & (t > 0), t, np.inf)


def test_depth_normals_segmentation_match_geometry(samples):
    sphere_px = floor_px = 0
    for s in samples:
        graph, camera = s["scene"], s["scene"]["camera"]
        origin, d, forward = camera_rays(camera)
        rot = np.array(camera["world_to_camera_rotation"])
        depth, semseg = s["depth"].reshape(-1), s["semseg"].reshape(-1)
        normals = decode_normals(s["normals"]).reshape(-1, 3).T  # (3, N)
        # background: no depth, zero normal
        bg = semseg == 0
        assert np.all(depth[bg] == 0) and np.all(normals[:, bg] == 0) and np.all(depth[~bg] > 0)
        # floor: the ray/plane z = 0 intersection, normal = world up
        on_floor = semseg == CLASS_NAMES.index("floor")
        t_floor = -origin[2] / d[2]
        np.testing.assert_allclose(depth[on_floor], (t_floor * (forward @ d))[on_floor], rtol=1e-4)
        assert np.all((rot @ [0, 0, 1]) @ normals[:, on_floor] > 0.99)
        floor_px += on_floor.sum()
        # spheres: the nearest analytic sphere hit, normal (p - c) / r
        spheres = [o for o in graph["objects"] if o["shape"] == "sphere"]
        if spheres:
            ts = np.stack([ray_sphere(origin, d, o["position"], o["radius"]) for o in spheres])
            nearest, t = ts.argmin(0), ts.min(0)
            assert not np.any(on_floor & (t < t_floor)), "a pixel behind a sphere is labelled floor"
            on_sphere = np.flatnonzero(semseg == CLASS_NAMES.index("sphere"))
            assert np.all(np.isfinite(t[on_sphere]))
            np.testing.assert_allclose(depth[on_sphere], (t * (forward @ d))[on_sphere], rtol=1e-4)
            centres = np.array([spheres[i]["position"] for i in nearest[on_sphere]]).T
            radii = np.array([spheres[i]["radius"] for i in nearest[on_sphere]])
            n_world = (origin[:, None] + d[:, on_sphere] * t[on_sphere] - centres) / radii
            assert np.all(((rot @ n_world) * normals[:, on_sphere]).sum(0) > 0.99)
            sphere_px += on_sphere.size
        # classes: background/floor plus shapes of the scene graph, nothing else
        allowed = {0, 1} | {CLASS_NAMES.index(o["shape"]) for o in graph["objects"]}
        assert set(np.unique(semseg)) <= allowed and 1 in set(np.unique(semseg))
    assert sphere_px > 0 and floor_px > 0, "the test scenes should contain spheres and floor"


def surface_distance(obj: dict, p: np.ndarray) -> np.ndarray:
    """|signed distance| from points (3, N) to the object's surface (0 on it)."""
    x, y = p[0] - obj["position"][0], p[1] - obj["position"][1]
    z, r, h = p[2], obj["radius"], obj["height"]
    if obj["shape"] == "sphere":
        return np.abs(np.linalg.norm(p - np.array(obj["position"])[:, None], axis=0) - r)
    if obj["shape"] == "cube":
        c, s = math.cos(math.radians(obj["yaw_deg"])), math.sin(math.radians(obj["yaw_deg"]))
        q = np.abs(np.stack([c * x + s * y, -s * x + c * y, z - r])) - r
        return np.abs(np.linalg.norm(np.maximum(q, 0), axis=0) + np.minimum(q.max(0), 0))
    rho = np.hypot(x, y)
    if obj["shape"] == "cylinder":
        q = np.stack([rho - r, np.abs(z - h / 2) - h / 2])
        return np.abs(np.linalg.norm(np.maximum(q, 0), axis=0) + np.minimum(q.max(0), 0))
    on_height = (z >= -1e-6) & (z <= h + 1e-6)  # cone: radius shrinks linearly to the apex
    return np.where(on_height, np.abs(rho - r * (1 - z / h)), np.inf)


def test_every_object_pixel_lies_on_an_object_of_its_class(samples):
    checked = set()
    for s in samples:
        origin, d, forward = camera_rays(s["scene"]["camera"])
        depth, semseg = s["depth"].reshape(-1), s["semseg"].reshape(-1)
        points = origin[:, None] + d * depth / (forward @ d)  # unproject z-depth
        for shape in ("sphere", "cube", "cylinder", "cone"):
            px = np.flatnonzero(semseg == CLASS_NAMES.index(shape))
            objs = [o for o in s["scene"]["objects"] if o["shape"] == shape]
            if px.size:
                dist = np.min([surface_distance(o, points[:, px]) for o in objs], axis=0)
                assert dist.max() < 1e-4, (shape, dist.max())  # float32 depth: ~1e-6 relative
                checked.add(shape)
    assert len(checked) >= 3, checked


def test_colorseg_names_the_object_seen_at_each_pixel(samples):
    """colorseg = semseg's class plus the colour of the object there: the pixel's shaded colour
    points the way of that object's palette colour (Lambert shading only scales the albedo)."""
    checked = 0
    for s in samples:
        semseg, colorseg, rgb = s["semseg"], s["colorseg"], s["rgb"].astype(np.float64)
        assert colorseg.shape == semseg.shape and colorseg.dtype == np.uint8
        names = np.array(COLORSEG_NAMES)[colorseg]
        shapes = np.array([n.split()[-1] for n in names.reshape(-1)]).reshape(names.shape)
        assert (shapes == np.array(CLASS_NAMES)[semseg]).all()  # the same class everywhere
        in_scene = {f"{o['color']} {o['shape']}" for o in s["scene"]["objects"]}
        for label in np.unique(colorseg[colorseg >= 2]):
            name = COLORSEG_NAMES[label]
            assert name in in_scene, (name, in_scene)
            pixels = rgb[colorseg == label]
            pixels = pixels[pixels.sum(1) > 90]  # lit enough that rounding does not turn the colour
            albedo = np.array(PALETTE[name.split()[0]], dtype=np.float64)
            cosine = pixels @ albedo / (np.linalg.norm(pixels, axis=1) * np.linalg.norm(albedo))
            assert cosine.size == 0 or cosine.min() > 0.99, (name, cosine.min())
            checked += 1
    assert checked >= 10


def test_shapes_and_caption_mention_every_object(samples):
    for s in samples:
        assert s["rgb"].shape == (RES, RES, 3) and s["rgb"].dtype == np.uint8
        assert s["depth"].shape == (RES, RES) and s["depth"].dtype == np.float32
        assert s["semseg"].shape == (RES, RES) and s["normals"].shape == (RES, RES, 3)
        for obj in s["scene"]["objects"]:
            assert f"{obj['color']} {obj['shape']}" in s["caption"], (obj, s["caption"])


def test_objects_ground_the_captions_objects_in_its_order(samples):
    from fourm.datasets.scenes.grounding import GROUNDING_GRID, object_cell, parse_grounded_objects
    from fourm.datasets.scenes.world import colorseg_label

    hidden = 0
    for s in samples:
        entries = parse_grounded_objects(s["objects"])
        assert len(entries) == len(s["scene"]["objects"]), s["objects"]
        named_at = [s["caption"].index(f"{size} {colour} {shape}") for size, colour, shape, _ in entries]
        assert named_at == sorted(named_at), (s["caption"], s["objects"])  # the caption's order
        for size, colour, shape, cell in entries:
            ys, xs = np.nonzero(s["colorseg"] == colorseg_label(shape, colour))
            if cell is None:
                hidden += 1
                assert ys.size < 4
                continue
            assert cell == object_cell(s["colorseg"], colorseg_label(shape, colour))
            assert cell == (int(ys.mean() * GROUNDING_GRID / RES), int(xs.mean() * GROUNDING_GRID / RES))
    assert parse_grounded_objects("small redcube r1 c2; blue; large greencone hidden; redcube r9 c1; small redcub r1 c1") == [
        ("small", "red", "cube", (1, 2)), ("large", "green", "cone", None)]


def test_manifest(dataset):
    import json

    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["complete"] and manifest["resolution"] == [RES, RES]
    assert manifest["class_names"] == list(CLASS_NAMES)
    assert [sh["samples"] for sh in manifest["splits"]["train"]["shards"]] == [4, 4]
    assert manifest["splits"]["val"]["count"] == 2


def test_sample_regenerates_alone(samples):
    again = render_sample(3, "train", 5, RES)
    written = next(s for s in samples if s["__key__"] == again.key)
    assert np.array_equal(written["rgb"], again.rendering.rgb)
    assert np.array_equal(written["depth"], again.rendering.depth)
    assert written["caption"] == again.caption


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    generate_scenes(tmp_path / "a", n=8, n_val=2, resolution=RES, seed=3, shard_size=4, progress=False)
    generate_scenes(tmp_path / "b", n=8, n_val=2, resolution=RES, seed=4, shard_size=4, progress=False)
    for rel in ("train/shard-000000.tar", "train/shard-000001.tar", "val/shard-000000.tar", "manifest.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (dataset / rel).read_bytes(), rel
    assert (tmp_path / "b" / "train/shard-000000.tar").read_bytes() != (dataset / "train/shard-000000.tar").read_bytes()


def test_train_and_val_differ(dataset):
    train = [s["scene"] for s in iter_samples(list_shards(dataset / "train"))]
    val = [s["scene"] for s in iter_samples(list_shards(dataset / "val"))]
    assert all(v != t for v in val for t in train)


def test_resume_keeps_finished_shards_and_redoes_temp(dataset, tmp_path):
    out = tmp_path / "r"
    generate_scenes(out, n=8, n_val=2, resolution=RES, seed=3, shard_size=4, progress=False)
    finished = out / "train/shard-000000.tar"
    os.utime(finished, ns=(1, 1))  # a marker: rewriting the shard would change its mtime
    (out / "train/shard-000001.tar").unlink()
    (out / "train/shard-000001.tar.tmp").write_bytes(b"half a shard")  # as left by a killed run
    generate_scenes(out, n=8, n_val=2, resolution=RES, seed=3, shard_size=4, progress=False)
    assert finished.stat().st_mtime_ns == 1
    assert not (out / "train/shard-000001.tar.tmp").exists()
    assert (out / "train/shard-000001.tar").read_bytes() == (dataset / "train/shard-000001.tar").read_bytes()


def test_resume_refuses_other_settings(tmp_path):
    generate_scenes(tmp_path, n=2, n_val=1, resolution=8, seed=0, progress=False)
    with pytest.raises(ValueError, match="resolution"):
        generate_scenes(tmp_path, n=2, n_val=1, resolution=16, seed=0, progress=False)
    manifest = tmp_path / "manifest.json"
    made_before_colorseg = json.loads(manifest.read_text())
    made_before_colorseg["files"].remove("colorseg.png")
    manifest.write_text(json.dumps(made_before_colorseg))
    with pytest.raises(ValueError, match="files="):  # resuming would mix shards with and without it
        generate_scenes(tmp_path, n=2, n_val=1, resolution=8, seed=0, progress=False)


def test_objects_never_overlap_and_colours_distinct():
    for i in range(100):
        objects = sample_scene(np.random.default_rng(i)).objects
        assert 2 <= len(objects) <= 6 and len({o.color for o in objects}) == len(objects)
        for a in objects:
            for b in objects:
                if a is not b:
                    gap = math.dist(a.position[:2], b.position[:2])
                    assert gap >= a.footprint_radius + b.footprint_radius


def test_ray_culling_changes_nothing(monkeypatch):
    """Pixel boxes and shadow bands only skip work: testing every ray gives the same images."""
    from fourm.datasets.scenes import render as render_module
    from fourm.datasets.scenes.camera import Camera

    scenes = [sample_scene(np.random.default_rng((7, i))) for i in range(20)]
    fast = [render_module.render(s, 20, 20) for s in scenes]
    monkeypatch.setattr(Camera, "pixel_box", lambda self, centre, radius, h, w: np.arange(h * w))
    monkeypatch.setattr(render_module, "shadow_candidates",
                        lambda points, light, objects: [np.arange(points.shape[1])] * len(objects))
    for scene, a in zip(scenes, fast):
        b = render_module.render(scene, 20, 20)
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth) and np.array_equal(a.semseg, b.semseg)
