"""The scene graph: which objects stand where, seen by which camera, lit by which light.

World frame: metres, z up, an infinite-looking but finite square floor at z = 0. Every object
stands on the floor; its `position` is the centre of its bounding box, so z = height / 2.
    sphere    radius r
    cube      half edge r, turned by `yaw_deg` about z
    cylinder  radius r, height 2r
    cone      base radius r, height 2r, apex up
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fourm.datasets.scenes.camera import Camera

# scenes-2: objects.txt names each object by size and its colour-shape label ("small greensphere r5 c2")
GENERATOR_VERSION = "scenes-2"

SHAPES = ("sphere", "cube", "cylinder", "cone")
CLASS_NAMES = ("background", "floor") + SHAPES
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}

# Named colours (sRGB, 0-255); objects in one scene have distinct colours, so "the red cube" is unique.
PALETTE = {
    "red": (173, 35, 35),
    "green": (29, 140, 52),
    "blue": (42, 75, 215),
    "yellow": (230, 200, 40),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "orange": (240, 130, 30),
    "gray": (120, 120, 120),
}
SIZES = {"small": 0.35, "large": 0.7}  # r in metres
COLOR_NAMES, SIZE_NAMES = tuple(PALETTE), tuple(SIZES)
# The colour-and-shape segmentation (`colorseg`): one label per (shape, colour) after background
# and floor. Colours are distinct within a scene, so a label is one object, named as the caption
# names it ("red cube").
COLORSEG_NAMES = ("background", "floor") + tuple(f"{c} {s}" for s in SHAPES for c in COLOR_NAMES)


def colorseg_label(shape: str, color: str) -> int:
    return 2 + SHAPES.index(shape) * len(COLOR_NAMES) + COLOR_NAMES.index(color)


FLOOR_HALF_SIZE = 7.0  # floor is the square |x|, |y| <= this
PLACEMENT_HALF_SIZE = 2.4  # object centres lie in |x|, |y| <= this
MIN_GAP = 0.12  # metres between the footprints of two objects
N_OBJECTS = (2, 6)  # inclusive range


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    radius: float
    position: tuple[float, float, float]  # bounding-box centre
    yaw_deg: float = 0.0

    @property
    def rgb(self) -> tuple[int, int, int]:
        return PALETTE[self.color]

    @property
    def height(self) -> float:
        return 2.0 * self.radius

    @property
    def footprint_radius(self) -> float:
        """Radius of a circle on the floor that holds the object (a turned cube needs its diagonal)."""
        return self.radius * (math.sqrt(2.0) if self.shape == "cube" else 1.0)

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere about `position` that holds the object (for ray culling)."""
        return self.radius * {"sphere": 1.0, "cube": math.sqrt(3.0)}.get(self.shape, math.sqrt(2.0))

    def to_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color, "rgb": list(self.rgb), "size": self.size,
                "radius": self.radius, "height": self.height, "position": [float(x) for x in self.position],
                "yaw_deg": self.yaw_deg}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneObject":
        return cls(d["shape"], d["color"], d["size"], d["radius"], tuple(d["position"]), d.get("yaw_deg", 0.0))


@dataclass(frozen=True)
class Light:
    direction: tuple[float, float, float]  # unit vector from the scene towards the (directional) light
    ambient: float = 0.35
    diffuse: float = 0.75


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    camera: Camera
    light: Light


def _sample_objects(rng: np.random.Generator) -> list[SceneObject]:
    """2-6 objects with distinct colours at non-overlapping floor positions (rejection sampling)."""
    while True:
        n = int(rng.integers(N_OBJECTS[0], N_OBJECTS[1] + 1))
        colors = [COLOR_NAMES[i] for i in rng.permutation(len(COLOR_NAMES))[:n]]
        objects: list[SceneObject] = []
        for color in colors:
            shape = SHAPES[rng.integers(len(SHAPES))]
            size = SIZE_NAMES[rng.integers(len(SIZE_NAMES))]
            yaw = round(float(rng.uniform(0, 90)), 2) if shape == "cube" else 0.0
            candidate = SceneObject(shape, color, size, SIZES[size], (0.0, 0.0, SIZES[size]), yaw)
            placed = _place(candidate, objects, rng)
            if placed is None:
                break  # crowded: start the scene over
            objects.append(placed)
        if len(objects) == n:
            return objects


def _place(obj: SceneObject, others: list[SceneObject], rng: np.random.Generator, tries: int = 50):
    """`obj` moved to a random floor position clear of `others`, or None after `tries` attempts."""
    for _ in range(tries):
        x, y = (round(float(v), 3) for v in rng.uniform(-PLACEMENT_HALF_SIZE, PLACEMENT_HALF_SIZE, size=2))
        clear = all(math.hypot(x - o.position[0], y - o.position[1]) >= obj.footprint_radius + o.footprint_radius + MIN_GAP
                    for o in others)
        if clear:
            return SceneObject(obj.shape, obj.color, obj.size, obj.radius, (x, y, obj.radius), obj.yaw_deg)
    return None


def _sample_camera(objects: list[SceneObject], rng: np.random.Generator) -> Camera:
    """Random elevation/azimuth/distance looking at the scene centre; redrawn until every object
    centre projects inside the central 84% of the frame (so the caption never names an object
    that is out of view; one can still hide behind another)."""
    while True:
        elevation = math.radians(rng.uniform(25.0, 60.0))
        azimuth = math.radians(rng.uniform(0.0, 360.0))
        distance = rng.uniform(8.0, 11.0)
        position = (distance * math.cos(elevation) * math.cos(azimuth),
                    distance * math.cos(elevation) * math.sin(azimuth),
                    distance * math.sin(elevation))
        camera = Camera(tuple(round(p, 4) for p in position), (0.0, 0.0, 0.3), 40.0)
        if all(_in_frame(camera, o.position) for o in objects):
            return camera


def _in_frame(camera: Camera, point, margin: float = 0.08) -> bool:
    row, col, depth = camera.project(np.asarray(point), 1, 1)  # normalised image coordinates
    return depth > 0 and margin <= row <= 1 - margin and margin <= col <= 1 - margin


def _sample_light(rng: np.random.Generator) -> Light:
    elevation = math.radians(rng.uniform(35.0, 65.0))
    azimuth = math.radians(rng.uniform(0.0, 360.0))
    direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return Light(tuple(round(d, 6) for d in direction))


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene; all randomness comes from `rng`."""
    objects = _sample_objects(rng)
    camera = _sample_camera(objects, rng)
    return Scene(tuple(objects), camera, _sample_light(rng))


def scene_to_dict(scene: Scene, height: int, width: int) -> dict:
    """The scene graph as JSON-ready dict (what `<key>.scene.json` holds)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "objects": [o.to_dict() for o in scene.objects],
        "camera": scene.camera.to_dict(height, width),
        "light": {"type": "directional", "direction": list(scene.light.direction),
                  "ambient": scene.light.ambient, "diffuse": scene.light.diffuse},
        "floor": {"z": 0.0, "half_size": FLOOR_HALF_SIZE},
        "frame": "world: metres, z up",
    }


def scene_from_dict(d: dict) -> Scene:
    light = d["light"]
    return Scene(tuple(SceneObject.from_dict(o) for o in d["objects"]), Camera.from_dict(d["camera"]),
                 Light(tuple(light["direction"]), light["ambient"], light["diffuse"]))
