"""Export brs episodes as rosbag2 MCAP bags: open them in Foxglove, `ros2 bag info/play`, or read
them with `rosbags.highlevel.AnyReader`.

    export_mcap("data/demos", "data/demos_mcap")   # data/demos_mcap/episode_000000/ ... one bag each

Each bag (rosbag2 metadata version 9, storage `mcap`, CDR, message definitions embedded from the
ROS 2 Humble type store; these types are identical in Humble, Jazzy and Kilted) holds per frame,
logged and stamped at the frame's recorded ROS time:
| topic | type | content |
|---|---|---|
| /joint_states | sensor_msgs/JointState | STATE_JOINTS position, velocity, effort |
| /odom | nav_msgs/Odometry | odom -> base_link: x, y, yaw; twist vx, vy, wz (base frame) |
| topics.CONTROLLER_STATE | sensor_msgs/JointState | ACTION_JOINTS as the controller publishes |
|   |   | them: position = command (base 0), velocity = base twist, NaN elsewhere (not recorded) |
| /cameras/<cam>/color/image_raw | sensor_msgs/Image | rgb8 |
| /cameras/<cam>/depth/image_raw | sensor_msgs/Image | 32FC1 metres, as recorded |
| /cameras/<cam>/{color,depth}/camera_info | sensor_msgs/CameraInfo | K, D from the episode; P = [K | 0] |
| /tf | tf2_msgs/TFMessage | odom -> base_link from the odometry, and every movable URDF joint |
| /tf_static | tf2_msgs/TFMessage | every fixed URDF joint (camera and end-effector frames), once |
/tf and /tf_static are what robot_state_publisher would broadcast for the robot's URDF
(brs_sim's generated `models/robot.urdf`), computed by `brs_sim.urdf.UrdfKinematics`.
Episode attributes go to the bag's custom_data (`brs.task`, `brs.seed`, ...). An episode without a
task label is refused unless `default_task` (--task) names it, as the LeRobot export does. MCAP
chunks are zstd-compressed unless `compress=False`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brs_common import robot_spec as spec
from brs_common import topics
from brs_sim.urdf import URDF_PATH, UrdfKinematics
from brs_teleop import episode as ep_format
from brs_teleop.export_common import check_output_dir, check_task_labels, collect_episodes, staged_output, task_label

BAG_VERSION = 9
CUSTOM_DATA_ATTRS = ("task", "seed", "source", "success", "rate_hz", "robot_spec_hash",
                     "created_utc", "calibration", "dropped_frames")
_BASE = [spec.ACTION_JOINTS.index(j) for j in spec.BASE_JOINTS]


@dataclass(frozen=True)
class McapSummary:
    out_dir: Path
    bags: list[Path]
    frames: int
    messages: int
    seconds: float


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


class _Messages:
    """Builds the rosbags message objects of one episode's frames."""

    def __init__(self, typestore):
        self.T = typestore.types

    def header(self, t_ns: int, frame_id: str):
        T = self.T
        stamp = T["builtin_interfaces/msg/Time"](sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def joint_state(self, header, names, position, velocity, effort=()):
        f64 = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
        return self.T["sensor_msgs/msg/JointState"](header=header, name=list(names), position=f64(position),
                                                    velocity=f64(velocity), effort=f64(effort))

    def odometry(self, header, pose, velocity):
        T = self.T
        x, y, yaw = (float(v) for v in pose)
        vec = T["geometry_msgs/msg/Vector3"]
        p = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
            orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=float(np.sin(yaw / 2)),
                                                          w=float(np.cos(yaw / 2))))
        tw = T["geometry_msgs/msg/Twist"](linear=vec(x=float(velocity[0]), y=float(velocity[1]), z=0.0),
                                          angular=vec(x=0.0, y=0.0, z=float(velocity[2])))
        return T["nav_msgs/msg/Odometry"](
            header=header, child_frame_id=spec.FRAMES["base"],
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=p, covariance=np.zeros(36)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=tw, covariance=np.zeros(36)))

    def tf(self, header, transforms) -> object:
        """tf2_msgs/TFMessage of (parent, child, 4x4) transforms, all stamped with `header`'s stamp."""
        from scipy.spatial.transform import Rotation

        T = self.T
        out = []
        for parent, child, M in transforms:
            x, y, z, w = Rotation.from_matrix(M[:3, :3]).as_quat()
            out.append(T["geometry_msgs/msg/TransformStamped"](
                header=T["std_msgs/msg/Header"](stamp=header.stamp, frame_id=parent), child_frame_id=child,
                transform=T["geometry_msgs/msg/Transform"](
                    translation=T["geometry_msgs/msg/Vector3"](x=float(M[0, 3]), y=float(M[1, 3]), z=float(M[2, 3])),
                    rotation=T["geometry_msgs/msg/Quaternion"](x=float(x), y=float(y), z=float(z), w=float(w)))))
        return T["tf2_msgs/msg/TFMessage"](transforms=out)

    def image(self, header, array: np.ndarray, encoding: str):
        a = np.ascontiguousarray(array)
        if encoding == "32FC1":
            a = a.astype("<f4", copy=False)
        h, w = a.shape[:2]
        return self.T["sensor_msgs/msg/Image"](
            header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
            step=a.nbytes // h, data=a.reshape(-1).view(np.uint8))

    def camera_info(self, header, cam: ep_format.CameraData):
        K = np.asarray(cam.K, dtype=np.float64).reshape(3, 3)
        P = np.hstack([K, np.zeros((3, 1))])
        roi = self.T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                          do_rectify=False)
        return self.T["sensor_msgs/msg/CameraInfo"](
            header=header, height=int(cam.height), width=int(cam.width),
            distortion_model=cam.distortion_model, d=np.asarray(cam.D, dtype=np.float64),
            k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0, binning_y=0, roi=roi)


def _camera_frame(cam: ep_format.CameraData) -> str:
    if cam.frame_id:
        return cam.frame_id
    return spec.CAMERAS[cam.name].optical_frame if cam.name in spec.CAMERAS else cam.name


def commanded_velocity(action: np.ndarray) -> np.ndarray:
    """The controller's `velocity` field of a 21-D action: base twist, NaN (unknown) elsewhere."""
    vel = np.full(spec.ACTION_DIM, np.nan)
    vel[_BASE] = action[_BASE]
    return vel


def write_bag(episode_path: Path, bag_dir: Path, compress: bool = True, default_task: str = "") -> tuple[int, int]:
    """One episode -> a rosbag2 MCAP bag folder at `bag_dir` (must not exist). (frames, messages).

    `compress`: zstd-compressed MCAP chunks (rosbag2's storage compression; Foxglove, ros2 bag
    and rosbags read them), else uncompressed. `default_task`: `brs.task` of an episode
    recorded without a task label."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    store = _typestore()
    build = _Messages(store)
    messages = 0
    bag = Writer(bag_dir, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
    if compress:
        bag.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with ep_format.read_episode(episode_path) as ep, bag:
        for key in CUSTOM_DATA_ATTRS:
            value = task_label(ep.metadata, default_task) if key == "task" else ep.metadata[key]
            bag.set_custom_data(f"brs.{key}", str(value))
        bag.set_custom_data("brs.episode_file", episode_path.name)

        def connection(topic, msgtype):
            return bag.add_connection(topic, msgtype, typestore=store)

        conn = {
            "joints": connection(topics.JOINT_STATES, "sensor_msgs/msg/JointState"),
            "odom": connection(topics.ODOM, "nav_msgs/msg/Odometry"),
            "command": connection(topics.CONTROLLER_STATE, "sensor_msgs/msg/JointState"),
            "tf": connection(topics.TF, "tf2_msgs/msg/TFMessage"),
            "tf_static": connection(topics.TF_STATIC, "tf2_msgs/msg/TFMessage"),
        }
        kin = UrdfKinematics(URDF_PATH)
        fixed = kin.tf_edges({}, moving=False)
        for name in ep.cameras:
            for stream in ("color", "depth"):
                conn[(name, stream)] = connection(topics.camera_topic(name, stream), "sensor_msgs/msg/Image")
                conn[(name, stream + "_info")] = connection(topics.camera_topic(name, stream + "_info"),
                                                            "sensor_msgs/msg/CameraInfo")

        def write(key, t_ns, msg):
            nonlocal messages
            bag.write(conn[key], t_ns, store.serialize_cdr(msg, msg.__msgtype__))
            messages += 1

        times_ns = np.rint(np.asarray(ep.time, dtype=np.float64) * 1e9).astype(np.int64)
        for i, t_ns in enumerate(times_ns.tolist()):
            if i == 0:
                write("tf_static", t_ns, build.tf(build.header(t_ns, ""), fixed))
            q = dict(zip(spec.STATE_JOINTS, ep.joint_position[i].tolist()))
            write("tf", t_ns, build.tf(build.header(t_ns, ""), kin.tf_edges(q, ep.base_pose[i], fixed=False)))
            write("joints", t_ns, build.joint_state(
                build.header(t_ns, ""), spec.STATE_JOINTS,
                ep.joint_position[i], ep.joint_velocity[i], ep.joint_effort[i]))
            write("odom", t_ns, build.odometry(build.header(t_ns, spec.FRAMES["odom"]),
                                               ep.base_pose[i], ep.base_velocity[i]))
            action = ep.action[i].astype(np.float64)
            position = action.copy()
            position[_BASE] = 0.0
            write("command", t_ns, build.joint_state(build.header(t_ns, ""), spec.ACTION_JOINTS,
                                                     position, commanded_velocity(action)))
            for name, cam in ep.cameras.items():
                header = build.header(t_ns, _camera_frame(cam))
                write((name, "color"), t_ns, build.image(header, cam.color[i], "rgb8"))
                write((name, "color_info"), t_ns, build.camera_info(header, cam))
                write((name, "depth"), t_ns, build.image(header, cam.depth[i], "32FC1"))
                write((name, "depth_info"), t_ns, build.camera_info(header, cam))
        return ep.n_frames, messages


def bag_name(episode_path: Path) -> str:
    return episode_path.name.removesuffix(ep_format.SUFFIX)


def export_mcap(source: str | Path, out_dir: str | Path, *, overwrite: bool = False,
                skip_incomplete: bool = False, compress: bool = True, default_task: str = "",
                progress: bool | None = None) -> McapSummary:
    """One bag per complete episode of `source` (an episode file or a dataset folder), written to
    `out_dir/<episode name>/`. Raises ExportError (nothing written) for incomplete or invalid
    episodes, episodes without a task label (unless `default_task` names them) or a non-empty
    `out_dir` without `overwrite`."""
    from tqdm import tqdm

    start = time.perf_counter()
    episodes = collect_episodes(source, skip_incomplete=skip_incomplete)
    check_task_labels(episodes, default_task, "a bag carries it as brs.task")
    out = check_output_dir(out_dir, episodes, overwrite=overwrite)
    frames = messages = 0
    with staged_output(out) as root:
        for path in tqdm(episodes, desc="mcap export", unit="episode",
                         disable=None if progress is None else not progress):
            n, m = write_bag(path, root / bag_name(path), compress, default_task)
            frames += n
            messages += m
    bags = [out / bag_name(p) for p in episodes]
    return McapSummary(out, bags, frames, messages, time.perf_counter() - start)
