"""RGB-D images + joint positions -> one fused, cropped, downsampled colour point cloud in base_link.

The ONE perception function of the stack: the perception node calls it on live images, dataset
building calls it on recorded episodes, so policies see the same input in training and on the robot.

    cloud = fuse_point_cloud({"head": (rgb, depth), ...}, joint_positions, crop="bimanual_box")
    cloud.shape == (4096, 6)  # float32: x, y, z in metres (base_link), r, g, b in 0..1

Camera poses come from forward kinematics of the robot-only MuJoCo model (brs_sim "robot") with
the base at the origin, i.e. in base_link: `JointMap.set_state_qpos`, `mujoco.mj_kinematics` and
`mujoco.mj_camlight` (mj_kinematics alone does not update the camera poses).
MuJoCo cameras look along their -z with +y up; images are in the ROS optical frame (z forward,
x right, y down), so R_optical = R_mujoco_camera @ diag(1, -1, -1). Intrinsics are those of
`brs_common.convert.make_camera_info` (what the sim and the camera drivers publish).

CLI: `python -m brs_policy.perception --snapshot out.png` renders the three cameras of the sim scene
and writes a 3-D scatter of the fused cloud.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from brs_common import robot_spec as spec
from brs_common.convert import camera_info_to_K, make_camera_info

from .fps import exact_fps, fast_fps

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering for the sim helpers (before mujoco)

N_POINTS = 4096
PIXEL_STRIDE = 2  # back-project every 2nd row and column (160x120 rays of a 320x240 camera)
FPS_CHUNKS = 96  # fps.fast_fps chunks: 64..96 -> covering radius 1.17-1.21x exact FPS; 128: faster, ~1.23x

# Crop boxes in base_link ((xmin, xmax), (ymin, ymax), (zmin, zmax)) metres; base_link lies on the
# floor at the base centre, x forward, z up. "default" when no task is given.
# Where the task's objects stand on the floor, zmin sits FLOOR_CLEARANCE above it: farthest-point
# sampling spreads points evenly over space, and the floor is most of the space a camera sees
# (with the floor in, 60-90 % of the points were floor and the box got ~10 of 1024 at approach).
FLOOR_CLEARANCE = 0.015  # m: above sensor noise on a flat floor, below the 5 cm block's top
CROP_BOXES: dict[str, tuple[tuple[float, float], ...]] = {
    "default": ((-0.2, 2.5), (-1.5, 1.5), (-0.05, 1.8)),
    # box on the floor ~0.45 m ahead, table 0.8..1.5 m ahead (top at 0.75 m)
    "bimanual_box": ((0.0, 2.0), (-1.0, 1.0), (FLOOR_CLEARANCE, 1.6)),
    # bin in the other room, through the doorway: look far ahead (BRS: x 0..4, y -1..1). The floor
    # stays in: the target is a red spot painted on it
    "trash_to_spot": ((0.0, 4.0), (-1.0, 1.0), (-0.05, 1.6)),
    # block on the floor, top shelf board at 1.5 m
    "floor_to_top_shelf": ((-0.2, 2.0), (-1.5, 1.5), (FLOOR_CLEARANCE, 1.9)),
}


def crop_box(crop) -> np.ndarray:
    """(3, 2) array [[xmin, xmax], [ymin, ymax], [zmin, zmax]] from a task name or a box
    (nested pairs or 6 numbers xmin, xmax, ymin, ymax, zmin, zmax). None -> "default"."""
    if crop is None or crop == "":
        crop = "default"
    if isinstance(crop, str):
        if crop not in CROP_BOXES:
            raise ValueError(f"unknown crop {crop!r}; known: {', '.join(CROP_BOXES)} "
                             "(or give a box ((xmin, xmax), (ymin, ymax), (zmin, zmax)))")
        crop = CROP_BOXES[crop]
    box = np.asarray(crop, dtype=np.float64).reshape(-1)
    if box.size != 6 or not np.all(np.isfinite(box)):
        raise ValueError(f"crop box needs 6 finite numbers (xmin, xmax, ymin, ymax, zmin, zmax); got {crop!r}")
    box = box.reshape(3, 2)
    if np.any(box[:, 0] >= box[:, 1]):
        raise ValueError(f"crop box needs min < max on every axis; got {box.tolist()}")
    return box


class PointCloudFuser:
    """Keeps the FK model and every camera's pixel rays; `fuse` is the fast path.

    Thread-safe (one lock around FK). `cameras`: spec camera names it accepts.
    """

    def __init__(self, cameras: Sequence[str] = tuple(spec.CAMERAS)):
        import mujoco
        from brs_sim.model import JointMap, load_model

        self._mj = mujoco
        self.model = load_model("robot")
        self.data = mujoco.MjData(self.model)
        self.joints = JointMap(self.model)
        self._lock = threading.Lock()
        self._base = self.joints.frames["base"][1]
        self.cameras = tuple(cameras)
        self.rays: dict[str, np.ndarray] = {}
        self._ray_cache: dict[tuple[str, int], np.ndarray] = {}
        self.K: dict[str, np.ndarray] = {}
        self.size: dict[str, tuple[int, int]] = {}  # (height, width) the camera's images must have
        for name in self.cameras:
            if name not in spec.CAMERAS:
                raise ValueError(f"unknown camera {name!r}; spec cameras: {tuple(spec.CAMERAS)}")
            cam = spec.CAMERAS[name]
            self._set_rays(name, camera_info_to_K(make_camera_info(cam)), cam.width, cam.height)

    def _set_rays(self, name: str, K: np.ndarray, width: int, height: int) -> None:
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        # optical-frame ray per pixel with unit z: depth (z along the axis) * ray = point
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1],
                         np.ones_like(u)], axis=-1).reshape(-1, 3).astype(np.float32)
        with self._lock:
            self.K[name], self.size[name], self.rays[name] = K, (int(height), int(width)), rays
            for key in [k for k in self._ray_cache if k[0] == name]:
                del self._ray_cache[key]

    def set_intrinsics(self, name: str, K, width: int, height: int) -> bool:
        """Use a camera's own intrinsics (e.g. from its camera_info) instead of the robot spec's:
        any image size, pinhole K (3x3). True when they changed. ValueError for bad values."""
        if name not in self.rays:
            raise ValueError(f"unknown camera {name!r}; this fuser has {self.cameras}")
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0 and int(width) > 0 and int(height) > 0):
            raise ValueError(f"{name}: intrinsics need fx, fy > 0 and a positive size; got K={K.ravel().tolist()} "
                             f"{width}x{height}")
        if self.size[name] == (int(height), int(width)) and np.array_equal(self.K[name], K):
            return False
        self._set_rays(name, K, int(width), int(height))
        return True

    # ------------------------------------------------------------------ kinematics
    def camera_poses(self, joint_positions) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{camera: (R (3, 3), t (3,))} of every optical frame in base_link: p_base = R p_opt + t."""
        q = np.asarray(joint_positions, dtype=np.float64).reshape(-1)
        if q.size != len(spec.STATE_JOINTS):
            raise ValueError(f"joint_positions: need {len(spec.STATE_JOINTS)} values "
                             f"(spec.STATE_JOINTS order), got {q.size}")
        if not np.all(np.isfinite(q)):
            raise ValueError("joint_positions contain NaN/inf")
        flip = np.diag([1.0, -1.0, -1.0])
        with self._lock:
            self.data.qpos[:] = 0.0  # base joints at zero: world = base_link
            self.joints.set_state_qpos(self.data, q)
            self._mj.mj_kinematics(self.model, self.data)
            self._mj.mj_camlight(self.model, self.data)  # mj_kinematics leaves cam_xmat alone
            Rb = self.data.xmat[self._base].reshape(3, 3).copy()
            tb = self.data.xpos[self._base].copy()
            out = {}
            for name in self.cameras:
                cid = self.joints.cameras[name]
                Rc = self.data.cam_xmat[cid].reshape(3, 3)
                tc = self.data.cam_xpos[cid]
                out[name] = (Rb.T @ Rc @ flip, Rb.T @ (tc - tb))
        return out

    def _strided_rays(self, name: str, stride: int) -> np.ndarray:
        key = (name, stride)
        rays = self._ray_cache.get(key)
        if rays is None:
            h, w = self.size[name]
            rays = np.ascontiguousarray(self.rays[name].reshape(h, w, 3)[::stride, ::stride].reshape(-1, 3))
            self._ray_cache[key] = rays
        return rays

    # ------------------------------------------------------------------ images -> points
    def check_images(self, images: Mapping[str, tuple]) -> None:
        """ValueError naming the camera and the problem for unknown cameras, wrong sizes/dtypes."""
        if not images:
            raise ValueError("no camera images given")
        for name, pair in images.items():
            if name not in self.rays:
                raise ValueError(f"unknown camera {name!r}; this fuser has {self.cameras}")
            h, w = self.size[name]
            rgb, depth = pair
            rgb, depth = np.asarray(rgb), np.asarray(depth)
            if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
                raise ValueError(f"{name}: colour must be uint8 ({h}, {w}, 3); got {rgb.dtype} {rgb.shape}")
            if depth.shape != (h, w) or depth.dtype.kind != "f":
                raise ValueError(f"{name}: depth must be float metres ({h}, {w}); got {depth.dtype} {depth.shape}")

    def back_project(self, images: Mapping[str, tuple], joint_positions, crop=None,
                     pixel_stride: int = PIXEL_STRIDE) -> tuple[np.ndarray, np.ndarray]:
        """All valid pixels of all cameras in base_link, cropped: xyz (N, 3) float32, rgb (N, 3) uint8.

        Depth NaN, inf or <= 0 is invalid. `pixel_stride` > 1 keeps every s-th row and column.
        """
        self.check_images(images)
        box = crop_box(crop).astype(np.float32)
        poses = self.camera_poses(joint_positions)
        xyzs, rgbs = [], []
        s = int(pixel_stride)
        for name, (rgb, depth) in images.items():
            d = np.asarray(depth, dtype=np.float32)
            c = np.asarray(rgb)
            rays = self._strided_rays(name, s)
            if s > 1:
                d, c = d[::s, ::s], c[::s, ::s]
            d = d.reshape(-1)
            valid = np.flatnonzero(d > 0)  # False for NaN
            dv = d[valid]
            finite = np.isfinite(dv)
            if not finite.all():
                valid, dv = valid[finite], dv[finite]
            R, t = poses[name]
            # p_base = R (d * ray) + t, folded: (ray @ R^T) * d + t
            pts = (rays[valid] @ R.T.astype(np.float32)) * dv[:, None]
            pts += t.astype(np.float32)
            inside = ((pts[:, 0] >= box[0, 0]) & (pts[:, 0] <= box[0, 1]) &
                      (pts[:, 1] >= box[1, 0]) & (pts[:, 1] <= box[1, 1]) &
                      (pts[:, 2] >= box[2, 0]) & (pts[:, 2] <= box[2, 1]))
            keep = np.flatnonzero(inside)
            xyzs.append(pts[keep])
            rgbs.append(c.reshape(-1, 3)[valid[keep]])
        return np.concatenate(xyzs), np.concatenate(rgbs)

    def fuse(self, images: Mapping[str, tuple], joint_positions, crop=None, n_points: int = N_POINTS,
             seed=0, sampler: str = "fast", pixel_stride: int = PIXEL_STRIDE, backend: str = "numpy") -> np.ndarray:
        """(n_points, 6) float32 xyz (m, base_link) + rgb (0..1); see `fuse_point_cloud`."""
        xyz, rgb = self.back_project(images, joint_positions, crop, pixel_stride)
        out = np.zeros((n_points, 6), dtype=np.float32)
        if xyz.shape[0] == 0:
            return out  # nothing valid inside the crop: all-zero cloud (caller may count it)
        if sampler == "fast":
            idx = fast_fps(xyz, n_points, seed=seed, backend=backend, chunks=FPS_CHUNKS)
        elif sampler == "exact":
            rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
            idx = exact_fps(xyz, n_points, start=int(rng.integers(xyz.shape[0])))
        elif sampler == "random":
            rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
            idx = rng.choice(xyz.shape[0], n_points, replace=xyz.shape[0] < n_points)
        else:
            raise ValueError(f"unknown sampler {sampler!r}; expected fast, exact or random")
        out[:, :3] = xyz[idx]
        out[:, 3:] = rgb[idx] * np.float32(1.0 / 255.0)
        return out


_DEFAULT: PointCloudFuser | None = None
_DEFAULT_LOCK = threading.Lock()


def default_fuser() -> PointCloudFuser:
    """A process-wide PointCloudFuser for all spec cameras (built on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = PointCloudFuser()
        return _DEFAULT


def fuse_point_cloud(images: Mapping[str, tuple], joint_positions, crop=None,
                     n_points: int = N_POINTS, seed=0, sampler: str = "fast",
                     fuser: PointCloudFuser | None = None, **kwargs) -> np.ndarray:
    """Fused, cropped, downsampled colour point cloud in base_link: (n_points, 6) float32.

    images: {camera: (rgb uint8 (H, W, 3), depth float (H, W) metres, NaN/0 invalid)} for any
      subset of spec.CAMERAS, images in the camera's ROS optical frame;
    joint_positions: spec.STATE_JOINTS positions at the images' time;
    crop: task name of CROP_BOXES, a box ((xmin, xmax), (ymin, ymax), (zmin, zmax)) in base_link,
      or None for "default";
    n_points: exact output size (repeated points when fewer are valid; all zeros when none);
    seed: int or numpy Generator (sampling start points);
    sampler: "fast" (fps.fast_fps, the default), "exact" (fps.exact_fps) or "random";
    kwargs: pixel_stride (default PIXEL_STRIDE = 2: every 2nd row/column), backend ("numpy" or
      "torch" for fast FPS).
    Columns: x, y, z (m), r, g, b (0..1). Raises ValueError for malformed input.
    """
    return (fuser or default_fuser()).fuse(images, joint_positions, crop, n_points, seed, sampler, **kwargs)


# ----------------------------------------------------------------------------- sim helpers + CLI

def typical_pose() -> np.ndarray:
    """spec.STATE_JOINTS positions of a typical manipulation pose: torso leaning forward, arms
    reaching down in front so the wrist cameras see the floor ahead (used by bench and snapshot)."""
    q = {j.name: j.home for j in spec.JOINTS if not j.velocity_controlled}
    q.update({"torso_joint1": 0.3, "torso_joint2": -0.6, "torso_joint3": 0.5})
    for side in ("left", "right"):
        q.update({f"{side}_arm_joint1": -0.6, f"{side}_arm_joint4": -1.2, f"{side}_arm_joint5": 0.6})
    return np.array([q[n] for n in spec.STATE_JOINTS])


def render_sim_images(q=None, task: str = "bimanual_box", seed: int = 0, renderer=None, sim=None):
    """Render all spec cameras of the sim scene (task objects placed) with the robot at `q`
    (STATE_JOINTS, default typical_pose()). Returns (images, q, sim)."""
    import mujoco
    from brs_sim.camera_renderer import RgbdRenderer
    from brs_sim.sim_core import SimCore
    from brs_sim.tasks import get_task

    q = typical_pose() if q is None else np.asarray(q, dtype=float)
    if sim is None:
        sim = SimCore("scene", seed=seed)
        if task:
            get_task(task).reset(sim, seed)
    sim.joints.set_state_qpos(sim.data, q)
    mujoco.mj_forward(sim.model, sim.data)
    renderer = renderer or RgbdRenderer(sim.model)
    images = {name: renderer.render(sim.data, name) for name in spec.CAMERAS}
    return images, q, sim


def snapshot(path: str, task: str = "bimanual_box", n_points: int = N_POINTS) -> np.ndarray:
    """Render the sim at typical_pose(), fuse, and write a coloured 3-D scatter PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, q, _ = render_sim_images(task=task)
    cloud = fuse_point_cloud(images, q, crop=task, n_points=n_points)
    fig = plt.figure(figsize=(10, 5))
    for i, (elev, azim) in enumerate(((25, -160), (70, -180))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        ax.scatter(cloud[:, 0], cloud[:, 1], cloud[:, 2], c=np.clip(cloud[:, 3:], 0, 1), s=2, depthshade=False)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.set_zlabel("z (m)")
        ax.view_init(elev=elev, azim=azim)
        ext = np.ptp(cloud[:, :3], axis=0)
        ax.set_box_aspect(np.maximum(ext, 0.05))
    fig.suptitle(f"fused point cloud, {n_points} points, base_link, crop '{task}' (3 cameras)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return cloud


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brs_policy.perception",
                                     description="fused point cloud of the sim scene")
    parser.add_argument("--snapshot", required=True, help="PNG file to write")
    parser.add_argument("--task", default="bimanual_box", help="sim task (object placement and crop box)")
    parser.add_argument("--n-points", type=int, default=N_POINTS)
    args = parser.parse_args(argv)
    cloud = snapshot(args.snapshot, args.task, args.n_points)
    lo, hi = cloud[:, :3].min(axis=0), cloud[:, :3].max(axis=0)
    print(f"wrote {args.snapshot}: {cloud.shape[0]} points, x {lo[0]:.2f}..{hi[0]:.2f}, "
          f"y {lo[1]:.2f}..{hi[1]:.2f}, z {lo[2]:.2f}..{hi[2]:.2f} m")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
