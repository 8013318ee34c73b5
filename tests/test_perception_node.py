"""The perception node over real DDS: with the sim node (cameras on), and fed bad input by hand."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import cloud_to_points, make_camera_info, make_joint_state, numpy_to_image, stamp_to_sec
from brs_policy.perception import crop_box, typical_pose
from rosutil import wait_for


def test_node_publishes_fused_cloud_from_the_sim(ros, tmp_path):
    h = ros
    h.record(topics.POINTS, PointCloud2, qos.SENSOR, keep=50)
    h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    h.record(topics.JOINT_STATES, JointState, qos.STATE, keep=50)
    sim = h.spawn("sim_node", {"speed_factor": 1.0, "task": "bimanual_box"}, log_path=tmp_path / "sim.log")
    node = h.spawn("perception_node", {"use_sim_time": True, "crop": "bimanual_box"},
                   log_path=tmp_path / "perception.log")
    wait_for(lambda: h.count(topics.POINTS) >= 3 or sim.proc.poll() is not None
             or node.proc.poll() is not None, 60, message="3 clouds on /perception/points")
    assert node.proc.poll() is None, node.log()
    assert sim.proc.poll() is None, sim.log()
    msg = h.last(topics.POINTS)
    assert msg.header.frame_id == spec.FRAMES["base"]
    assert msg.width * msg.height == 4096
    xyz, rgb = cloud_to_points(msg)
    assert xyz.shape == (4096, 3) and rgb is not None
    box = crop_box("bimanual_box")
    assert np.all(xyz >= box[:, 0] - 1e-5) and np.all(xyz <= box[:, 1] + 1e-5)
    z = xyz[:, 2]
    assert z.min() >= box[2, 0] > 0.0  # the task's crop keeps the floor out
    assert 0.6 < z.max() < 1.6  # table top (0.75 m), the can on it, the robot's own arms
    assert np.sum(np.abs(z - 0.75) < 0.02) > 50  # the table top is a plane at 0.75 m
    # stamped with the image time (sim time), which is a /joint_states time of the sim
    assert stamp_to_sec(msg.header.stamp) > 0
    wait_for(lambda: (h.diagnostic_status("perception: pipeline") or (0, {}))[1].get("processed", "0") != "0", 10,
             message="pipeline diagnostics")
    level, values = h.diagnostic_status("perception: pipeline")
    assert level == 0
    assert float(values["compute_ms_p50"]) > 0
    assert "dropped_frames" in values


def test_bad_images_are_counted_and_never_crash_the_node(ros, tmp_path):
    h = ros
    h.record(topics.POINTS, PointCloud2, qos.SENSOR, keep=50)
    h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    node = h.spawn("perception_node", {"cameras": ["head"], "max_joint_state_age": 0.05},
                   log_path=tmp_path / "perception.log")
    pub_js = h.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    pub_c = h.node.create_publisher(Image, topics.camera_topic("head", "color"), qos.SENSOR)
    pub_d = h.node.create_publisher(Image, topics.camera_topic("head", "depth"), qos.SENSOR)
    wait_for(lambda: min(p.get_subscription_count() for p in (pub_js, pub_c, pub_d)) > 0, 30,
             message="perception node subscribed")
    h.assert_parameters_described("/perception")
    cam = spec.CAMERAS["head"]
    q = typical_pose()
    good_rgb = np.full((cam.height, cam.width, 3), 128, np.uint8)
    good_depth = np.full((cam.height, cam.width), 1.0, np.float32)  # a wall 1 m ahead
    t = [10.0]

    def send(color, depth, color_enc="rgb8", depth_enc="32FC1", js_offset=0.0):
        t[0] += 0.1
        pub_js.publish(make_joint_state(spec.STATE_JOINTS, q, stamp=t[0] + js_offset))
        pub_c.publish(numpy_to_image(color, color_enc, cam.optical_frame, t[0]))
        pub_d.publish(numpy_to_image(depth, depth_enc, cam.optical_frame, t[0]))

    def rejected(key):
        st = h.diagnostic_status("perception: input")
        return int(st[1].get(f"rejected.{key}", 0)) if st else 0

    # wrong size colour image
    wait_for(lambda: send(good_rgb[:100, :100], good_depth) or rejected("bad_image") >= 1, 15, 0.2,
             message="wrong size counted")
    # wrong encodings: mono colour, 8-bit depth
    n = rejected("bad_image")
    wait_for(lambda: send(good_rgb[:, :, 0], good_depth, color_enc="mono8") or rejected("bad_image") > n,
             15, 0.2, message="mono8 colour counted")
    n = rejected("bad_image")
    wait_for(lambda: send(good_rgb, (good_depth * 100).astype(np.uint8), depth_enc="mono8")
             or rejected("bad_image") > n, 15, 0.2, message="mono8 depth counted")
    # joint state far from the image time
    wait_for(lambda: send(good_rgb, good_depth, js_offset=1.0) or rejected("stale_joint_state") >= 1,
             15, 0.2, message="stale joint state counted")
    assert node.proc.poll() is None, node.log()
    assert h.count(topics.POINTS) == 0
    # still alive and working: good input -> a cloud, with the wall 1 m ahead of the head camera
    wait_for(lambda: send(good_rgb, good_depth) or h.count(topics.POINTS) > 0, 15, 0.2,
             message="a cloud from good images")
    xyz, rgb = cloud_to_points(h.last(topics.POINTS))
    assert xyz.shape == (4096, 3)
    assert np.all(rgb == 128)
    assert node.proc.poll() is None
    assert "Traceback" not in node.log()
    assert node.log().count("no camera_info on /cameras/head/depth/camera_info yet") == 1  # warned once

    # a real camera's size: its camera_info (640x480, K scaled x2) makes 640x480 images and 16UC1
    # depth in millimetres work, and the same wall lands at the same place
    info = make_camera_info(cam, cam.optical_frame)
    k = np.array(info.k).reshape(3, 3)
    k[:2, :] *= 2.0
    k[:2, 2] += 0.5  # pixel centres: x' = 2 x + 0.5
    info.width, info.height, info.k = 640, 480, k.ravel().tolist()
    pub_info = h.node.create_publisher(CameraInfo, topics.camera_topic("head", "depth_info"), qos.SENSOR)
    wait_for(lambda: pub_info.get_subscription_count() > 0, 15, message="camera_info subscribed")
    big_rgb = np.full((480, 640, 3), 128, np.uint8)
    big_depth = np.full((480, 640), 1000, np.uint16)  # 16UC1: mm

    def intrinsics():
        st = h.diagnostic_status("perception: pipeline")
        return st[1].get("head.intrinsics", "") if st else ""

    n = h.count(topics.POINTS)
    wait_for(lambda: pub_info.publish(info) or send(big_rgb, big_depth, depth_enc="16UC1")
             or (h.count(topics.POINTS) > n + 1 and intrinsics() == "camera_info 640x480"), 15, 0.2,
             message=f"clouds from 640x480 images; intrinsics {intrinsics()!r}")
    big, _ = cloud_to_points(h.last(topics.POINTS))
    np.testing.assert_allclose([big.min(0), big.max(0)], [xyz.min(0), xyz.max(0)], atol=0.01)
    assert "intrinsics from camera_info: 640x480" in node.log()
    n = rejected("bad_image")
    wait_for(lambda: send(good_rgb, good_depth) or rejected("bad_image") > n, 15, 0.2,
             message="a 320x240 image no longer matches the camera's camera_info")
