"""Scripted whole-body demo motion (~14 s): base drives, turns and strafes, the torso bends and
yaws, the left arm waves, the right arm reaches, the grippers close and open.

The motion is the pure function `demo_targets(t)` (21-D, spec action order, base entries are
velocities, the rest positions built from min-jerk moves and sin^2 velocity pulses). It streams
them as JointTrajectory commands on topics.whole_body_command('demo') through the whole-body
controller, exactly like a teleop source would.

Node `demo_source`, parameters: duration_scale (float, 1.0; >1 slower, <1 refused as it would
break joint limits), rate_hz (float, 50).
It uses the node clock (sim time when use_sim_time is set), starts once /joint_states arrives,
blends from the measured pose into the script, and exits with code 0 after commanding zero base
velocity (also on SIGINT/SIGTERM).
"""

from __future__ import annotations

import math

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from brs_common import params, qos, topics
from brs_common.node_main import run_node
from brs_common import robot_spec as spec
from brs_common.convert import base_command_msg, make_trajectory

DEMO_DURATION = 14.0  # s at duration_scale 1
START_BLEND = 2.0  # s, from the measured pose into the script


def _joint(group: str, index: int) -> int:
    """Action index of the `index`-th joint of `group`."""
    return spec.group_slice(group).start + index


# Position moves: (t_start, t_end, group, joint index in group, target). Per joint, in time order.
_WAVE = [(2.0 + 0.75 * k, 2.75 + 0.75 * k, "left_arm", 5, 0.4 * (-1) ** k) for k in range(4)]
_MOVES = [
    # torso bends forward (knee + hip pitch), later yaws left and right, then straightens
    (0.0, 2.0, "torso", 0, 0.25), (0.0, 2.0, "torso", 1, -0.45), (0.0, 2.0, "torso", 2, 0.3),
    (5.0, 7.0, "torso", 3, 0.45), (7.5, 9.5, "torso", 3, -0.45), (10.0, 12.5, "torso", 3, 0.0),
    (10.0, 12.5, "torso", 0, 0.0), (10.0, 12.5, "torso", 1, 0.0), (10.0, 12.5, "torso", 2, 0.0),
    # left arm: raise and wave (wrist roll), then reach forward, then home
    (0.0, 2.0, "left_arm", 0, -1.4), (0.0, 2.0, "left_arm", 1, 0.5), (0.0, 2.0, "left_arm", 3, -1.7),
    *_WAVE, (5.0, 5.75, "left_arm", 5, 0.0),
    (7.5, 9.5, "left_arm", 0, -0.9), (7.5, 9.5, "left_arm", 1, 0.15), (7.5, 9.5, "left_arm", 2, 0.3),
    (7.5, 9.5, "left_arm", 3, -0.6), (10.0, 12.5, "left_arm", 0, 0.0), (10.0, 12.5, "left_arm", 1, 0.0),
    (10.0, 12.5, "left_arm", 2, 0.0), (10.0, 12.5, "left_arm", 3, -1.2),
    # right arm: reach forward and down, grasp, lift, home
    (1.0, 3.5, "right_arm", 0, -1.0), (1.0, 3.5, "right_arm", 3, -0.5), (1.0, 3.5, "right_arm", 4, 0.5),
    (5.0, 6.5, "right_arm", 0, -1.3), (5.0, 6.5, "right_arm", 5, 0.8),
    (7.0, 8.5, "right_arm", 0, -0.8), (7.0, 8.5, "right_arm", 3, -1.0),
    (10.0, 12.5, "right_arm", 0, 0.0), (10.0, 12.5, "right_arm", 3, -1.2), (10.0, 12.5, "right_arm", 4, 0.0),
    (10.0, 12.5, "right_arm", 5, 0.0),
    # grippers: left closes while waving, opens for the reach; right closes on "grasp", opens
    (2.0, 3.0, "left_gripper", 0, 0.0), (8.0, 9.0, "left_gripper", 0, 0.04),
    (6.0, 7.0, "right_gripper", 0, 0.0), (9.5, 10.5, "right_gripper", 0, 0.04),
]
# Base velocity pulses v(t) = peak * sin^2(pi (t - t0) / (t1 - t0)): (t0, t1, base joint index, peak)
_PULSES = [
    (0.5, 4.5, 0, 0.25),  # forward ~0.5 m
    (5.0, 9.0, 2, 0.5),  # turn left ~1 rad
    (10.0, 13.0, 1, 0.15),  # strafe left ~0.23 m
]

_TRACKS: dict[int, list[tuple[float, float, float]]] = {}
for _t0, _t1, _group, _i, _target in _MOVES:
    _TRACKS.setdefault(_joint(_group, _i), []).append((_t0, _t1, _target))
for _track in _TRACKS.values():
    _track.sort()
    assert all(a[1] <= b[0] for a, b in zip(_track, _track[1:])), "overlapping demo moves"


def min_jerk(s):
    """Min-jerk blend 0 -> 1 for s in [0, 1] (clipped outside); zero vel/acc at both ends."""
    s = np.clip(s, 0.0, 1.0)
    return s ** 3 * (10.0 - 15.0 * s + 6.0 * s * s)


def demo_targets(t: float, duration_scale: float = 1.0) -> np.ndarray:
    """21-D whole-body target at script time t (s): base velocities, then joint positions."""
    tau = t / duration_scale
    out = spec.HOME.copy()
    for idx, track in _TRACKS.items():
        value = out[idx]
        for t0, t1, target in track:
            if tau <= t0:
                break
            value = value + (target - value) * float(min_jerk((tau - t0) / (t1 - t0)))
        out[idx] = value
    out[spec.group_slice("base")] = 0.0
    for t0, t1, axis, peak in _PULSES:
        if t0 < tau < t1:
            out[axis] += peak * math.sin(math.pi * (tau - t0) / (t1 - t0)) ** 2 / duration_scale
    return out


class WholeBodyCommandPublisher:
    """Streams 21-D targets as one-point JointTrajectory commands to the whole-body controller.

    Positions carry the joint targets, velocities the base twist (the controller's convention);
    time_from_start is the send period so the controller follows the stream without lag.
    """

    def __init__(self, node: Node, period: float):
        self.node = node
        self.period = period
        self.pub = node.create_publisher(JointTrajectory, topics.whole_body_command("demo"), qos.COMMAND)

    def publish(self, targets: np.ndarray) -> None:
        targets = np.asarray(targets, dtype=float)
        self.pub.publish(make_trajectory(spec.ACTION_JOINTS, targets[None], [self.period],
                                         velocities=targets[None], stamp=self.node.get_clock().now()))

    def publish_base(self, v) -> None:
        self.pub.publish(base_command_msg(v, self.period, stamp=self.node.get_clock().now()))

    def flush(self, timeout: float = 1.0) -> None:
        """Wait until reliable subscribers acknowledged what was sent."""
        self.pub.wait_for_all_acked(Duration(seconds=timeout))


class DemoSource(Node):
    def __init__(self):
        super().__init__("demo_source")
        p = params.declare(self, [
            ("duration_scale", 1.0, "stretch of the ~14 s script: > 1 slower; < 1 is refused (1 used: "
                                    "faster would exceed the joint limits)"),
            ("rate_hz", 50.0, "command rate, Hz (node clock); > 0"),
        ])
        self.scale = float(p["duration_scale"])
        rate = float(p["rate_hz"])
        if rate <= 0:
            raise ValueError("rate_hz must be > 0")
        if self.scale < 1.0:  # faster would break the spec's velocity/acceleration limits
            self.get_logger().warning(f"duration_scale {self.scale} < 1 would exceed joint limits; using 1.0")
            self.scale = 1.0
        self.duration = DEMO_DURATION * self.scale
        self.out = WholeBodyCommandPublisher(self, 1.0 / rate)
        self.measured: np.ndarray | None = None  # action-order positions (base entries 0)
        self.start_time = None
        self.offset = np.zeros(spec.ACTION_DIM)  # measured - script pose at start, blended out
        self.done = False
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(f"demo_source: {self.duration:.1f} s script, waiting for "
                               f"{topics.JOINT_STATES}")

    def _on_joint_states(self, msg: JointState):
        pos = dict(zip(msg.name, msg.position))
        q = spec.HOME.copy()
        q[spec.group_slice("base")] = 0.0
        for i, name in enumerate(spec.ACTION_JOINTS):
            if name in pos:
                q[i] = pos[name]
        self.measured = q

    def _tick(self):
        if self.done or self.measured is None:
            return
        now = self.get_clock().now()
        if now.nanoseconds == 0:  # sim time not received yet
            return
        if self.start_time is None:
            self.start_time = now
            self.offset = self.measured - demo_targets(0.0, self.scale)
            self.offset[spec.group_slice("base")] = 0.0
            self.get_logger().info("joint states received: demo started")
        t = max(0.0, (now - self.start_time).nanoseconds * 1e-9)
        if t >= self.duration:
            self.finish()
            return
        blend = 1.0 - float(min_jerk(t / (START_BLEND * self.scale)))
        self.out.publish(demo_targets(t, self.scale) + blend * self.offset)

    def finish(self):
        """Final pose, zero base velocity, wait for delivery; marks the node done."""
        if self.start_time is not None:
            self.out.publish(demo_targets(self.duration, self.scale))
        self.out.publish_base((0.0, 0.0, 0.0))
        self.out.flush()
        self.done = True
        self.get_logger().info("demo finished: base stopped")



def main(args=None) -> int:
    def stop_base(node):
        if not node.done:
            node.out.publish_base((0.0, 0.0, 0.0))
            node.out.flush()

    return run_node(DemoSource, args, on_stop=stop_base, done=lambda node: node.done)

if __name__ == "__main__":
    raise SystemExit(main())
