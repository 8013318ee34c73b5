"""Perception node: RGB-D cameras + /joint_states -> /perception/points (fused cloud in base_link).

Subscribes /cameras/<name>/{color,depth}/image_raw (SensorDataQoS) of the configured cameras and
/joint_states. When every camera has a colour and a depth image of the same capture (stamps within
`sync_slop`), it takes the joint state closest to the image stamp, runs
`brs_policy.perception.fuse_point_cloud` and publishes a PointCloud2 (x, y, z, rgb) in base_link
on /perception/points, stamped with the image time. So it runs at the camera rate.

Bad input never crashes it: wrong image sizes or encodings, missing or stale joint states and
empty crops are counted on /diagnostics (component "input"); component "pipeline" reports
latency (compute and image age), processed and dropped frame sets.

Parameters (config/perception.yaml): cameras, crop (task name of perception.CROP_BOXES or six
numbers "xmin,xmax,ymin,ymax,zmin,zmax"), n_points, pixel_stride, sample_seed, sync_slop,
max_joint_state_age.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import camera_info_to_K, color_to_rgb, depth_to_metres, points_to_cloud, stamp_to_sec
from brs_common.diagnostics import DiagnosticsReporter
from brs_common.node_main import run_node
from brs_common.stamped_history import StampedHistory

from .observation import add_joint_state
from .perception import CROP_BOXES, N_POINTS, PIXEL_STRIDE, PointCloudFuser, crop_box

NODE_NAME = "perception"


def parse_crop(text: str):
    """Task name or "xmin,xmax,ymin,ymax,zmin,zmax" -> what perception.crop_box takes."""
    text = text.strip()
    if not text or text in CROP_BOXES:
        return text or "default"
    try:
        values = [float(v) for v in text.replace("[", "").replace("]", "").split(",")]
    except ValueError:
        raise ValueError(f"crop {text!r}: neither a task name ({', '.join(CROP_BOXES)}) nor six "
                         "comma-separated numbers") from None
    crop_box(values)  # validates
    return values


class PerceptionNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = params.declare(self, [
            ("cameras", list(spec.CAMERAS), f"cameras to fuse, of {', '.join(spec.CAMERAS)}"),
            ("crop", "default", f"crop box in base_link: a task name ({', '.join(CROP_BOXES)}) or "
                                "'xmin,xmax,ymin,ymax,zmin,zmax' in m"),
            ("n_points", N_POINTS, "points per published cloud; >= 1"),
            ("pixel_stride", PIXEL_STRIDE, "back-project every n-th pixel row and column"),
            ("sample_seed", 0, "seed of the point sampling (the same every frame, as in dataset building)"),
            ("sync_slop", 0.02, "s: most spread of the image stamps within one capture"),
            ("max_joint_state_age", 0.05, "s: most time between the image stamp and the nearest joint state"),
        ])
        self.cameras = tuple(p["cameras"])
        unknown = [c for c in self.cameras if c not in spec.CAMERAS]
        if unknown or not self.cameras:
            raise ValueError(f"cameras {list(self.cameras)}: need a non-empty subset of {list(spec.CAMERAS)}")
        self.crop = parse_crop(p["crop"])
        self.n_points = int(p["n_points"])
        if self.n_points < 1:
            raise ValueError(f"n_points must be >= 1, got {self.n_points}")
        self.pixel_stride = max(1, int(p["pixel_stride"]))
        self.seed = int(p["sample_seed"])  # the same every frame: what dataset building uses
        self.sync_slop = float(p["sync_slop"])
        self.max_js_age = float(p["max_joint_state_age"])
        self.fuser = PointCloudFuser(self.cameras)

        self.latest: dict[tuple[str, str], Image] = {}
        self.joint_states = StampedHistory(maxlen=300)
        self.last_processed = -float("inf")
        self.pending: set[float] = set()  # capture stamps seen but not processed yet
        self.processed = 0
        self.dropped = 0
        self.compute_ms: deque[float] = deque(maxlen=100)
        self.age_ms: deque[float] = deque(maxlen=100)

        self.diag = DiagnosticsReporter(self, hardware_id="perception")
        self.diag.set_status("pipeline", DiagnosticStatus.WARN, "waiting for images and joint states")
        self.pub = self.create_publisher(PointCloud2, topics.POINTS, qos.SENSOR)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, qos.STATE)
        for cam in self.cameras:
            for stream in ("color", "depth"):
                self.create_subscription(
                    Image, topics.camera_topic(cam, stream),
                    lambda msg, key=(cam, stream): self._on_image(key, msg), qos.SENSOR)
            # the depth image's intrinsics (= the colour's for aligned depth) back-project its pixels
            self.create_subscription(CameraInfo, topics.camera_topic(cam, "depth_info"),
                                     lambda msg, c=cam: self._on_camera_info(c, msg), qos.SENSOR)
        self.intrinsics_from: dict[str, str] = dict.fromkeys(self.cameras, "robot spec")
        self._warned_no_info: set[str] = set()
        self.get_logger().info(
            f"perception: cameras={list(self.cameras)} crop={p['crop']!r} n_points={self.n_points} "
            f"pixel_stride={self.pixel_stride} -> {topics.POINTS}")

    # ------------------------------------------------------------------ inputs
    def _on_joint_state(self, msg: JointState):
        add_joint_state(self.joint_states, msg, self.diag)

    def joint_state_at(self, t: float):
        """Positions of the joint state closest to `t` and its time offset, or (None, inf)."""
        item = self.joint_states.nearest(t)
        return (None, float("inf")) if item is None else (item[1], abs(item[0] - t))

    def _on_camera_info(self, cam: str, msg: CameraInfo):
        try:
            changed = self.fuser.set_intrinsics(cam, camera_info_to_K(msg), msg.width, msg.height)
        except ValueError as exc:
            self.diag.reject("bad_camera_info", str(exc))
            return
        self.intrinsics_from[cam] = "camera_info"
        if changed:
            K = self.fuser.K[cam]
            self.get_logger().info(f"{cam}: intrinsics from camera_info: {msg.width}x{msg.height}, "
                                   f"fx {K[0, 0]:.1f} fy {K[1, 1]:.1f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f}")

    def _on_image(self, key, msg: Image):
        self.latest[key] = msg
        t = stamp_to_sec(msg.header.stamp)
        if t > self.last_processed:
            self.pending.add(round(t, 6))
        self._try_process()

    # ------------------------------------------------------------------ processing
    def _frame_set(self):
        """{camera: (color, depth)} of one capture, or None while incomplete/out of sync."""
        msgs = {}
        stamps = []
        for cam in self.cameras:
            color, depth = self.latest.get((cam, "color")), self.latest.get((cam, "depth"))
            if color is None or depth is None:
                return None
            tc, td = stamp_to_sec(color.header.stamp), stamp_to_sec(depth.header.stamp)
            if abs(tc - td) > self.sync_slop:
                return None
            msgs[cam] = (color, depth)
            stamps += [tc, td]
        if max(stamps) - min(stamps) > self.sync_slop or max(stamps) <= self.last_processed:
            return None
        return msgs, max(stamps)

    def _try_process(self):
        found = self._frame_set()
        if found is None:
            return
        msgs, t = found
        self.last_processed = t
        # capture stamps that arrived but never formed a complete set before this one: dropped
        older = [s for s in self.pending if s < t - self.sync_slop]
        self.dropped += len(older)
        self.pending = {s for s in self.pending if s > t + self.sync_slop}
        q, offset = self.joint_state_at(t)
        if q is None:
            self.diag.reject("no_joint_state", "no /joint_states received yet")
            return
        if offset > self.max_js_age:
            self.diag.reject("stale_joint_state", f"nearest joint state {offset * 1e3:.0f} ms from the images")
            return
        for cam in self.cameras:
            if self.intrinsics_from[cam] != "camera_info" and cam not in self._warned_no_info:
                self._warned_no_info.add(cam)
                h, w = self.fuser.size[cam]
                self.get_logger().warning(
                    f"no camera_info on {topics.camera_topic(cam, 'depth_info')} yet: {cam} uses the robot "
                    f"spec's intrinsics ({w}x{h}) until one arrives")
        t0 = time.perf_counter()
        try:
            images = {cam: (color_to_rgb(c), depth_to_metres(d)) for cam, (c, d) in msgs.items()}
            cloud = self.fuser.fuse(images, q, self.crop, self.n_points, self.seed,
                                    pixel_stride=self.pixel_stride)
        except ValueError as exc:
            self.diag.reject("bad_image", str(exc))
            return
        except Exception as exc:  # never take the node down; count and report it
            self.get_logger().error(f"perception failed: {exc!r}")
            self.diag.reject("internal_error", repr(exc))
            return
        if not np.any(cloud[:, :3]):
            self.diag.reject("empty_cloud", "no valid depth inside the crop box")
            return
        rgb = np.clip(np.rint(cloud[:, 3:] * 255.0), 0, 255).astype(np.uint8)
        self.pub.publish(points_to_cloud(cloud[:, :3], rgb, spec.FRAMES["base"], msgs[self.cameras[0]][1].header.stamp))
        compute = (time.perf_counter() - t0) * 1e3
        age = (self.get_clock().now().nanoseconds * 1e-9 - t) * 1e3
        self.processed += 1
        self.compute_ms.append(compute)
        self.age_ms.append(age)
        self.diag.set_status("pipeline", DiagnosticStatus.OK, f"{self.processed} clouds published", {
            "compute_ms_p50": f"{np.median(self.compute_ms):.1f}",
            "compute_ms_max": f"{max(self.compute_ms):.1f}",
            "age_ms_p50": f"{np.median(self.age_ms):.1f}",
            "processed": self.processed,
            "dropped_frames": self.dropped,
            "joint_state_offset_ms": f"{offset * 1e3:.1f}",
            **{f"{cam}.intrinsics": f"{self.intrinsics_from[cam]} {self.fuser.size[cam][1]}x{self.fuser.size[cam][0]}"
               for cam in self.cameras},
        })


def main(args=None):
    return run_node(lambda: PerceptionNode(), args, config_errors=(ValueError,))


if __name__ == "__main__":
    raise SystemExit(main())
