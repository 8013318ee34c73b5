"""brs_bringup.graph_client over real DDS: the per-node health the bringup console shows."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from brs_bringup.graph_client import GraphClient
from brs_common import qos, topics
from rosutil import wait_for


def _status(name: str, level: int, message: str) -> DiagnosticStatus:
    return DiagnosticStatus(name=name, level=bytes([level]), message=message)


def test_node_health_is_the_worst_component_per_node(ros):
    pub = ros.node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    client = GraphClient("health_probe")
    try:
        wait_for(lambda: pub.get_subscription_count() > 0, 15, message="the client subscribed")
        msg = DiagnosticArray(status=[
            _status("joylo: loop", 0, "100 Hz"),
            _status("joylo: leader", 2, "left arm unreadable"),
            _status("joylo: engage", 1, "not following yet"),
            _status("whole_body_controller: state", 0, "in control: teleop"),
        ])

        def arrived():
            pub.publish(msg)
            return "joylo" in client.node_health()

        wait_for(arrived, 10, interval=0.2, message="the statuses")
        health = client.node_health()
        assert health["joylo"] == (2, "leader: left arm unreadable")
        assert health["whole_body_controller"] == (0, "state: in control: teleop")
        pub.publish(DiagnosticArray(status=[_status("joylo: leader", 0, "both leader arms read")]))
        wait_for(lambda: client.node_health()["joylo"][0] == 1, 10, message=f"WARN left: {client.node_health()}")
        assert client.node_health()["joylo"] == (1, "engage: not following yet")
    finally:
        client.close()


def test_operator_summary_names_source_estop_and_recorder():
    from brs_bringup.graph_client import operator_summary

    statuses = {}
    assert operator_summary(statuses.get) == ""  # nothing reported yet
    statuses["whole_body_controller: state"] = ("in control: teleop", {
        "active_source": "teleop", "controlling_source": "teleop", "estop_latched": "False"})
    assert operator_summary(statuses.get) == "command source: teleop (in control) | e-stop: off"
    statuses["whole_body_controller: state"][1].update(estop_latched="True", controlling_source="none")
    statuses["episode_recorder: recorder"] = ("recording", {
        "recording": "true", "episode": "episode_000003", "saved_episodes": "2"})
    assert operator_summary(statuses.get) == ("command source: teleop (idle) | e-stop: LATCHED (brs estop reset) "
                                              "| recorder: recording episode_000003 | saved: 2")
    statuses["episode_recorder: recorder"][1].update(recording="false", saved_episodes="3")
    assert operator_summary(statuses.get).endswith("recorder: idle | saved: 3")
