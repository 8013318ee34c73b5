"""Geometry of the sim apartment read from the MuJoCo scene: obstacles, rooms, doorway, free poses.

Everything comes from the compiled model (walls, furniture, floor objects as 2-D axis-aligned
boxes), so the scene file stays the single source. Used to sample start poses for the data, goals
for the evaluation, and to label rooms and door crossings. The planner itself never sees this.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from brs_common import robot_spec as spec

ROBOT_CLEARANCE = 0.45  # m, base centre to any obstacle for a pose to count as free (arms stick out)


@dataclass
class Apartment:
    boxes: np.ndarray  # (N, 4) centre x, y, half extents x, y of static obstacles and floor objects
    names: list[str]
    bounds: np.ndarray  # x_min, x_max, y_min, y_max of the floor inside the outer walls
    door_y: float  # the dividing wall (room A: y < door_y, room B: y > door_y)
    door_x: tuple[float, float]  # the doorway's x range

    @classmethod
    def from_model(cls, model: mujoco.MjModel | None = None, data: mujoco.MjData | None = None) -> "Apartment":
        if model is None:
            from brs_sim.model import load_model

            model = load_model("scene")
        if data is None:
            data = mujoco.MjData(model)
            key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
            if key >= 0:
                mujoco.mj_resetDataKeyframe(model, data, key)
            mujoco.mj_forward(model, data)
        robot = model.body_rootid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, spec.FRAMES["base"])]
        boxes, names = [], []
        floor = None
        for g in range(model.ngeom):
            if model.body_rootid[model.geom_bodyid[g]] == robot:
                continue
            name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}"
            if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE:
                floor = (data.geom_xpos[g][:2].copy(), model.geom_size[g][:2].copy())
                continue
            if not (model.geom_contype[g] or model.geom_conaffinity[g]):
                continue
            half = _half_extents(model, data, g)
            c = data.geom_xpos[g]
            if c[2] - half[2] > 1.8 or c[2] + half[2] < 0.03:  # above the robot or flat on the floor
                continue
            boxes.append([c[0], c[1], half[0], half[1]])
            names.append(name)
        boxes = np.asarray(boxes, float)
        door = _doorway(model, data)
        if floor is not None:
            (cx, cy), (hx, hy) = floor
            bounds = np.array([cx - hx, cx + hx, cy - hy, cy + hy])
        else:
            bounds = np.array([boxes[:, 0].min(), boxes[:, 0].max(), boxes[:, 1].min(), boxes[:, 1].max()])
        return cls(boxes, names, bounds, *door)

    # ------------------------------------------------------------------ queries
    def clearance(self, xy) -> np.ndarray:
        """Distance (m) from points (..., 2) to the nearest obstacle box (0 inside one)."""
        p = np.asarray(xy, float)[..., None, :]
        d = np.maximum(np.abs(p - self.boxes[:, :2]) - self.boxes[:, 2:], 0.0)
        dist = np.linalg.norm(d, axis=-1).min(-1)
        x, y = np.asarray(xy, float)[..., 0], np.asarray(xy, float)[..., 1]
        inside = (x > self.bounds[0]) & (x < self.bounds[1]) & (y > self.bounds[2]) & (y < self.bounds[3])
        return np.where(inside, dist, 0.0)

    def room(self, xy) -> np.ndarray:
        """0 = room A (y < door_y), 1 = room B."""
        return (np.asarray(xy, float)[..., 1] > self.door_y).astype(np.int64)

    def free(self, xy, clearance: float = ROBOT_CLEARANCE) -> np.ndarray:
        return self.clearance(xy) >= clearance

    def sample_free(self, rng: np.random.Generator, n: int, room: int | None = None,
                    clearance: float = ROBOT_CLEARANCE, near_door: float | None = None) -> np.ndarray:
        """n free poses (x, y, yaw): in `room` (0/1, None: either), optionally within `near_door` m
        of the doorway centre."""
        out = []
        x0, x1, y0, y1 = self.bounds
        centre = np.array([np.mean(self.door_x), self.door_y])
        while len(out) < n:
            k = 4 * (n - len(out)) + 16
            if near_door:
                p = centre + rng.uniform(-near_door, near_door, (k, 2))
            else:
                p = np.column_stack([rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)])
            ok = self.free(p, clearance)
            if room is not None:
                ok &= self.room(p) == room
            for q in p[ok]:
                out.append([q[0], q[1], rng.uniform(-np.pi, np.pi)])
        return np.asarray(out[:n])

    def crossings(self, xy: np.ndarray) -> int:
        """Door crossings along a path (T, 2): changes of room."""
        r = self.room(xy)
        return int(np.count_nonzero(np.diff(r)))


def _half_extents(model, data, g) -> np.ndarray:
    """World-frame AABB half extents of geom g."""
    t, s = model.geom_type[g], model.geom_size[g]
    if t == mujoco.mjtGeom.mjGEOM_BOX or t == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
        local = s[:3]
    elif t == mujoco.mjtGeom.mjGEOM_SPHERE:
        local = np.full(3, s[0])
    elif t in (mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_CAPSULE):
        local = np.array([s[0], s[0], s[1] + (s[0] if t == mujoco.mjtGeom.mjGEOM_CAPSULE else 0.0)])
    else:
        return np.full(3, model.geom_rbound[g])
    R = data.geom_xmat[g].reshape(3, 3)
    return np.abs(R) @ local


def _doorway(model, data) -> tuple[float, tuple[float, float]]:
    """(y of the dividing wall, x range of the gap) from the `doorway` site and the wall segments
    at that y."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "doorway")
    if site < 0:
        raise ValueError("scene has no `doorway` site")
    dx, dy = data.site_xpos[site][:2]
    lo, hi = -np.inf, np.inf
    for g in range(model.ngeom):
        if model.geom_bodyid[g] != 0 or model.geom_type[g] != mujoco.mjtGeom.mjGEOM_BOX:
            continue
        c, h = data.geom_xpos[g], _half_extents(model, data, g)
        if abs(c[1] - dy) <= h[1] + 1e-6 and h[0] > h[1]:  # a wall segment along x at the door's y
            if c[0] + h[0] <= dx:
                lo = max(lo, c[0] + h[0])
            elif c[0] - h[0] >= dx:
                hi = min(hi, c[0] - h[0])
    return float(dy), (float(lo), float(hi))
