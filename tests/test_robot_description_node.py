"""The robot description node over real DDS (own domain): the URDF is latched on /robot_description,
so a subscriber that joins after it went out still gets it; urdf_file publishes a given file; an
unreadable or broken one is a configuration error (exit code 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from std_msgs.msg import String

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.process import stop_process
from brs_sim.urdf import URDF_PATH, UrdfKinematics, robot_urdf
from rosutil import wait_for


class DescriptionNode:
    """`python -m brs_sim.robot_description_node` in its own process group (the console script
    appears only after the package is reinstalled)."""

    def __init__(self, log_path, urdf_file: str | None = None):
        args = [sys.executable, "-m", "brs_sim.robot_description_node", "--ros-args"]
        if urdf_file is not None:
            args += ["-p", f"urdf_file:={urdf_file}"]
        self.log_path = log_path
        self.proc = subprocess.Popen(args, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        return stop_process(self.proc)


@pytest.fixture
def nodes():
    started: list[DescriptionNode] = []
    yield started
    for node in started:
        node.stop()


def start(nodes, tmp_path, urdf_file=None) -> DescriptionNode:
    node = DescriptionNode(tmp_path / f"node{len(nodes)}.log", urdf_file)
    nodes.append(node)
    return node


def wait_published(node: DescriptionNode) -> None:
    wait_for(lambda: f"published {topics.ROBOT_DESCRIPTION}" in node.log() or node.proc.poll() is not None,
             60, message="the node to publish")
    assert node.proc.poll() is None, node.log()


def test_late_subscriber_gets_the_latched_urdf(ros, nodes, tmp_path):
    h = ros
    node = start(nodes, tmp_path)
    wait_published(node)  # it went out before anyone subscribed
    h.record(topics.ROBOT_DESCRIPTION, String, qos.ROBOT_DESCRIPTION)
    wait_for(lambda: h.count(topics.ROBOT_DESCRIPTION) > 0, 20, message="the latched /robot_description")
    text = h.last(topics.ROBOT_DESCRIPTION).data
    assert text == robot_urdf() == URDF_PATH.read_text()
    kin = UrdfKinematics(text)
    assert kin.root == spec.FRAMES["base"]
    assert set(kin.movable) == set(spec.STATE_JOINTS)
    assert all(cam.optical_frame in kin.links for cam in spec.CAMERAS.values())
    # published once: nothing more arrives
    assert h.count(topics.ROBOT_DESCRIPTION) == 1
    assert node.stop() == 0


def test_urdf_file_is_published_as_is(ros, nodes, tmp_path):
    h = ros
    custom = tmp_path / "calibrated.urdf"
    custom.write_text(URDF_PATH.read_text().replace('<robot name="', '<robot name="calibrated_', 1))
    node = start(nodes, tmp_path, str(custom))
    wait_published(node)
    h.record(topics.ROBOT_DESCRIPTION, String, qos.ROBOT_DESCRIPTION)
    wait_for(lambda: h.count(topics.ROBOT_DESCRIPTION) > 0, 20, message="the latched /robot_description")
    assert h.last(topics.ROBOT_DESCRIPTION).data == custom.read_text()
    assert "calibrated_" in node.log()


@pytest.mark.parametrize("content, reason", [
    (None, "cannot read urdf_file"),
    ("<robot><link name='a'/><link name='b'/></robot>", "one root link"),
    ("not xml", "well-formed"),
])
def test_bad_urdf_file_is_a_configuration_error(ros_domain, nodes, tmp_path, content, reason):
    path = tmp_path / "robot.urdf"
    if content is not None:
        path.write_text(content)
    node = start(nodes, tmp_path, str(path))
    assert node.proc.wait(timeout=60) == 2, node.log()
    assert "configuration error" in node.log() and reason in node.log()
