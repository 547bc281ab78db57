"""A pinhole camera looking at a point, in a z-up world.

Pixel (row i, col j) looks through its centre: with f = (H / 2) / tan(fov_y / 2),
    u = (j + 0.5 - W / 2) / f,   v = (H / 2 - i - 0.5) / f,
    ray direction = normalize(forward + u * right + v * up).
The camera frame is OpenGL-like: x = right, y = up, z = -forward (towards the viewer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WORLD_UP = np.array([0.0, 0.0, 1.0])
_CUBE_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross is ~10x slower than this for single 3-vectors
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


@dataclass(frozen=True)
class Camera:
    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    fov_y_deg: float

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, up, forward) unit vectors in the world frame, each (3,)."""
        if "_axes" not in self.__dict__:  # cached: called per object and per pixel batch
            forward = np.subtract(self.look_at, self.position).astype(np.float64)
            forward /= math.sqrt(forward @ forward)
            right = _cross(forward, WORLD_UP)
            right /= math.sqrt(right @ right)
            object.__setattr__(self, "_axes", (right, _cross(right, forward), forward))
        return self.__dict__["_axes"]

    def world_to_camera_rotation(self) -> np.ndarray:
        """(3, 3) R with rows right, up, -forward: n_camera = R @ n_world."""
        right, up, forward = self.axes()
        return np.stack([right, up, -forward])

    def focal_px(self, height: int) -> float:
        return (height / 2) / math.tan(math.radians(self.fov_y_deg) / 2)

    def intrinsics(self, height: int, width: int) -> dict:
        """fx, fy, cx, cy in pixels (pixel centres at integer + 0.5)."""
        f = self.focal_px(height)
        return {"fx": f, "fy": f, "cx": width / 2, "cy": height / 2}

    def pixel_rays(self, height: int, width: int) -> np.ndarray:
        """Unit ray directions for every pixel, row-major: (3, H * W)."""
        right, up, forward = self.axes()
        f = self.focal_px(height)
        u = (np.arange(width) + 0.5 - width / 2) / f  # (W,)
        v = (height / 2 - np.arange(height) - 0.5) / f  # (H,)
        dirs = (forward[:, None, None] + right[:, None, None] * u[None, None, :]
                + up[:, None, None] * v[None, :, None])  # (3, H, W)
        dirs = dirs.reshape(3, -1)
        return dirs / np.sqrt((dirs * dirs).sum(0))

    def project(self, point: np.ndarray, height: int, width: int) -> tuple[float, float, float]:
        """World point (3,) -> (row, col, z-depth); row/col are continuous pixel coordinates."""
        right, up, forward = self.axes()
        rel = np.asarray(point, dtype=np.float64) - np.asarray(self.position)
        depth = float(rel @ forward)
        f = self.focal_px(height)
        col = width / 2 + f * float(rel @ right) / depth
        row = height / 2 - f * float(rel @ up) / depth
        return row, col, depth

    def pixel_box(self, centre, radius: float, height: int, width: int) -> np.ndarray:
        """Row-major indices of the pixels whose rays can meet the sphere (centre, radius): the
        pixel rectangle around the projected corners of the cube holding the sphere (a projected
        convex set lies inside the hull of its projected corners, the camera being outside it)."""
        right, up, forward = self.axes()
        corners = np.asarray(centre, dtype=np.float64) + radius * _CUBE_CORNERS - np.asarray(self.position)  # (8, 3)
        depth = corners @ forward
        if np.any(depth <= 0):  # a corner behind the camera: the projection is unbounded
            return np.arange(height * width)
        f = self.focal_px(height)
        cols = width / 2 + f * (corners @ right) / depth
        rows = height / 2 - f * (corners @ up) / depth
        # pixel j's ray passes through column j + 0.5: keep j with c_min <= j + 0.5 <= c_max
        c0, c1 = max(int(np.ceil(cols.min() - 0.5)), 0), min(int(np.floor(cols.max() - 0.5)), width - 1)
        r0, r1 = max(int(np.ceil(rows.min() - 0.5)), 0), min(int(np.floor(rows.max() - 0.5)), height - 1)
        if c0 > c1 or r0 > r1:
            return np.zeros(0, dtype=np.int64)
        return (np.arange(r0, r1 + 1)[:, None] * width + np.arange(c0, c1 + 1)[None, :]).ravel()

    def to_dict(self, height: int, width: int) -> dict:
        right, up, forward = self.axes()
        return {
            "position": [float(x) for x in self.position],
            "look_at": [float(x) for x in self.look_at],
            "fov_y_deg": float(self.fov_y_deg),
            "height": height,
            "width": width,
            "intrinsics": self.intrinsics(height, width),
            "world_to_camera_rotation": self.world_to_camera_rotation().tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(tuple(d["position"]), tuple(d["look_at"]), d["fov_y_deg"])
