"""Vectorised conversions between numpy arrays and the standard ROS messages of the contract.

No per-element Python loops: bulk data goes through `np.frombuffer` on the way in and through
`array.array.frombytes` on the way out. Assigning a ready `array.array` to a message field is the
fast path in both rosidl setter modes (with ROS_PYTHON_CHECK_FIELDS=1 a `bytes` value is checked
element by element, and a memoryview is always converted element by element: ~10 ms per image).

`image_to_numpy` returns a read-only view of the message buffer unless `copy=True`.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from .robot_spec import Camera

_HOST_BIG_ENDIAN = sys.byteorder == "big"


# ----------------------------------------------------------------------------- stamps

def to_stamp(seconds) -> Time:
    """builtin_interfaces/Time from float seconds (or an rclpy Time, or a Time passed through)."""
    if isinstance(seconds, Time):
        return seconds
    if hasattr(seconds, "to_msg"):  # rclpy.time.Time
        return seconds.to_msg()
    return ns_to_stamp(round(float(seconds) * 1e9))


def ns_to_stamp(ns: int) -> Time:
    """builtin_interfaces/Time of integer nanoseconds (exact)."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def time_text(stamp: Time) -> str:
    """"S.NNNNNNNNN": the exact decimal of a stamp, for a time sent as text (the sim's ~/step
    answer), so that a client waiting for that stamp waits for exactly it."""
    return f"{stamp.sec}.{stamp.nanosec:09d}"


def time_text_ns(text: str) -> int:
    """Integer nanoseconds of a `time_text` string (exact; no float on the way)."""
    sec, _, frac = text.strip().partition(".")
    if not sec.isdigit() or (frac and not frac.isdigit()) or len(frac) > 9:
        raise ValueError(f"not a time in seconds with at most 9 decimals: {text!r}")
    return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))


def stamp_to_sec(stamp) -> float:
    """Seconds of a builtin_interfaces Time or Duration."""
    return stamp.sec + stamp.nanosec * 1e-9


def to_duration(seconds: float) -> Duration:
    """builtin_interfaces/Duration from float seconds."""
    sec, nanosec = divmod(int(round(float(seconds) * 1e9)), 1_000_000_000)
    return Duration(sec=sec, nanosec=nanosec)


def _stamp_or_zero(stamp) -> Time:
    return Time() if stamp is None else to_stamp(stamp)


def _f64(values) -> array.array:
    """array('d') from anything array-like, via one buffer copy."""
    out = array.array("d")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float64).reshape(-1).view(np.uint8))
    return out


def _u8(arr: np.ndarray) -> array.array:
    """array('B') holding the raw bytes of a C-contiguous array."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    return out


def _as_1d(values, n: int, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.size != n:
        raise ValueError(f"{what}: got {out.size} values for {n} joints")
    return out


# ----------------------------------------------------------------------------- joint states

def joint_state_to_dict(msg: JointState) -> dict[str, float]:
    """Map joint name -> position."""
    return dict(zip(msg.name, np.asarray(msg.position, dtype=np.float64).tolist()))


def joint_state_arrays(msg: JointState, names: Sequence[str]):
    """(pos, vel, effort) arrays for `names`, in that order; absent velocity/effort -> NaN.

    Raises KeyError naming the joints that the message lacks.
    """
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise KeyError(f"JointState lacks joints {missing}; it has {list(msg.name)}")
    idx = np.fromiter((index[n] for n in names), dtype=np.intp, count=len(names))
    n_msg = len(msg.name)

    def pick(field):
        values = np.asarray(field, dtype=np.float64)
        if values.size != n_msg:  # empty (allowed by the message definition) or malformed
            return np.full(len(idx), np.nan)
        return values[idx]

    if len(msg.position) != n_msg:
        raise ValueError(f"JointState has {n_msg} names but {len(msg.position)} positions")
    return pick(msg.position), pick(msg.velocity), pick(msg.effort)


def state_positions(msg: JointState) -> np.ndarray:
    """Positions of robot_spec.STATE_JOINTS from a /joint_states message; ValueError (with the
    reason) when joints are missing, lengths disagree or a position is NaN/inf."""
    from .robot_spec import STATE_JOINTS

    try:
        pos, _, _ = joint_state_arrays(msg, STATE_JOINTS)
    except KeyError as exc:
        raise ValueError(str(exc)) from None
    if not np.all(np.isfinite(pos)):
        raise ValueError("NaN/inf position")
    return pos


def quaternion_yaw(q) -> float:
    """Yaw (rad, about z) of a geometry_msgs Quaternion (the z of a ZYX / roll-pitch-yaw split)."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def odom_pose(msg) -> np.ndarray:
    """(x, y, yaw) of base_link in odom from a nav_msgs/Odometry."""
    p = msg.pose.pose.position
    return np.array([p.x, p.y, quaternion_yaw(msg.pose.pose.orientation)])


def make_joint_state(names: Sequence[str], pos, vel=None, effort=None, stamp=None) -> JointState:
    """sensor_msgs/JointState; `vel`/`effort` None -> left empty."""
    n = len(names)
    msg = JointState()
    msg.header.stamp = _stamp_or_zero(stamp)
    msg.name = list(names)
    msg.position = _f64(_as_1d(pos, n, "position"))
    if vel is not None:
        msg.velocity = _f64(_as_1d(vel, n, "velocity"))
    if effort is not None:
        msg.effort = _f64(_as_1d(effort, n, "effort"))
    return msg


# ----------------------------------------------------------------------------- trajectories

def make_trajectory(names: Sequence[str], positions, times, velocities=None,
                    stamp=None) -> JointTrajectory:
    """JointTrajectory from positions (T, N), times (T,) in seconds from start, velocities (T, N)."""
    n = len(names)
    pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if pos.ndim != 2 or pos.shape[1] != n:
        raise ValueError(f"positions must be (T, {n}); got {np.shape(positions)}")
    if t.shape != (pos.shape[0],):
        raise ValueError(f"times must be ({pos.shape[0]},); got {np.shape(times)}")
    if np.any(t < 0) or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
        raise ValueError("times must be finite, non-negative and strictly increasing")
    vel = None
    if velocities is not None:
        vel = np.asarray(velocities, dtype=np.float64).reshape(pos.shape)
    msg = JointTrajectory()
    msg.header.stamp = _stamp_or_zero(stamp)
    msg.joint_names = list(names)
    points = []
    for k in range(pos.shape[0]):  # one message object per point is unavoidable
        point = JointTrajectoryPoint(time_from_start=to_duration(t[k]))
        point.positions = _f64(pos[k])
        if vel is not None:
            point.velocities = _f64(vel[k])
        points.append(point)
    msg.points = points
    return msg


def whole_body_command_msg(targets, period: float) -> JointTrajectory:
    """A one-point whole-body command (docs/controller.md, docs/teleop.md): ACTION_JOINTS, the
    21-D target in both positions and velocities (base entries are velocities, the rest
    positions), time_from_start = `period`, zero stamp. What JoyLo, the keyboard and experts send."""
    from .robot_spec import ACTION_JOINTS

    row = np.asarray(targets, dtype=np.float64)[None]
    return make_trajectory(ACTION_JOINTS, row, [period], velocities=row)


def base_command_msg(v_base, period: float, stamp=None) -> JointTrajectory:
    """A one-point command naming only the base joints: velocities = (vx, vy, wz) in base_link,
    time_from_start = `period`; every other joint keeps its target in the controller."""
    from .robot_spec import BASE_JOINTS

    row = np.asarray(v_base, dtype=np.float64)[None]
    return make_trajectory(BASE_JOINTS, np.zeros_like(row), [period], velocities=row, stamp=stamp)


def trajectory_to_arrays(msg: JointTrajectory):
    """(names, positions (T, N), velocities (T, N) or None, times (T,)) of a JointTrajectory.

    Velocities are None unless every point carries N of them. Raises ValueError when a point
    does not have one position per joint.
    """
    names = list(msg.joint_names)
    n, T = len(names), len(msg.points)
    pos = np.empty((T, n))
    times = np.empty(T)
    has_vel = T > 0 and all(len(p.velocities) == n for p in msg.points)
    vel = np.empty((T, n)) if has_vel else None
    for k, point in enumerate(msg.points):
        if len(point.positions) != n:
            raise ValueError(f"trajectory point {k} has {len(point.positions)} positions "
                             f"for {n} joints")
        pos[k] = np.asarray(point.positions, dtype=np.float64)
        if has_vel:
            vel[k] = np.asarray(point.velocities, dtype=np.float64)
        times[k] = stamp_to_sec(point.time_from_start)
    return names, pos, vel, times


# ----------------------------------------------------------------------------- Float64MultiArray

def make_float64_array(values) -> Float64MultiArray:
    """std_msgs/Float64MultiArray with flat data and an empty layout (forward-controller style)."""
    msg = Float64MultiArray()
    msg.data = _f64(values)
    return msg


def float64_array_to_numpy(msg: Float64MultiArray) -> np.ndarray:
    """Flat float64 copy of a Float64MultiArray's data."""
    return np.array(msg.data, dtype=np.float64)


# ----------------------------------------------------------------------------- images

# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),  # depth in millimetres (REP-118)
    "32FC1": (np.dtype(np.float32), 1),  # depth in metres (REP-118)
    "64FC1": (np.dtype(np.float64), 1),
}


def _encoding(encoding: str) -> tuple[np.dtype, int]:
    try:
        return IMAGE_ENCODINGS[encoding]
    except KeyError:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: "
                         f"{sorted(IMAGE_ENCODINGS)}") from None


def image_to_numpy(msg: Image, copy: bool = False) -> np.ndarray:
    """(H, W) or (H, W, C) array of an Image, honouring `step` padding and `is_bigendian`.

    Without `copy` the result is a read-only view of the message buffer where possible.
    """
    dtype, channels = _encoding(msg.encoding)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"image step {step} < width*channels*itemsize = {row_bytes}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < step * h:
        raise ValueError(f"image data has {buf.size} bytes; {h} rows of step {step} need {step * h}")
    dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    rows = buf[: step * h].reshape(h, step)[:, :row_bytes]
    out = rows.view(dtype).reshape((h, w, channels) if channels > 1 else (h, w))
    if not out.dtype.isnative:
        return out.astype(out.dtype.newbyteorder("="))
    if copy:
        return out.copy()
    out.flags.writeable = False  # aliases the message buffer
    return out


COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "8UC3")  # 8UC3 is taken as RGB
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")  # metres / millimetres (REP 118) / millimetres


def color_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour Image (alpha dropped, BGR reordered; a view where
    possible); ValueError for other encodings."""
    if msg.encoding not in COLOR_ENCODINGS:
        raise ValueError(f"colour image encoding {msg.encoding!r} not supported; use one of {COLOR_ENCODINGS}")
    a = image_to_numpy(msg)
    if msg.encoding.startswith("bgr"):
        a = a[:, :, 2::-1]
    return a[:, :, :3]


def depth_to_metres(msg: Image) -> np.ndarray:
    """(H, W) float32 metres of a depth Image: 32FC1 as is (NaN / 0 invalid), 16UC1 and mono16
    millimetres scaled (0 invalid); ValueError for other encodings."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth image encoding {msg.encoding!r} not supported; use one of {DEPTH_ENCODINGS}")
    a = image_to_numpy(msg)
    if msg.encoding == "32FC1":
        return a
    return a.astype(np.float32) * np.float32(1e-3)


def numpy_to_image(arr, encoding: str, frame_id: str = "", stamp=None) -> Image:
    """sensor_msgs/Image (host byte order, no row padding) from an (H, W[, C]) array.

    The array dtype must be castable ('same_kind') to the encoding's dtype, e.g. float64 depth
    for 32FC1 is fine, float depth for 16UC1 is refused (convert metres to mm explicitly).
    """
    dtype, channels = _encoding(encoding)
    a = np.asarray(arr)
    if a.ndim == 3 and channels == 1 and a.shape[2] == 1:
        a = a[:, :, 0]
    expected = 2 if channels == 1 else 3
    if a.ndim != expected or (channels > 1 and a.shape[2] != channels):
        raise ValueError(f"{encoding} needs an array of shape (H, W{', %d' % channels if channels > 1 else ''}); "
                         f"got {a.shape}")
    if a.dtype != dtype:
        if not np.can_cast(a.dtype, dtype, casting="same_kind"):
            raise ValueError(f"{encoding} needs dtype {dtype}; cannot cast {a.dtype}")
        a = a.astype(dtype)
    h, w = a.shape[:2]
    msg = Image()
    msg.header.stamp = _stamp_or_zero(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(h), int(w)
    msg.encoding = encoding
    msg.is_bigendian = int(_HOST_BIG_ENDIAN)
    msg.step = int(w * channels * dtype.itemsize)
    msg.data = _u8(a)
    return msg


# ----------------------------------------------------------------------------- point clouds

_FIELD_DTYPES = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2",
    PointField.UINT16: "u2", PointField.INT32: "i4", PointField.UINT32: "u4",
    PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}
_RGB_FIELDS = ("rgb", "rgba")


def cloud_dtype(msg: PointCloud2, packed_rgb_as_uint: bool = True) -> np.dtype:
    """numpy structured dtype of one point (offsets and point_step padding included).

    Packed colour fields ('rgb'/'rgba', 4 bytes) are typed uint32 when `packed_rgb_as_uint`.
    """
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in _FIELD_DTYPES:
            raise ValueError(f"point field {f.name!r} has unknown datatype {f.datatype}")
        code = _FIELD_DTYPES[f.datatype]
        if packed_rgb_as_uint and f.name in _RGB_FIELDS and code[1] == "4":
            code = "u4"
        base = np.dtype(order + code)
        names.append(f.name)
        formats.append(base if f.count <= 1 else (base, (int(f.count),)))
        offsets.append(int(f.offset))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": int(msg.point_step)})


def cloud_to_structured(msg: PointCloud2) -> np.ndarray:
    """Flat structured array of all points (row_step padding dropped)."""
    dt = cloud_dtype(msg)
    h, w = int(msg.height), int(msg.width)
    row_bytes = w * int(msg.point_step)
    row_step = int(msg.row_step) if msg.row_step else row_bytes
    if row_step < row_bytes:
        raise ValueError(f"cloud row_step {row_step} < width*point_step = {row_bytes}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < row_step * h:
        raise ValueError(f"cloud data has {buf.size} bytes; {h} rows of {row_step} need {row_step * h}")
    rows = buf[: row_step * h].reshape(h, row_step)[:, :row_bytes]
    return rows.view(dt).reshape(-1)


def pack_rgb(rgb) -> np.ndarray:
    """(N, 3) uint8 -> (N,) uint32 0x00RRGGBB."""
    c = np.asarray(rgb, dtype=np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def unpack_rgb(packed) -> np.ndarray:
    """(N,) uint32 0x00RRGGBB (or float32 with those bits) -> (N, 3) uint8."""
    p = np.asarray(packed)
    if p.dtype.kind == "f":
        p = np.ascontiguousarray(p, dtype=np.float32).view(np.uint32)
    p = p.astype(np.uint32, copy=False)
    out = np.empty((p.shape[0], 3), dtype=np.uint8)
    out[:, 0] = (p >> 16) & 0xFF
    out[:, 1] = (p >> 8) & 0xFF
    out[:, 2] = p & 0xFF
    return out


def points_to_cloud(xyz, rgb=None, frame_id: str = "", stamp=None) -> PointCloud2:
    """Unorganised PointCloud2: x, y, z FLOAT32 (+ rgb FLOAT32 packed 0x00RRGGBB), point_step 16."""
    p = np.asarray(xyz)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"xyz must be (N, 3); got {p.shape}")
    n = p.shape[0]
    buf = np.zeros((n, 4), dtype=np.float32)
    buf[:, :3] = p
    fields = [PointField(name=c, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, c in enumerate("xyz")]
    if rgb is not None:
        c = np.asarray(rgb)
        if c.shape != (n, 3):
            raise ValueError(f"rgb must be ({n}, 3) uint8; got {c.shape}")
        if c.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8; got {c.dtype}")
        buf.view(np.uint32)[:, 3] = pack_rgb(c)
        fields.append(PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1))
    msg = PointCloud2()
    msg.header.stamp = _stamp_or_zero(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, int(n)
    msg.fields = fields
    msg.is_bigendian = _HOST_BIG_ENDIAN
    msg.point_step = 16
    msg.row_step = 16 * int(n)
    msg.is_dense = bool(np.isfinite(buf[:, :3]).all())
    msg.data = _u8(buf)
    return msg


def cloud_to_points(msg: PointCloud2):
    """(xyz (N, 3) float32, rgb (N, 3) uint8 or None) from any field order/padding.

    Colour comes from a packed 'rgb'/'rgba' field or from separate r, g, b fields.
    """
    pts = cloud_to_structured(msg)
    names = pts.dtype.names or ()
    missing = [c for c in "xyz" if c not in names]
    if missing:
        raise ValueError(f"point cloud lacks fields {missing}; has {list(names)}")
    xyz = np.empty((pts.shape[0], 3), dtype=np.float32)
    for i, c in enumerate("xyz"):
        xyz[:, i] = pts[c]
    rgb = None
    packed = next((f for f in _RGB_FIELDS if f in names), None)
    if packed is not None:
        rgb = unpack_rgb(pts[packed])
    elif all(c in names for c in "rgb"):
        rgb = np.empty((pts.shape[0], 3), dtype=np.uint8)
        for i, c in enumerate("rgb"):
            rgb[:, i] = pts[c]
    return xyz, rgb


# ----------------------------------------------------------------------------- camera info

def make_camera_info(camera: Camera, frame_id: str | None = None, stamp=None) -> CameraInfo:
    """Pinhole CameraInfo from the spec's vertical field of view; zero plumb_bob distortion.

    fy = (h/2) / tan(fovy/2), fx = fy (square pixels), cx = (w-1)/2, cy = (h-1)/2.
    `frame_id` defaults to the camera's optical frame.
    """
    w, h = camera.width, camera.height
    fy = (h / 2.0) / math.tan(math.radians(camera.fovy_deg) / 2.0)
    fx, cx, cy = fy, (w - 1) / 2.0, (h - 1) / 2.0
    msg = CameraInfo()
    msg.header.stamp = _stamp_or_zero(stamp)
    msg.header.frame_id = camera.optical_frame if frame_id is None else frame_id
    msg.width, msg.height = int(w), int(h)
    msg.distortion_model = "plumb_bob"
    msg.d = _f64(np.zeros(5))
    msg.k = np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
    msg.r = np.eye(3).reshape(-1)
    msg.p = np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    return msg


def camera_info_to_K(msg: CameraInfo) -> np.ndarray:
    """3x3 intrinsic matrix of a CameraInfo."""
    return np.array(msg.k, dtype=np.float64).reshape(3, 3)


# ----------------------------------------------------------------------------- object poses

def object_poses_to_markers(poses, frame_id: str, stamp=None) -> MarkerArray:
    """{name: (x, y, z, qw, qx, qy, qz)} -> MarkerArray, one small cube per object with ns = name
    (viewable in RViz / Foxglove; the sim's privileged object poses for scripted experts)."""
    out = MarkerArray()
    header_stamp = _stamp_or_zero(stamp)
    for i, (name, pose) in enumerate(poses.items()):
        m = Marker(ns=name, id=i, type=Marker.CUBE, action=Marker.ADD, frame_locked=False)
        m.header.frame_id, m.header.stamp = frame_id, header_stamp
        p = m.pose
        p.position.x, p.position.y, p.position.z = (float(v) for v in pose[:3])
        p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = (float(v) for v in pose[3:7])
        m.scale.x = m.scale.y = m.scale.z = 0.05
        m.color.r, m.color.g, m.color.b, m.color.a = 0.9, 0.6, 0.1, 1.0
        out.markers.append(m)
    return out


def markers_to_object_poses(msg: MarkerArray) -> dict[str, np.ndarray]:
    """Inverse of object_poses_to_markers: {ns: (x, y, z, qw, qx, qy, qz)}."""
    out = {}
    for m in msg.markers:
        p, q = m.pose.position, m.pose.orientation
        out[m.ns] = np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z])
    return out
