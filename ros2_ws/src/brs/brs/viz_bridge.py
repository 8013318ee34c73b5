"""viz_bridge: the running graph live in Foxglove (browser or desktop app) over the Foxglove
WebSocket protocol (`foxglove-sdk`), no ROS install needed on either side.

    brs viz                                               # next to a running graph, ws://127.0.0.1:8765
    brs bringup use_sim:=true mode:=policy viz:=true ...  # as part of the graph

Then open https://app.foxglove.dev (or the desktop app) -> Open connection -> Foxglove WebSocket ->
ws://<host>:8765 (docs/viz.md: panels to add).

| channel | schema (protobuf) | from |
|---|---|---|
| /tf | foxglove.FrameTransforms | odom -> base_link (/odom) and every joint of the robot's URDF (/joint_states, `brs_sim.urdf`), at `tf_rate_hz` |
| /joint_states | foxglove.JointStates | measured joints |
| /whole_body_controller/commanded | foxglove.JointStates | the controller's command (position targets; base twist as velocity) |
| /odom | foxglove.Odometry | base pose in odom, twist in base_link |
| /perception/points | foxglove.PointCloud | the fused cloud in base_link (xyz + rgb), at most `cloud_rate_hz` |
| /cameras/<camera>/color/image_raw | foxglove.RawImage | rgb8, at most `image_rate_hz` |
| /cameras/<camera>/color/camera_info | foxglove.CameraCalibration | K, D, P of that camera |

The URDF is served as an asset: in the 3D panel add a URDF layer with the URL
`package://brs_sim/models/robot.urdf`. The bridge subscribes to a ROS topic only while some client
subscribes to a channel that needs it (checked every 1 / SUBSCRIPTION_CHECK_HZ s), so an idle
bridge takes no messages at all. /tf does not run a callback per joint state and odometry
message (100 Hz each in the sim): a timer at `tf_rate_hz` takes the newest of each from
subscriptions that keep one message and are on a node no executor spins. The node spins rclpy's
EventsExecutor, about half of the SingleThreadedExecutor's CPU per message (`make bench`,
viz_bridge_cpu_overhead_pct).
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import cloud_to_points, color_to_rgb, odom_pose
from brs_common.node_main import ConfigError, run_node

URDF_URI = "package://brs_sim/models/robot.urdf"
NODE_NAME = "viz_bridge"
SUBSCRIPTION_CHECK_HZ = 4.0  # how often the ROS subscriptions follow the clients' subscriptions


def _stamp(msg) -> int:
    """Header stamp in nanoseconds."""
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class Throttle:
    """At most `rate_hz` per key, in wall time (0: no limit)."""

    def __init__(self, rate_hz: float):
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self.last: dict[str, float] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self.last.get(key, -np.inf) < self.period:
            return False
        self.last[key] = now
        return True


class VizBridge(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        import foxglove
        from foxglove import channels as ch

        from brs_sim.urdf import URDF_PATH, UrdfKinematics

        p = params.declare(self, [
            ("host", "127.0.0.1", "address the Foxglove WebSocket server listens on"),
            ("port", 8765, "WebSocket port, 0-65535", (0, 65535)),
            ("tf_rate_hz", 15.0, "/tf updates per second, Hz (wall time), 0.1-100: the newest joint state "
                                 "and odometry at each", (0.1, 100.0)),
            ("cloud_rate_hz", 10.0, "most point clouds per second, Hz (wall time); 0: no limit"),
            ("image_rate_hz", 5.0, "most images per second per camera, Hz (wall time); 0: no limit"),
            ("cameras", list(spec.CAMERAS), f"cameras whose colour images are bridged, of "
                                            f"{', '.join(spec.CAMERAS)}"),
        ])
        self.cameras = tuple(p["cameras"])
        unknown = [c for c in self.cameras if c not in spec.CAMERAS]
        if unknown:
            raise ConfigError(f"cameras {unknown} are not robot cameras; expected some of {list(spec.CAMERAS)}")
        if not 0 <= int(p["port"]) <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {p['port']}")
        self.urdf_text = URDF_PATH.read_bytes()
        self.kin = UrdfKinematics(URDF_PATH)
        if not 0.1 <= float(p["tf_rate_hz"]) <= 100.0:
            raise ConfigError(f"tf_rate_hz must be in 0.1..100, got {p['tf_rate_hz']}")
        self.cloud_limit = Throttle(p["cloud_rate_hz"])
        self.image_limit = Throttle(p["image_rate_hz"])
        self.odom = np.zeros(3)
        self.counts = dict.fromkeys(("tf", "joint_states", "commanded", "odom", "points", "images"), 0)
        try:
            self.server = foxglove.start_server(name="brs", host=str(p["host"]), port=int(p["port"]),
                                                asset_handler=self._asset)
        except Exception as exc:  # e.g. the port is taken
            raise ConfigError(f"cannot serve on {p['host']}:{p['port']}: {exc}") from None
        self.ch = {
            "tf": ch.FrameTransformsChannel(topics.TF),
            "joint_states": ch.JointStatesChannel(topics.JOINT_STATES),
            "commanded": ch.JointStatesChannel(topics.CONTROLLER_STATE),
            "odom": ch.OdometryChannel(topics.ODOM),
            "points": ch.PointCloudChannel(topics.POINTS),
            **{("image", c): ch.RawImageChannel(topics.camera_topic(c, "color")) for c in self.cameras},
            **{("info", c): ch.CameraCalibrationChannel(topics.camera_topic(c, "color_info")) for c in self.cameras},
        }
        from nav_msgs.msg import Odometry

        # ROS inputs: (type, topic, callback, qos, raw) and which of them each channel needs
        self.inputs = {
            "joint_states": (JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE, False),
            "commanded": (JointState, topics.CONTROLLER_STATE, self._on_commanded, qos.STATE, False),
            "odom": (Odometry, topics.ODOM, self._on_odom, qos.STATE, False),
            "points": (PointCloud2, topics.POINTS, self._on_points, qos.SENSOR, False),
            **{("image", c): (Image, topics.camera_topic(c, "color"),
                              lambda msg, c=c: self._on_image(c, msg), qos.SENSOR, False) for c in self.cameras},
            **{("info", c): (CameraInfo, topics.camera_topic(c, "color_info"),
                             lambda msg, c=c: self._on_camera_info(c, msg), qos.SENSOR, False) for c in self.cameras},
        }
        # /tf's inputs: polled by its timer, never spun (one message kept: the newest)
        newest = QoSProfile(depth=1, reliability=qos.STATE.reliability, durability=qos.STATE.durability)
        self.poll_node = rclpy.create_node(f"{NODE_NAME}_tf_inputs", context=self.context)
        self.inputs.update({
            "tf_joints": (JointState, topics.JOINT_STATES, None, newest, True),
            "tf_odom": (Odometry, topics.ODOM, None, newest, True),
        })
        self.needs = {key: (key,) for key in self.ch}
        self.needs["tf"] = ("tf_joints", "tf_odom")
        self.subscriptions_now: dict = {}
        self.create_timer(1.0 / SUBSCRIPTION_CHECK_HZ, self._follow_clients)
        self.create_timer(1.0 / float(p["tf_rate_hz"]), self._publish_tf)
        self.get_logger().info(
            f"Foxglove WebSocket on ws://{p['host']}:{self.server.port}: open it in https://app.foxglove.dev "
            f"(Open connection -> Foxglove WebSocket); robot model: URDF layer {URDF_URI}")

    # ------------------------------------------------------------------ helpers
    def _asset(self, uri: str) -> bytes | None:
        return self.urdf_text if uri == URDF_URI else None

    def _live(self, key) -> bool:
        return self.ch[key].has_sinks()

    @staticmethod
    def _time(ns: int):
        from foxglove.messages import Timestamp

        return Timestamp(ns // 1_000_000_000, ns % 1_000_000_000)

    def _log(self, key, message, ns: int, count: str) -> None:
        self.ch[key].log(message, log_time=ns)
        self.counts[count] += 1

    def _joint_states(self, msg: JointState):
        from foxglove.messages import JointState as FgJoint, JointStates

        def at(values, i):
            return float(values[i]) if i < len(values) and np.isfinite(values[i]) else None

        joints = [FgJoint(name=n, position=at(msg.position, i), velocity=at(msg.velocity, i),
                          effort=at(msg.effort, i)) for i, n in enumerate(msg.name)]
        return JointStates(timestamp=self._time(_stamp(msg)), joints=joints)

    def _follow_clients(self) -> None:
        """Subscribe to the ROS topics the clients' channels need now, drop the others."""
        wanted = {src for key, sources in self.needs.items() if self._live(key) for src in sources}
        for key in wanted - set(self.subscriptions_now):
            msg_type, topic, callback, profile, raw = self.inputs[key]
            node = self if callback else self.poll_node
            self.subscriptions_now[key] = (node, node.create_subscription(
                msg_type, topic, callback or (lambda _msg: None), profile, raw=raw))
        for key in set(self.subscriptions_now) - wanted:
            node, sub = self.subscriptions_now.pop(key)
            node.destroy_subscription(sub)

    def _newest(self, key):
        """The newest message of a polled input since the last call (decoded), or None."""
        if key not in self.subscriptions_now:
            return None
        sub, raw = self.subscriptions_now[key][1], None
        while (taken := sub.handle.take_message(sub.msg_type, True)) is not None:
            raw = taken[0]
        return None if raw is None else deserialize_message(raw, sub.msg_type)

    def _publish_tf(self) -> None:
        if not self._live("tf"):
            return
        odom = self._newest("tf_odom")
        if odom is not None:
            self.odom = odom_pose(odom)
        joints = self._newest("tf_joints")
        if joints is not None:  # a new robot state
            ns = _stamp(joints)
            self._log("tf", self._transforms(dict(zip(joints.name, joints.position)), ns), ns, "tf")

    # ------------------------------------------------------------------ callbacks
    def _on_joint_states(self, msg: JointState):
        if self._live("joint_states"):
            self._log("joint_states", self._joint_states(msg), _stamp(msg), "joint_states")

    def _on_commanded(self, msg: JointState):
        if self._live("commanded"):
            self._log("commanded", self._joint_states(msg), _stamp(msg), "commanded")

    def _transforms(self, joint_positions: dict, ns: int):
        from foxglove.messages import FrameTransform, FrameTransforms, Quaternion, Vector3
        from scipy.spatial.transform import Rotation

        edges = self.kin.tf_edges(joint_positions, self.odom)
        quats = Rotation.from_matrix(np.stack([M[:3, :3] for _, _, M in edges])).as_quat()
        stamp = self._time(ns)
        return FrameTransforms(transforms=[
            FrameTransform(timestamp=stamp, parent_frame_id=parent, child_frame_id=child,
                           translation=Vector3(x=float(M[0, 3]), y=float(M[1, 3]), z=float(M[2, 3])),
                           rotation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))
            for (parent, child, M), q in zip(edges, quats)])

    def _on_odom(self, msg):
        if not self._live("odom"):
            return
        from foxglove.messages import Odometry, Pose, Quaternion, Vector3

        p, o, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        message = Odometry(
            timestamp=self._time(_stamp(msg)), frame_id=spec.FRAMES["odom"], body_frame_id=spec.FRAMES["base"],
            pose=Pose(position=Vector3(x=p.x, y=p.y, z=p.z), orientation=Quaternion(x=o.x, y=o.y, z=o.z, w=o.w)),
            linear_velocity=Vector3(x=tw.linear.x, y=tw.linear.y, z=tw.linear.z),
            angular_velocity=Vector3(x=tw.angular.x, y=tw.angular.y, z=tw.angular.z))
        self._log("odom", message, _stamp(msg), "odom")

    def _on_points(self, msg: PointCloud2):
        if not (self._live("points") and self.cloud_limit("points")):
            return
        from foxglove.messages import PackedElementField as Field
        from foxglove.messages import PackedElementFieldNumericType as T
        from foxglove.messages import PointCloud, Pose, Quaternion, Vector3

        try:
            xyz, rgb = cloud_to_points(msg)
        except ValueError as exc:
            self.get_logger().warning(f"{topics.POINTS}: {exc}", throttle_duration_sec=5.0)
            return
        packed = np.zeros(len(xyz), dtype=[("xyz", "<f4", 3), ("rgba", "u1", 4)])
        packed["xyz"] = xyz
        packed["rgba"][:, :3] = 255 if rgb is None else rgb
        packed["rgba"][:, 3] = 255
        fields = [Field(name=n, offset=4 * i, type=T.Float32) for i, n in enumerate("xyz")]
        fields += [Field(name=n, offset=12 + i, type=T.Uint8) for i, n in enumerate(("red", "green", "blue", "alpha"))]
        ns = _stamp(msg)
        self._log("points", PointCloud(
            timestamp=self._time(ns), frame_id=msg.header.frame_id or spec.FRAMES["base"],
            pose=Pose(position=Vector3(), orientation=Quaternion(w=1.0)), point_stride=packed.itemsize,
            fields=fields, data=packed.tobytes()), ns, "points")

    def _on_image(self, camera: str, msg: Image):
        key = ("image", camera)
        if not (self._live(key) and self.image_limit(camera)):
            return
        from foxglove.messages import RawImage

        try:
            rgb = np.ascontiguousarray(color_to_rgb(msg))
        except ValueError as exc:
            self.get_logger().warning(f"{camera}: {exc}", throttle_duration_sec=5.0)
            return
        h, w = rgb.shape[:2]
        ns = _stamp(msg)
        self._log(key, RawImage(timestamp=self._time(ns), frame_id=msg.header.frame_id, width=w, height=h,
                                encoding="rgb8", step=3 * w, data=rgb.tobytes()), ns, "images")

    def _on_camera_info(self, camera: str, msg: CameraInfo):
        key = ("info", camera)
        if not self._live(key):
            return
        from foxglove.messages import CameraCalibration

        ns = _stamp(msg)
        self.ch[key].log(CameraCalibration(
            timestamp=self._time(ns), frame_id=msg.header.frame_id, width=msg.width, height=msg.height,
            distortion_model=msg.distortion_model, D=list(msg.d), K=list(msg.k), R=list(msg.r), P=list(msg.p)),
            log_time=ns)

    def shutdown(self):
        self.server.stop()
        self.poll_node.destroy_node()


def main(args=None) -> int:
    from rclpy.experimental import EventsExecutor

    return run_node(VizBridge, args, on_stop=lambda node: node.shutdown(), make_executor=lambda node: EventsExecutor())


if __name__ == "__main__":
    import sys

    sys.exit(main())
