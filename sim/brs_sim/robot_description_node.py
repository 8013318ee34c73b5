"""Robot description node: publishes the robot's URDF on /robot_description, latched.

What robot_state_publisher offers on a full ROS install: one std_msgs/String with the URDF,
reliable + transient local (qos.ROBOT_DESCRIPTION), so RViz, MoveIt or any late subscriber
with the same QoS gets it whenever it joins. Published once at start; the node then just
stays up (the latched sample lives as long as the publisher does).

Parameters: urdf_file (default "": generate the URDF from the MuJoCo model, brs_sim.urdf, so
it always matches robot.xml; a path publishes that file instead, e.g. a calibrated URDF on the
real robot). The URDF is checked (one root, a tree of known joint types) before it goes out;
a file that cannot be read or parsed is a configuration error (exit code 2).

Run: `robot_description_node` (console script) or `python -m brs_sim.robot_description_node`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rclpy.node import Node
from std_msgs.msg import String

from brs_common import params, qos, topics

from .urdf import UrdfKinematics, robot_urdf


class RobotDescriptionNode(Node):
    def __init__(self):
        super().__init__(topics.ROBOT_DESCRIPTION_NODE)
        p = params.declare(self, [
            ("urdf_file", "", "URDF file to publish; '': generated from the MuJoCo model (robot.xml)"),
        ])
        urdf_file = str(p["urdf_file"])
        if urdf_file:
            try:
                self.urdf = Path(urdf_file).read_text()
            except OSError as e:
                raise ValueError(f"cannot read urdf_file {urdf_file!r}: {e}") from None
            source = urdf_file
        else:
            self.urdf = robot_urdf()
            source = "the MuJoCo model (robot.xml)"
        kin = UrdfKinematics.parse(self.urdf)  # ValueError if it is not a usable URDF
        self.publisher = self.create_publisher(String, topics.ROBOT_DESCRIPTION, qos.ROBOT_DESCRIPTION)
        self.publisher.publish(String(data=self.urdf))
        self.get_logger().info(
            f"published {topics.ROBOT_DESCRIPTION} ({len(self.urdf)} bytes, robot {kin.name!r}, "
            f"{len(kin.links)} links, {len(kin.movable)} joints, root {kin.root!r}) from {source}")


def main(args=None) -> int:
    from brs_common.node_main import run_node

    return run_node(RobotDescriptionNode, args, config_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
