"""A CLEVR-like procedural world rendered by a numpy ray caster, with exactly aligned RGB, depth,
semantic segmentation, surface normals, a caption and the scene graph for every sample.

    world.py     scene graph: palette, shapes, sizes, non-overlapping placement, camera, light
    camera.py    pinhole camera: axes, pixel rays, intrinsics
    raycast.py   ray / shape intersections, surface normals, the nearest hit per ray
    render.py    one scene -> aligned RGB, depth, segmentation, normals (Lambert + shadows)
    captions.py  scene graph -> varied English caption
    generate.py  sample i of a split -> shard files; shards, resume, manifest

Conventions (also written into every manifest.json):
    world frame   metres, z up, floor at z = 0
    depth         z-depth along the camera's optical axis, metres, float32; 0 where nothing is hit
    normals       camera frame (x right, y up, z towards the camera), unit; 0 where nothing is hit;
                  PNG uint8 = round(n * 127.5 + 127.5), so background is (128, 128, 128)
    semseg        uint8: 0 background, 1 floor, 2 sphere, 3 cube, 4 cylinder, 5 cone
    colorseg      uint8: 0 background, 1 floor, then 2 + shape * 8 + colour (COLORSEG_NAMES)
"""
from fourm.datasets.scenes.world import CLASS_NAMES, PALETTE, SHAPES, GENERATOR_VERSION  # noqa: F401
