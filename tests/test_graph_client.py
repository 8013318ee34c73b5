"""brs_bringup.graph_client over real DDS: the per-node health the bringup console shows."""

from __future__ import annotations

from contextlib import contextmanager

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

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
        assert client.component_health() == {"joylo: loop": (0, "100 Hz"), "joylo: leader": (2, "left arm unreadable"),
                                             "joylo: engage": (1, "not following yet"),
                                             "whole_body_controller: state": (0, "in control: teleop")}
        pub.publish(DiagnosticArray(status=[_status("joylo: leader", 0, "both leader arms read")]))
        wait_for(lambda: client.node_health()["joylo"][0] == 1, 10, message=f"WARN left: {client.node_health()}")
        assert client.node_health()["joylo"] == (1, "engage: not following yet")
        assert client.component_health()["joylo: leader"] == (0, "both leader arms read")  # the recovery, under a WARN
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


def test_operator_summary_shows_a_recorder_error_instead_of_recording():
    """A recorder in ERROR (a write failed) must not read "recording ..." on the summary line;
    an idle one in WARN says why it stopped the last episode; the WARN of dropped frames while
    recording (a message that changes every report) keeps the plain "recording" part."""
    from brs_bringup.graph_client import operator_summary

    name = "episode_recorder: recorder"
    statuses = {name: ("writing episode_000000.h5.partial failed at frame 6017: [Errno 28] No space left "
                       "on device; `brs record stop` saves the 6017 frames written so far",
                       {"recording": "true", "episode": "episode_000000", "saved_episodes": "0"})}
    levels = {name: 2}
    line = operator_summary(statuses.get, levels.get)
    assert line.startswith("recorder: ERROR writing episode_000000.h5.partial failed at frame 6017: "), line
    assert "recording episode" not in line and line.endswith("| saved: 0")
    statuses[name] = ("stopped episode_000000: max_duration 900 s reached: 9000 frames, 900.0 s, 0 dropped; "
                      "saved outputs/episodes/episode_000000.h5", {"recording": "false", "saved_episodes": "1"})
    levels[name] = 1
    assert operator_summary(statuses.get, levels.get) == (
        "recorder: WARN stopped episode_000000: max_duration 900 s reached: 9000 frames, 900.0 s, 0 dropped; "
        "saved outputs/episodes/episode_000000.h5 | saved: 1")
    statuses[name] = ("recording episode_000001: 40 frames, 4.00 s, 2 dropped",
                      {"recording": "true", "episode": "episode_000001", "saved_episodes": "1"})
    assert operator_summary(statuses.get, levels.get) == "recorder: recording episode_000001 | saved: 1"
    levels[name] = 0
    assert operator_summary(statuses.get, levels.get) == "recorder: recording episode_000001 | saved: 1"
    assert operator_summary(statuses.get) == "recorder: recording episode_000001 | saved: 1"  # no levels


@contextmanager
def client_with_status(ros, client_name: str, name: str, level: int, message: str, values: dict):
    """A GraphClient that has received the /diagnostics status `name` (published until it came)."""
    pub = ros.node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    client = GraphClient(client_name)
    try:
        wait_for(lambda: pub.get_subscription_count() > 0, 15, message="the client subscribed")
        status = _status(name, level, message)
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]

        def arrived():
            pub.publish(DiagnosticArray(status=[status]))
            return client.status(name) is not None

        wait_for(arrived, 10, interval=0.2, message="the status")
        yield client
    finally:
        client.close()


def test_graph_client_summary_uses_the_levels(ros):
    """GraphClient.operator_summary passes the received levels: an ERROR recorder status on
    /diagnostics shows on the line."""
    with client_with_status(ros, "summary_probe", "episode_recorder: recorder", 2,
                            "writing episode_000000.h5.partial failed",
                            {"recording": "true", "episode": "episode_000000"}) as client:
        assert client.level("episode_recorder: recorder") == 2
        assert client.operator_summary().startswith("recorder: ERROR writing episode_000000.h5.partial failed")


def test_operator_summary_counts_bus_reconnects():
    """Bus reconnects reach the operator line once there is one: JoyLo's leader arms per side,
    the wheel boards and the Dynamixel drivers per node (from every status name given)."""
    from brs_bringup.graph_client import operator_summary

    controller = ("in control: teleop", {"active_source": "teleop", "controlling_source": "teleop",
                                         "estop_latched": "False"})
    leader = ("both leader arms read", {"left.bus.reconnects": "0", "right.bus.reconnects": "0",
                                        "left.bus.timeouts": "3"})
    statuses = {"whole_body_controller: state": controller, "joylo: leader": leader,
                "wheel_driver: board /tmp/a": ("ready: ok", {"reconnects": "0"}),
                "torso_driver: bus": ("active: torque on", {"bus.reconnects": "0", "bus.opens": "1"})}
    names = list(statuses)
    plain = "command source: teleop (in control) | e-stop: off"
    assert operator_summary(statuses.get, names=names) == plain  # none yet: no part
    leader[1]["left.bus.reconnects"] = "2"
    assert operator_summary(statuses.get, names=names) == f"{plain} | bus reconnects: leader L2 R0"
    assert operator_summary(statuses.get) == f"{plain} | bus reconnects: leader L2 R0"  # no names: the leader still
    statuses["wheel_driver: board /tmp/b"] = ("ready: ok", {"reconnects": "1"})
    statuses["wheel_driver: board /tmp/a"][1]["reconnects"] = "2"
    statuses["torso_driver: bus"][1]["bus.reconnects"] = "1"
    assert operator_summary(statuses.get, names=list(statuses)) == (
        f"{plain} | bus reconnects: leader L2 R0, torso_driver 1, wheel_driver 3")
    statuses["joylo: leader"] = ("left arm unreadable", {"left.bus.reconnects": "?"})  # not a number: 0
    assert operator_summary(statuses.get, names=list(statuses)).endswith("bus reconnects: torso_driver 1, wheel_driver 3")


def test_graph_client_summary_shows_leader_reconnects(ros):
    """Over DDS: JoyLo's `left.bus.reconnects` on /diagnostics reaches GraphClient.operator_summary."""
    with client_with_status(ros, "reconnect_probe", "joylo: leader", 0, "both leader arms read",
                            {"left.bus.reconnects": "0", "right.bus.reconnects": "3"}) as client:
        assert client.operator_summary() == "bus reconnects: leader L0 R3", client.operator_summary()


def test_service_wait_summary_says_discovery_is_partial():
    """While a CLI waits for a service it lists the nodes discovery has found so far; the
    wording must not read as if only those run (before: '1 nodes run: brs_bringup_console')."""
    from types import SimpleNamespace

    def summary(names):
        fake = SimpleNamespace(_other_nodes=lambda: names)
        return GraphClient._graph_summary(fake)

    assert summary([]) == "no other ROS 2 node seen yet"
    assert summary(["brs_bringup_console"]) == "1 node(s) discovered so far: brs_bringup_console"
    many = summary([f"n{i}" for i in range(10)])
    assert many.startswith("10 node(s) discovered so far: n0, ") and many.endswith(" ...")
    assert "nodes run" not in many
