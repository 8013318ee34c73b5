"""viz_bridge over real DDS and a real Foxglove WebSocket client (the Foxglove WebSocket protocol,
subprotocol `foxglove.sdk.v1`, spoken here with `websockets`): channels advertised with their
protobuf schemas, messages decoded from those schemas as the Foxglove app does, the URDF served
as an asset."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import time

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image, JointState, PointCloud2

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_joint_state, numpy_to_image, points_to_cloud
from rosutil import wait_for

pytest.importorskip("foxglove")
websockets = pytest.importorskip("websockets")
SUBPROTOCOL = "foxglove.sdk.v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _decoder(channel: dict):
    """A protobuf message class built from the schema the server advertised."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))


async def _session(url: str, want: list[str], n_each: int, timeout: float):
    """Connect, subscribe to the `want` topics, collect `n_each` decoded messages per topic and
    fetch the URDF asset. Returns (advertised channels by topic, messages by topic, asset reply)."""
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as ws:
        channels: dict[str, dict] = {}
        got: dict[str, list] = {t: [] for t in want}
        decoders, by_sub = {}, {}
        asset = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        subscribed = False
        while loop.time() < deadline:
            try:
                frame = await asyncio.wait_for(ws.recv(), max(0.05, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg["op"] == "advertise":
                    channels.update({c["topic"]: c for c in msg["channels"]})
                if not subscribed and all(t in channels for t in want):
                    subs = [{"id": i, "channelId": channels[t]["id"]} for i, t in enumerate(want)]
                    by_sub = {i: t for i, t in enumerate(want)}
                    decoders = {t: _decoder(channels[t]) for t in want}
                    await ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
                    await ws.send(json.dumps({"op": "fetchAsset", "uri": "package://brs_sim/models/robot.urdf",
                                              "requestId": 7}))
                    subscribed = True
                continue
            op = frame[0]
            if op == 1:  # message data: subscription id u32, log time u64, payload
                sub, _ = struct.unpack_from("<IQ", frame, 1)
                topic = by_sub[sub]
                got[topic].append(decoders[topic].FromString(frame[13:]))
            elif op == 4:  # fetch asset response: request id u32, status u8, error u32 + bytes, data
                request, status, n = struct.unpack_from("<IBI", frame, 1)
                asset = (request, status, frame[10 + n:])
            if asset and all(len(v) >= n_each for v in got.values()):
                break
        return channels, got, asset


def test_a_foxglove_client_gets_frames_cloud_images_and_the_urdf(ros, tmp_path):
    h = ros
    port = _free_port()
    bridge = h.spawn("viz_bridge", {"port": port, "tf_rate_hz": 50.0, "cloud_rate_hz": 0.0, "image_rate_hz": 0.0},
                     log_path=tmp_path / "viz.log")
    pubs = {
        "js": h.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE),
        "odom": h.node.create_publisher(Odometry, topics.ODOM, qos.STATE),
        "points": h.node.create_publisher(PointCloud2, topics.POINTS, qos.SENSOR),
        "head": h.node.create_publisher(Image, topics.camera_topic("head", "color"), qos.SENSOR),
        "wrist": h.node.create_publisher(Image, topics.camera_topic("left_wrist", "color"), qos.SENSOR),
    }
    wait_for(lambda: "Foxglove WebSocket on" in bridge.log() or bridge.proc.poll() is not None,
             30, message="viz_bridge serving")
    assert bridge.proc.poll() is None, bridge.log()
    h.assert_parameters_described("/viz_bridge")
    # no client yet: the bridge takes no ROS message at all
    time.sleep(1.0)  # longer than the bridge's subscription check
    idle = {name: p.get_subscription_count() for name, p in pubs.items()}
    assert not any(idle.values()), f"subscriptions before any client: {idle}"
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    q = np.array([spec.JOINT_BY_NAME[j].home for j in spec.STATE_JOINTS])
    q[spec.STATE_JOINTS.index("torso_joint1")] = 0.7
    image = np.zeros((24, 32, 3), np.uint8)
    image[:, :16] = (255, 0, 0)
    odom = Odometry()
    odom.pose.pose.position.x, odom.pose.pose.position.y = 1.0, -0.5
    odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = np.sin(0.3), np.cos(0.3)  # yaw 0.6
    stamp = [100.0]
    seen = dict.fromkeys(pubs, 0)  # the most subscriptions each topic had while the client was there

    def publish():
        stamp[0] += 0.05
        for name, p in pubs.items():
            seen[name] = max(seen[name], p.get_subscription_count())
        pubs["odom"].publish(odom)
        pubs["js"].publish(make_joint_state(spec.STATE_JOINTS, q, stamp=stamp[0]))
        pubs["points"].publish(points_to_cloud(xyz, rgb, spec.FRAMES["base"], stamp[0]))
        pubs["head"].publish(numpy_to_image(image, "rgb8", spec.CAMERAS["head"].optical_frame, stamp[0]))

    timer = h.node.create_timer(0.05, publish)
    want = [topics.TF, topics.JOINT_STATES, topics.POINTS, topics.camera_topic("head", "color")]
    try:
        channels, got, asset = asyncio.run(_session(f"ws://127.0.0.1:{port}", want, 3, 30.0))
    finally:
        h.node.destroy_timer(timer)
    counts = {t: len(v) for t, v in got.items()}
    assert all(n >= 3 for n in counts.values()), f"decoded messages per topic {counts}; log:\n{bridge.log()[-2000:]}"
    # subscribed to what the client's channels need (joint states twice: their channel, and /tf's
    # polled input with odometry), never to the wrist camera nobody watched; dropped once it left
    assert seen == {"js": 2, "odom": 1, "points": 1, "head": 1, "wrist": 0}, seen
    wait_for(lambda: not any(p.get_subscription_count() for p in pubs.values()), 10,
             message=lambda: f"subscriptions after the client left: "
                             f"{ {n: p.get_subscription_count() for n, p in pubs.items()} }")
    assert channels[topics.POINTS]["schemaName"] == "foxglove.PointCloud"

    # the cloud: 500 points, xyz + rgba at a 16-byte stride, exactly what was published
    cloud = got[topics.POINTS][-1]
    data = np.frombuffer(cloud.data, dtype=[("xyz", "<f4", 3), ("rgba", "u1", 4)])
    assert cloud.point_stride == 16 and cloud.frame_id == spec.FRAMES["base"]
    np.testing.assert_array_equal(data["xyz"], xyz)
    np.testing.assert_array_equal(data["rgba"][:, :3], rgb)
    # frames: odom -> base_link from the odometry; every URDF link has its parent
    from brs_sim.urdf import URDF_PATH, UrdfKinematics

    tf = {t.child_frame_id: t for t in got[topics.TF][-1].transforms}
    assert set(tf) == set(UrdfKinematics(URDF_PATH).links)
    base = tf[spec.FRAMES["base"]]
    assert base.parent_frame_id == spec.FRAMES["odom"]
    assert (base.translation.x, base.translation.y) == pytest.approx((1.0, -0.5))
    assert 2 * np.arctan2(base.rotation.z, base.rotation.w) == pytest.approx(0.6)
    assert spec.CAMERAS["head"].optical_frame in tf
    # joints and the image as published
    js = got[topics.JOINT_STATES][-1]
    assert [j.name for j in js.joints] == list(spec.STATE_JOINTS)
    assert js.joints[spec.STATE_JOINTS.index("torso_joint1")].position == pytest.approx(0.7)
    img = got[topics.camera_topic("head", "color")][-1]
    assert (img.width, img.height, img.encoding) == (32, 24, "rgb8")
    np.testing.assert_array_equal(np.frombuffer(img.data, np.uint8).reshape(24, 32, 3), image)
    # the robot model for the 3D panel's URDF layer
    assert asset is not None and asset[:2] == (7, 0) and b"<robot" in asset[2]
    assert bridge.stop() == 0, bridge.log()
