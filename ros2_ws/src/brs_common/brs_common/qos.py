"""QoS profiles of the contract: sensor data best effort, commands and states reliable."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)


def _reliable(depth: int, durability: DurabilityPolicy = DurabilityPolicy.VOLATILE) -> QoSProfile:
    """Reliable, keep last `depth`."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE, durability=durability)


# Cameras, point clouds, /joy: best effort, keep last 5 (rclpy's SensorDataQoS).
SENSOR = qos_profile_sensor_data
# Commands, /joint_states, /odom: reliable, shallow queue so stale commands never pile up.
COMMAND = _reliable(10)
STATE = COMMAND
# /clock: reliable, keep last 1 (what rclpy's time source subscribes with is compatible).
CLOCK = _reliable(1)
DIAGNOSTICS = _reliable(10)
# Latched: reliable, transient local, keep last 1: a subscriber that joins later (with the same
# profile) still gets the last message. /robot_description, as robot_state_publisher offers it.
LATCHED = _reliable(1, DurabilityPolicy.TRANSIENT_LOCAL)
ROBOT_DESCRIPTION = LATCHED
