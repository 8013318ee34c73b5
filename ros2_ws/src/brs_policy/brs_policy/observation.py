"""A WB-VIMA observation from the graph's messages (policy_node): the points of a fused cloud,
and the proprioception sample nearest its stamp; the joint-state history that policy_node and
perception_node match stamps against."""

from __future__ import annotations

import numpy as np
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState, PointCloud2

from brs_common.convert import cloud_to_points, stamp_to_sec, state_positions
from brs_common.stamped_history import StampedHistory


def cloud_points(msg: PointCloud2, n_points: int) -> np.ndarray:
    """(n_points, 6) float32 xyz + rgb 0..1 of a PointCloud2: the first n_points (what training
    validates on; perception's FPS order), padded by repetition when the cloud is smaller."""
    xyz, rgb = cloud_to_points(msg)
    if rgb is None:
        raise ValueError("cloud has no rgb/rgba field (WB-VIMA needs xyz + colour)")
    if len(xyz) == 0:
        raise ValueError("empty cloud")
    pts = np.concatenate([xyz, rgb.astype(np.float32) / 255.0], axis=1).astype(np.float32)
    if not np.all(np.isfinite(pts)):
        raise ValueError("cloud holds NaN/inf points")
    if len(pts) >= n_points:
        return pts[:n_points]
    return pts[np.arange(n_points) % len(pts)]


def value_of(item):
    """The value of a StampedHistory sample; None for no sample."""
    return None if item is None else item[1]


def value_near(history: StampedHistory, t: float):
    """The value of the sample nearest `t`; the latest for an unstamped (t <= 0) observation."""
    return value_of(history.latest() if t <= 0.0 else history.nearest(t))


def add_joint_state(history: StampedHistory, msg: JointState, diag) -> None:
    """Add the robot_spec.STATE_JOINTS positions of a /joint_states message to `history` at its
    stamp; a malformed message is counted as `bad_joint_state` on `diag` (a DiagnosticsReporter)."""
    try:
        pos = state_positions(msg)
    except ValueError as exc:
        diag.reject("bad_joint_state", str(exc))
        return
    history.add(stamp_to_sec(msg.header.stamp), pos)


def add_base_velocity(history: StampedHistory, msg: Odometry, diag) -> None:
    """Add the base twist (vx, vy, wz in base_link) of an /odom message to `history` at its stamp;
    a non-finite one is counted as `bad_odom` on `diag`."""
    tw = msg.twist.twist
    v = np.array([tw.linear.x, tw.linear.y, tw.angular.z])
    if not np.all(np.isfinite(v)):
        diag.reject("bad_odom", "NaN/inf twist")
        return
    history.add(stamp_to_sec(msg.header.stamp), v)


def window_observation(frames, obs_window: int) -> tuple[float, dict]:
    """(stamp of the newest, model input) from the last (stamp, points, proprio) frames: To of
    them, the first repeated while there are fewer (as the dataset pads the start)."""
    window = list(frames)
    window = [window[0]] * (obs_window - len(window)) + window
    return window[-1][0], {"points": np.stack([w[1] for w in window]),
                           "proprio": np.stack([w[2] for w in window])}
