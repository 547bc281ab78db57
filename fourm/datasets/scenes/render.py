"""Render one scene: one ray per pixel centre gives exactly aligned RGB, depth, segmentation and
normals. Shading is Lambert under one directional light, with shadow rays for cast shadows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fourm.datasets.scenes.raycast import FLOOR, NO_HIT, nearest_hit, shadow_candidates, surface_normals
from fourm.datasets.scenes.world import CLASS_INDEX, Scene, colorseg_label

SHADOW_OFFSET = 1e-4  # start shadow rays this far off the surface so they do not hit it again
FLOOR_ALBEDO = 0.62
FLOOR_TILE_CONTRAST = 0.05  # a faint 1 m checkerboard gives the floor perspective cues
SKY_HORIZON, SKY_ZENITH = np.array([0.86, 0.87, 0.88]), np.array([0.55, 0.66, 0.85])


@dataclass
class Rendering:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, z-depth in metres, 0 where nothing is hit
    semseg: np.ndarray  # (H, W) uint8 class index (world.CLASS_NAMES)
    colorseg: np.ndarray  # (H, W) uint8 shape-and-colour label (world.COLORSEG_NAMES)
    normals: np.ndarray  # (H, W, 3) float32 unit normals, camera frame, 0 where nothing is hit


def _surfaces(scene: Scene, points, which_hit) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normals (3, K) world frame, albedo (3, K), class (K,) and colorseg label (K,) at hit points (3, K)."""
    k = points.shape[1]
    normals, albedo = np.zeros((3, k)), np.zeros((3, k))
    classes = np.zeros(k, dtype=np.uint8)
    on_floor = which_hit == FLOOR
    normals[2, on_floor] = 1.0
    tiles = (np.floor(points[0, on_floor]) + np.floor(points[1, on_floor])) % 2
    albedo[:, on_floor] = FLOOR_ALBEDO + FLOOR_TILE_CONTRAST * (2 * tiles - 1)
    classes[on_floor] = CLASS_INDEX["floor"]
    for index, obj in enumerate(scene.objects):
        sel = np.flatnonzero(which_hit == index)
        if sel.size:
            normals[:, sel] = surface_normals(obj, points[:, sel])
            albedo[:, sel] = np.asarray(obj.rgb, dtype=np.float64)[:, None] / 255.0
            classes[sel] = CLASS_INDEX[obj.shape]
    labels = classes.copy()  # floor keeps its label; each object gets its (shape, colour) label
    for index, obj in enumerate(scene.objects):
        labels[which_hit == index] = colorseg_label(obj.shape, obj.color)
    return normals, albedo, classes, labels


def _shade(scene: Scene, points, normals, albedo) -> np.ndarray:
    """Lambert with cast shadows: colour (3, K) in [0, 1]."""
    light = np.asarray(scene.light.direction, dtype=np.float64)
    lambert = np.maximum(light @ normals, 0.0)  # (K,)
    facing = np.flatnonzero(lambert > 0)
    if facing.size:  # only surfaces facing the light can be shadowed by something
        origins = points[:, facing] + SHADOW_OFFSET * normals[:, facing]
        bands = shadow_candidates(origins, light, scene.objects)
        _, blocker = nearest_hit(origins, light[:, None], scene.objects, bands, with_floor=False)
        lambert[facing[blocker != NO_HIT]] = 0.0
    return albedo * (scene.light.ambient + scene.light.diffuse * lambert)


def _sky(directions) -> np.ndarray:
    """Background colour (3, M) from how far each ray points up."""
    up = np.clip(directions[2], 0.0, 1.0) ** 0.5
    return SKY_HORIZON[:, None] * (1 - up) + SKY_ZENITH[:, None] * up


def render(scene: Scene, height: int, width: int) -> Rendering:
    camera = scene.camera
    directions = camera.pixel_rays(height, width)  # (3, N)
    origin = np.asarray(camera.position, dtype=np.float64)[:, None]  # (3, 1)
    boxes = [camera.pixel_box(o.position, o.bounding_radius, height, width) for o in scene.objects]
    t, which = nearest_hit(origin, directions, scene.objects, boxes)
    hit = np.flatnonzero(which != NO_HIT)
    points = origin + directions[:, hit] * t[hit]  # (3, K)
    normals_hit, albedo, classes_hit, labels_hit = _surfaces(scene, points, which[hit])

    n = directions.shape[1]
    colour = _sky(directions)
    colour[:, hit] = _shade(scene, points, normals_hit, albedo)
    depth = np.zeros(n)
    depth[hit] = t[hit] * (camera.axes()[2] @ directions[:, hit])
    semseg = np.zeros(n, dtype=np.uint8)
    semseg[hit] = classes_hit
    colorseg = np.zeros(n, dtype=np.uint8)
    colorseg[hit] = labels_hit
    normals = np.zeros((3, n))
    normals[:, hit] = camera.world_to_camera_rotation() @ normals_hit

    rgb = np.clip(np.round(colour * 255.0), 0, 255).astype(np.uint8)
    return Rendering(
        rgb=rgb.T.reshape(height, width, 3),
        depth=depth.astype(np.float32).reshape(height, width),
        semseg=semseg.reshape(height, width),
        colorseg=colorseg.reshape(height, width),
        normals=normals.T.astype(np.float32).reshape(height, width, 3),
    )
