"""Ray / shape intersections, vectorised over rays.

Rays are (origin, direction) arrays of shape (3, M) or (3, 1) (broadcast against each other);
directions are unit length. A hit distance is the smallest t > EPS along the ray, np.inf on a miss.
Shapes stand on the floor, so the bottom faces of cylinders and cones (at z = 0) can never be
seen or cast a shadow on anything above the floor: they are not tested.
"""
from __future__ import annotations

import math

import numpy as np

from fourm.datasets.scenes.world import FLOOR_HALF_SIZE, SceneObject

EPS = 1e-5
NO_HIT = -1  # object index for a ray that hits nothing
FLOOR = -2  # object index for a ray that hits the floor


def _smallest_valid_root(a, b, c, valid_at) -> np.ndarray:
    """Smallest t > EPS among the roots of a t^2 + b t + c = 0 for which valid_at(t) holds."""
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        t0 = (-b - sq) / (2 * a)
        t1 = (-b + sq) / (2 * a)
    lo, hi = np.minimum(t0, t1), np.maximum(t0, t1)
    lo_ok = (disc >= 0) & (lo > EPS) & valid_at(lo)
    hi_ok = (disc >= 0) & (hi > EPS) & valid_at(hi)
    return np.where(lo_ok, lo, np.where(hi_ok, hi, np.inf))


def _local(obj: SceneObject, origin, direction):
    """Ray in the object's frame: origin relative to the object's base centre, turned by -yaw."""
    x, y = obj.position[0], obj.position[1]
    ox, oy, oz = origin[0] - x, origin[1] - y, origin[2]
    dx, dy, dz = direction[0], direction[1], direction[2]
    if obj.yaw_deg:
        c, s = math.cos(math.radians(obj.yaw_deg)), math.sin(math.radians(obj.yaw_deg))
        ox, oy = c * ox + s * oy, -s * ox + c * oy
        dx, dy = c * dx + s * dy, -s * dx + c * dy
    return (ox, oy, oz), (dx, dy, dz)


def hit_sphere(obj: SceneObject, origin, direction) -> np.ndarray:
    r = obj.radius
    oc = [origin[k] - obj.position[k] for k in range(3)]
    b = oc[0] * direction[0] + oc[1] * direction[1] + oc[2] * direction[2]
    c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - r * r
    return _smallest_valid_root(1.0, 2.0 * b, c, lambda t: True)


def hit_cube(obj: SceneObject, origin, direction) -> np.ndarray:
    """Slab test in the cube's frame (centre at height r)."""
    (ox, oy, oz), (dx, dy, dz) = _local(obj, origin, direction)
    r = obj.radius
    t_near, t_far = -np.inf, np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        for o, d in ((ox, dx), (oy, dy), (oz - r, dz)):
            inv = 1.0 / np.where(np.abs(d) < 1e-12, 1e-12, d)
            t1, t2 = (-r - o) * inv, (r - o) * inv
            t_near = np.maximum(t_near, np.minimum(t1, t2))
            t_far = np.minimum(t_far, np.maximum(t1, t2))
    hit = (t_far >= t_near) & (t_far > EPS)
    return np.where(hit, np.where(t_near > EPS, t_near, t_far), np.inf)


def _hit_top_cap(oz, dz, ox, oy, dx, dy, height, cap_radius) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (height - oz) / dz
    x, y = ox + t * dx, oy + t * dy
    ok = (t > EPS) & (x * x + y * y <= cap_radius * cap_radius)
    return np.where(ok, t, np.inf)


def hit_cylinder(obj: SceneObject, origin, direction) -> np.ndarray:
    (ox, oy, oz), (dx, dy, dz) = _local(obj, origin, direction)
    r, h = obj.radius, obj.height
    a = dx * dx + dy * dy
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - r * r
    side = _smallest_valid_root(a, b, c, lambda t: (oz + t * dz >= 0) & (oz + t * dz <= h))
    return np.minimum(side, _hit_top_cap(oz, dz, ox, oy, dx, dy, h, r))


def hit_cone(obj: SceneObject, origin, direction) -> np.ndarray:
    """Cone x^2 + y^2 = k^2 (h - z)^2, k = r / h, 0 <= z <= h (the quadratic also holds the mirror
    cone above the apex, which the z test removes)."""
    (ox, oy, oz), (dx, dy, dz) = _local(obj, origin, direction)
    r, h = obj.radius, obj.height
    k2 = (r / h) ** 2
    w = h - oz
    a = dx * dx + dy * dy - k2 * dz * dz
    b = 2 * (ox * dx + oy * dy + k2 * w * dz)
    c = ox * ox + oy * oy - k2 * w * w
    return _smallest_valid_root(a, b, c, lambda t: (oz + t * dz >= 0) & (oz + t * dz <= h))


HIT_FUNCTIONS = {"sphere": hit_sphere, "cube": hit_cube, "cylinder": hit_cylinder, "cone": hit_cone}


def hit_floor(origin, direction) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origin[2] / direction[2]
    x, y = origin[0] + t * direction[0], origin[1] + t * direction[1]
    ok = (t > EPS) & (np.abs(x) <= FLOOR_HALF_SIZE) & (np.abs(y) <= FLOOR_HALF_SIZE)
    return np.where(ok, t, np.inf)


def _take(rays: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return rays if rays.shape[1] == 1 else rays[:, idx]


def _near_bounding_sphere(obj: SceneObject, origin, direction, t_best) -> np.ndarray:
    """Positions (into the given rays) of rays that pass through obj's bounding sphere ahead of
    them and enter it before t_best: the true hit is never nearer than the entry, so the other
    rays need no exact test. (A ray starting inside the sphere has a negative entry: kept.)"""
    oc = [obj.position[k] - origin[k] for k in range(3)]
    b = oc[0] * direction[0] + oc[1] * direction[1] + oc[2] * direction[2]
    c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - obj.bounding_radius ** 2
    disc = b * b - c
    sq = np.sqrt(np.maximum(disc, 0.0))
    return np.flatnonzero((disc >= 0) & (b + sq > EPS) & (b - sq < t_best))


def nearest_hit(origin, direction, objects, candidates, with_floor=True) -> tuple[np.ndarray, np.ndarray]:
    """(t (M,), which (M,) int): nearest hit distance and what was hit (object index, FLOOR, NO_HIT).

    candidates[k]: indices of the rays that may meet object k (a cheap superset from the caller,
    e.g. a pixel box); they are narrowed by the bounding sphere, then tested exactly.
    """
    n_rays = max(origin.shape[1], direction.shape[1])
    t_best = hit_floor(origin, direction) if with_floor else np.full(n_rays, np.inf)
    t_best = np.broadcast_to(t_best, (n_rays,)).copy()
    which = np.where(np.isfinite(t_best), FLOOR, NO_HIT)
    for index, obj in enumerate(objects):
        rays = candidates[index]
        if rays.size == 0:
            continue
        rays = rays[_near_bounding_sphere(obj, _take(origin, rays), _take(direction, rays), t_best[rays])]
        if rays.size == 0:
            continue
        t = np.broadcast_to(HIT_FUNCTIONS[obj.shape](obj, _take(origin, rays), _take(direction, rays)), rays.shape)
        closer = t < t_best[rays]
        t_best[rays[closer]] = t[closer]
        which[rays[closer]] = index
    return t_best, which


def shadow_candidates(points: np.ndarray, light: np.ndarray, objects) -> list[np.ndarray]:
    """For rays from points (3, K) towards a directional light (3,): per object, the indices of the
    rays within its bounding radius along one axis perpendicular to the light (a sorted band)."""
    axis = np.cross(light, [0.0, 0.0, 1.0]) if abs(light[2]) < 0.999 else np.array([1.0, 0.0, 0.0])
    axis /= np.linalg.norm(axis)
    coord = axis @ points  # (K,)
    order = np.argsort(coord, kind="stable")
    ordered = coord[order]
    bands = []
    for obj in objects:
        centre = float(axis @ np.asarray(obj.position))
        lo, hi = np.searchsorted(ordered, [centre - obj.bounding_radius, centre + obj.bounding_radius])
        bands.append(order[lo:hi])
    return bands


def surface_normals(obj: SceneObject, points: np.ndarray) -> np.ndarray:
    """Outward unit normals (3, K), world frame, at points (3, K) on the surface of `obj`."""
    x, y = points[0] - obj.position[0], points[1] - obj.position[1]
    z = points[2]
    r, h = obj.radius, obj.height
    if obj.shape == "sphere":
        n = np.stack([x, y, z - obj.position[2]]) / r
    elif obj.shape == "cube":
        n = _cube_normals(obj, x, y, z - r)
    elif obj.shape == "cylinder":
        rho = np.sqrt(x * x + y * y)
        on_cap = np.abs(z - h) < np.abs(rho - r)  # whichever surface the point is closer to
        safe = np.maximum(rho, 1e-12)
        n = np.where(on_cap, np.array([[0.0], [0.0], [1.0]]), np.stack([x / safe, y / safe, np.zeros_like(z)]))
    else:  # cone: gradient of sqrt(x^2 + y^2) - (r / h)(h - z)
        rho = np.maximum(np.sqrt(x * x + y * y), 1e-12)
        n = np.stack([x / rho, y / rho, np.full_like(z, r / h)])
    return n / np.sqrt((n * n).sum(0))


def _cube_normals(obj: SceneObject, x, y, z) -> np.ndarray:
    """Face normal of the face each point lies on: the axis where |local coordinate| is largest."""
    c, s = math.cos(math.radians(obj.yaw_deg)), math.sin(math.radians(obj.yaw_deg))
    local = np.stack([c * x + s * y, -s * x + c * y, z])  # (3, K)
    axis = np.abs(local).argmax(0)
    n_local = np.zeros_like(local)
    cols = np.arange(local.shape[1])
    n_local[axis, cols] = np.sign(local[axis, cols])
    # back to the world frame: rotate by +yaw
    return np.stack([c * n_local[0] - s * n_local[1], s * n_local[0] + c * n_local[1], n_local[2]])
