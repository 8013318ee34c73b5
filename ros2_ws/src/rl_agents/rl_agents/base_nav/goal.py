"""Send a goal pose to a running planner_node (the `ros2 topic pub` of this environment).

    python -m rl_agents.base_nav.goal 0.5 4.5 1.57 [--wait 60]

Publishes a geometry_msgs/PoseStamped (frame odom) on /planner/goal until the planner reports it
on /diagnostics, then optionally waits for state `reached` (exit 0) or the timeout (exit 1).
"""

from __future__ import annotations

import argparse
import math
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Send a base goal (odom frame) to the planner node.")
    p.add_argument("x", type=float)
    p.add_argument("y", type=float)
    p.add_argument("yaw", type=float, nargs="?", default=0.0, help="rad (default 0)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for `reached` (0: do not wait)")
    a = p.parse_args(argv)
    from geometry_msgs.msg import PoseStamped

    from brs_bringup.graph_client import GraphClient
    from brs_common import qos, topics

    client = GraphClient("base_goal")
    status = f"{topics.PLANNER_NODE}: planner"
    key = f"{a.x:.3f} {a.y:.3f} {math.atan2(math.sin(a.yaw), math.cos(a.yaw)):.3f}"
    try:
        pub = client.node.create_publisher(PoseStamped, topics.PLANNER_GOAL, qos.COMMAND)
        msg = PoseStamped()
        msg.header.frame_id = "odom"
        msg.pose.position.x, msg.pose.position.y = a.x, a.y
        msg.pose.orientation.z, msg.pose.orientation.w = math.sin(a.yaw / 2), math.cos(a.yaw / 2)
        deadline = time.monotonic() + 10.0
        while True:
            pub.publish(msg)
            st = client.status(status)
            if st and st[1].get("goal") == key:
                break
            if time.monotonic() > deadline:
                print(f"no planner took the goal (is `brs bringup mode:=plan` running?) last status: {st}",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
        print(f"goal {key} accepted")
        if a.wait <= 0:
            return 0
        try:
            v = client.wait_status(status, lambda v: v.get("state") == "reached" and v.get("goal") == key,
                                   a.wait, "goal reached")
        except TimeoutError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"reached: distance {v['distance']} m, yaw error {v['yaw_error']} rad")
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
