"""brs_common.convert: round trips, wire format details, clear errors and speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from brs_common import convert as cv
from brs_common import robot_spec as spec

RNG = np.random.default_rng(0)


def wire(msg):
    """Serialize + deserialize, as a subscriber in another process would see the message."""
    return deserialize_message(serialize_message(msg), type(msg))


# ----------------------------------------------------------------------------- stamps

@pytest.mark.parametrize("seconds", [0.0, 1.5, 12345.000000001, 1.9999999999, -0.25])
def test_stamp_round_trip(seconds):
    stamp = cv.to_stamp(seconds)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert cv.stamp_to_sec(stamp) == pytest.approx(seconds, abs=1e-9)


def test_duration():
    assert cv.stamp_to_sec(cv.to_duration(2.75)) == pytest.approx(2.75)


# ----------------------------------------------------------------------------- joint states

def test_joint_state_round_trip_and_selection():
    names = spec.STATE_JOINTS
    pos, vel, eff = (RNG.normal(size=len(names)) for _ in range(3))
    msg = wire(cv.make_joint_state(names, pos, vel, eff, stamp=3.25))
    assert cv.stamp_to_sec(msg.header.stamp) == pytest.approx(3.25)
    assert cv.joint_state_to_dict(msg) == dict(zip(names, pos.tolist()))
    pick = list(reversed(spec.GROUPS["right_arm"].joints))
    idx = [names.index(n) for n in pick]
    p, v, e = cv.joint_state_arrays(msg, pick)
    np.testing.assert_array_equal(p, pos[idx])
    np.testing.assert_array_equal(v, vel[idx])
    np.testing.assert_array_equal(e, eff[idx])


def test_joint_state_missing_velocity_is_nan_and_missing_name_is_keyerror():
    names = spec.GROUPS["torso"].joints
    msg = cv.make_joint_state(names, [0.1, 0.2, 0.3, 0.4])
    p, v, e = cv.joint_state_arrays(msg, names)
    np.testing.assert_allclose(p, [0.1, 0.2, 0.3, 0.4])
    assert np.isnan(v).all() and np.isnan(e).all()
    with pytest.raises(KeyError, match="left_arm_joint1"):
        cv.joint_state_arrays(msg, ["left_arm_joint1"])
    with pytest.raises(ValueError, match="4 joints"):
        cv.make_joint_state(names, [0.0, 1.0])


# ----------------------------------------------------------------------------- trajectories

def test_trajectory_round_trip():
    names = spec.ACTION_JOINTS
    T = 8
    pos = RNG.normal(size=(T, len(names)))
    vel = RNG.normal(size=(T, len(names)))
    times = 0.1 * np.arange(1, T + 1)
    msg = wire(cv.make_trajectory(names, pos, times, vel, stamp=10.0))
    assert isinstance(msg, JointTrajectory)
    n2, p2, v2, t2 = cv.trajectory_to_arrays(msg)
    assert n2 == list(names)
    np.testing.assert_array_equal(p2, pos)
    np.testing.assert_array_equal(v2, vel)
    np.testing.assert_allclose(t2, times, atol=1e-9)
    _, _, v3, _ = cv.trajectory_to_arrays(cv.make_trajectory(names, pos, times))
    assert v3 is None


def test_trajectory_bad_input():
    names = spec.GROUPS["torso"].joints
    with pytest.raises(ValueError, match="positions"):
        cv.make_trajectory(names, np.zeros((2, 3)), [0.1, 0.2])
    with pytest.raises(ValueError, match="times"):
        cv.make_trajectory(names, np.zeros((2, 4)), [0.1])
    with pytest.raises(ValueError, match="increasing"):
        cv.make_trajectory(names, np.zeros((2, 4)), [0.2, 0.1])
    msg = cv.make_trajectory(names, np.zeros((2, 4)), [0.1, 0.2])
    msg.points[1].positions = [0.0]
    with pytest.raises(ValueError, match="point 1"):
        cv.trajectory_to_arrays(msg)


def test_float64_array_round_trip():
    values = RNG.normal(size=6)
    msg = wire(cv.make_float64_array(values))
    assert isinstance(msg, Float64MultiArray)
    np.testing.assert_array_equal(cv.float64_array_to_numpy(msg), values)


# ----------------------------------------------------------------------------- images

def _random_image(encoding, h=24, w=32):
    dtype, c = cv.IMAGE_ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    if dtype.kind == "f":
        return RNG.uniform(0.1, 6.0, size=shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "32FC1", "16UC1", "rgba8", "64FC1"])
def test_image_round_trip(encoding):
    arr = _random_image(encoding)
    msg = wire(cv.numpy_to_image(arr, encoding, "cam_optical", stamp=2.5))
    assert (msg.height, msg.width, msg.encoding) == (24, 32, encoding)
    assert msg.header.frame_id == "cam_optical"
    assert msg.step == arr.strides[0]
    out = cv.image_to_numpy(msg)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable  # a view of the message buffer
    writable = cv.image_to_numpy(msg, copy=True)
    writable[0, 0] = 0


def test_image_step_padding_and_big_endian():
    depth = RNG.integers(0, 65535, size=(5, 7), dtype=np.uint16)
    padded = np.zeros((5, 7 * 2 + 6), dtype=np.uint8)  # 6 bytes of row padding
    padded[:, :14] = depth.astype(">u2").view(np.uint8).reshape(5, 14)
    msg = Image(height=5, width=7, encoding="16UC1", is_bigendian=1, step=20)
    msg.data = padded.tobytes()
    out = cv.image_to_numpy(wire(msg))
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out, depth)

    rgb = RNG.integers(0, 255, size=(4, 3, 3), dtype=np.uint8)
    padded = np.full((4, 12), 0xAB, dtype=np.uint8)
    padded[:, :9] = rgb.reshape(4, 9)
    msg = Image(height=4, width=3, encoding="rgb8", step=12, data=padded.tobytes())
    np.testing.assert_array_equal(cv.image_to_numpy(msg), rgb)


def test_image_errors():
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        cv.image_to_numpy(Image(height=1, width=1, encoding="yuv422", step=2, data=b"\0\0"))
    with pytest.raises(ValueError, match="data has 10 bytes"):
        cv.image_to_numpy(Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(10)))
    with pytest.raises(ValueError, match="step"):
        cv.image_to_numpy(Image(height=2, width=2, encoding="rgb8", step=4, data=bytes(8)))
    with pytest.raises(ValueError, match="unsupported"):
        cv.numpy_to_image(np.zeros((2, 2)), "yuv422")
    with pytest.raises(ValueError, match="shape"):
        cv.numpy_to_image(np.zeros((2, 2), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="cannot cast"):
        cv.numpy_to_image(np.zeros((2, 2), np.float32), "16UC1")
    ok = cv.numpy_to_image(np.ones((2, 2)), "32FC1")  # float64 -> float32 is allowed
    assert cv.image_to_numpy(ok).dtype == np.float32


# ----------------------------------------------------------------------------- point clouds

def test_cloud_round_trip_and_layout():
    n = 1000
    xyz = RNG.normal(size=(n, 3)).astype(np.float32)
    rgb = RNG.integers(0, 256, size=(n, 3), dtype=np.uint8)
    msg = wire(cv.points_to_cloud(xyz, rgb, "base_link", stamp=1.0))
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, n, 16, 16 * n)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1), ("rgb", 12, PointField.FLOAT32, 1)]
    assert msg.is_dense and msg.header.frame_id == "base_link"
    # rgb is the float32 whose bits are 0x00RRGGBB (PCL / RViz / Foxglove convention)
    raw = np.frombuffer(msg.data, dtype=np.uint32).reshape(n, 4)[:, 3]
    r, g, b = (int(v) for v in rgb[0])
    assert int(raw[0]) == (r << 16) | (g << 8) | b
    xyz2, rgb2 = cv.cloud_to_points(msg)
    np.testing.assert_array_equal(xyz2, xyz)
    np.testing.assert_array_equal(rgb2, rgb)


def test_cloud_without_colour_and_not_dense():
    xyz = np.array([[1, 2, 3], [np.nan, 0, 0]], dtype=np.float32)
    msg = cv.points_to_cloud(xyz)
    assert not msg.is_dense and msg.point_step == 16 and len(msg.fields) == 3
    out, rgb = cv.cloud_to_points(msg)
    assert rgb is None
    np.testing.assert_array_equal(out, xyz)


def test_cloud_any_field_order_with_padding_and_big_endian():
    n = 50
    xyz = RNG.normal(size=(n, 3)).astype(np.float32)
    rgb = RNG.integers(0, 256, size=(n, 3), dtype=np.uint8)
    # rgb first (as UINT32), then an extra intensity field, z, y, x; 8 bytes of padding; big-endian
    dt = np.dtype({"names": ["rgb", "intensity", "z", "y", "x"],
                   "formats": [">u4", ">f8", ">f4", ">f4", ">f4"],
                   "offsets": [0, 4, 12, 16, 20], "itemsize": 32})
    pts = np.zeros(n, dtype=dt)
    pts["rgb"] = cv.pack_rgb(rgb)
    pts["x"], pts["y"], pts["z"] = xyz.T
    fields = [PointField(name="rgb", offset=0, datatype=PointField.UINT32, count=1),
              PointField(name="intensity", offset=4, datatype=PointField.FLOAT64, count=1),
              PointField(name="z", offset=12, datatype=PointField.FLOAT32, count=1),
              PointField(name="y", offset=16, datatype=PointField.FLOAT32, count=1),
              PointField(name="x", offset=20, datatype=PointField.FLOAT32, count=1)]
    # organised 5 x 10 with 4 bytes of padding per row
    rows = np.zeros((5, 10 * 32 + 4), dtype=np.uint8)
    rows[:, :320] = pts.view(np.uint8).reshape(5, 320)
    msg = PointCloud2(height=5, width=10, fields=fields, is_bigendian=True, point_step=32,
                      row_step=324, data=rows.tobytes(), is_dense=True)
    xyz2, rgb2 = cv.cloud_to_points(wire(msg))
    np.testing.assert_array_equal(xyz2, xyz)
    np.testing.assert_array_equal(rgb2, rgb)


def test_cloud_separate_rgb_fields_and_errors():
    dt = np.dtype({"names": ["x", "y", "z", "r", "g", "b"],
                   "formats": ["<f4"] * 3 + ["u1"] * 3, "offsets": [0, 4, 8, 12, 13, 14],
                   "itemsize": 16})
    pts = np.zeros(3, dtype=dt)
    pts["x"] = [1, 2, 3]
    pts["r"], pts["g"], pts["b"] = [10, 20, 30], [40, 50, 60], [70, 80, 90]
    fields = [PointField(name=c, offset=o, datatype=PointField.FLOAT32 if c in "xyz" else PointField.UINT8,
                         count=1) for c, o in zip("xyzrgb", [0, 4, 8, 12, 13, 14])]
    msg = PointCloud2(height=1, width=3, fields=fields, point_step=16, row_step=48,
                      data=pts.tobytes())
    xyz, rgb = cv.cloud_to_points(msg)
    np.testing.assert_array_equal(xyz[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(rgb, [[10, 40, 70], [20, 50, 80], [30, 60, 90]])
    msg.data = pts.tobytes()[:40]
    with pytest.raises(ValueError, match="data has 40 bytes"):
        cv.cloud_to_points(msg)
    with pytest.raises(ValueError, match="lacks fields"):
        cv.cloud_to_points(PointCloud2(height=1, width=1, fields=fields[1:], point_step=16,
                                       row_step=16, data=bytes(16)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        cv.points_to_cloud(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        cv.points_to_cloud(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32))


# ----------------------------------------------------------------------------- camera info

def test_camera_info_projects_known_point():
    cam = spec.CAMERAS["head"]
    msg = wire(cv.make_camera_info(cam, stamp=4.0))
    assert isinstance(msg, CameraInfo)
    assert msg.header.frame_id == cam.optical_frame
    assert (msg.width, msg.height, msg.distortion_model) == (cam.width, cam.height, "plumb_bob")
    assert list(msg.d) == [0.0] * 5
    K = cv.camera_info_to_K(msg)
    P = np.asarray(msg.p).reshape(3, 4)
    np.testing.assert_allclose(P[:, :3], K)
    np.testing.assert_allclose(np.asarray(msg.r).reshape(3, 3), np.eye(3))
    # A point on the upper edge of the vertical field of view lands on the image's top border.
    z = 2.0
    y = -z * math.tan(math.radians(cam.fovy_deg) / 2)
    u, v, w = K @ np.array([0.3, y, z])
    assert v / w == pytest.approx(-0.5, abs=1e-9)  # top edge of pixel row 0
    assert u / w == pytest.approx((cam.width - 1) / 2 + K[0, 0] * 0.3 / z)
    u, v, w = K @ np.array([0.0, 0.0, 1.0])  # optical axis hits the image centre
    assert (u / w, v / w) == ((cam.width - 1) / 2, (cam.height - 1) / 2)
    assert K[0, 0] == K[1, 1]


# ----------------------------------------------------------------------------- speed

def _median_ms(fn, repeat=200):
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(samples))


def test_conversion_speed():
    depth = RNG.uniform(0.1, 6.0, size=(240, 320)).astype(np.float32)
    img = wire(cv.numpy_to_image(depth, "32FC1"))
    xyz = RNG.normal(size=(4096, 3)).astype(np.float32)
    rgb = RNG.integers(0, 256, size=(4096, 3), dtype=np.uint8)
    cloud = wire(cv.points_to_cloud(xyz, rgb))
    timings = {
        "image_to_numpy 32FC1 320x240": _median_ms(lambda: cv.image_to_numpy(img)),
        "numpy_to_image 32FC1 320x240": _median_ms(lambda: cv.numpy_to_image(depth, "32FC1")),
        "points_to_cloud 4096 xyz+rgb": _median_ms(lambda: cv.points_to_cloud(xyz, rgb)),
        "cloud_to_points 4096 xyz+rgb": _median_ms(lambda: cv.cloud_to_points(cloud)),
    }
    print(timings)
    slow = {k: v for k, v in timings.items() if v >= 2.0}
    assert not slow, f"conversions slower than 2 ms median: {slow}"


def test_quaternion_yaw_and_odom_pose_match_scipy():
    """Yaw of arbitrary (tilted) orientations equals scipy's ZYX yaw; odom_pose reads x, y, yaw."""
    from geometry_msgs.msg import Quaternion
    from nav_msgs.msg import Odometry
    from scipy.spatial.transform import Rotation

    from brs_common.convert import odom_pose, quaternion_yaw

    rotations = Rotation.random(200, random_state=3)
    for r in rotations:
        x, y, z, w = r.as_quat()
        assert quaternion_yaw(Quaternion(x=x, y=y, z=z, w=w)) == pytest.approx(r.as_euler("ZYX")[0], abs=1e-9)
    msg = Odometry()
    msg.pose.pose.position.x, msg.pose.pose.position.y = 1.5, -0.25
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = np.sin(-2.0 / 2), np.cos(-2.0 / 2)
    np.testing.assert_allclose(odom_pose(msg), [1.5, -0.25, -2.0], atol=1e-12)


def test_colour_and_depth_decoding_of_every_supported_encoding():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    for encoding, data in (("rgb8", rgb), ("8UC3", rgb), ("bgr8", rgb[..., ::-1]), ("rgba8", rgba),
                           ("bgra8", rgba[..., [2, 1, 0, 3]])):
        np.testing.assert_array_equal(cv.color_to_rgb(cv.numpy_to_image(np.ascontiguousarray(data), encoding)), rgb)
    mm = np.array([[0, 1000], [1500, 65535]], np.uint16)
    for encoding in ("16UC1", "mono16"):
        np.testing.assert_allclose(cv.depth_to_metres(cv.numpy_to_image(mm, encoding)),
                                   [[0.0, 1.0], [1.5, 65.535]], rtol=1e-6)
    metres = np.array([[np.nan, 0.5]], np.float32)
    np.testing.assert_array_equal(cv.depth_to_metres(cv.numpy_to_image(metres, "32FC1")), metres)
    with pytest.raises(ValueError, match="colour image encoding 'mono8' not supported"):
        cv.color_to_rgb(cv.numpy_to_image(np.zeros((2, 2), np.uint8), "mono8"))
    with pytest.raises(ValueError, match="depth image encoding '8UC1' not supported"):
        cv.depth_to_metres(cv.numpy_to_image(np.zeros((2, 2), np.uint8), "8UC1"))


def test_time_text_is_exactly_the_stamp():
    """The sim's ~/step answer names the stamp of its /clock exactly (integer ns both ways)."""
    for ns in (0, 10_000_000, 605_740_000_000, 466_630_000_002, 2**40 + 7):
        stamp = cv.ns_to_stamp(ns)
        assert stamp.sec * 1_000_000_000 + stamp.nanosec == ns
        assert cv.time_text_ns(cv.time_text(stamp)) == ns
    assert cv.time_text(cv.ns_to_stamp(3_500_000_000)) == "3.500000000" and cv.time_text_ns("3.5") == 3_500_000_000
    for bad in ("-1.0", "1.2.3", "abc", "1.0000000001", ""):
        with pytest.raises(ValueError):
            cv.time_text_ns(bad)
