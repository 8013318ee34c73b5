"""brs_common.params.declare: parameters with descriptions and ranges on a real rclpy node.

That every node of the stack describes every parameter is checked through the parameter services
of the running nodes (`RosHarness.assert_parameters_described`) in the tests that run them:
test_real_mode_graph (drivers, merger, controller, robot description), test_sim_node,
test_expert_node, test_recorder_node, test_joylo, test_keyboard_teleop, test_perception_node,
test_policy_node, test_rl_agent_node, test_planner_node, test_demo_nodes, test_viz_bridge.
"""

from __future__ import annotations

import pytest
import rclpy
from rcl_interfaces.msg import ParameterType
from rclpy.context import Context
from rclpy.parameter import Parameter

from brs_common import params

ROWS = [
    ("rate_hz", 50.0, "publish rate, Hz"),
    ("level", 4, "gzip level, 0-9", (0, 9)),
    ("gain", 0.5, "gain, 0-1", (0.0, 1.0)),
    ("names", Parameter.Type.STRING_ARRAY, "names; unset: none"),
    ("timeout", 0.1, "s, int or float"),
    ("enabled", True, "on or off"),
]


@pytest.fixture
def make_node(ros_domain):
    context = Context()
    rclpy.init(args=[], context=context, domain_id=ros_domain)
    nodes = []

    def make(**overrides):
        node = rclpy.create_node(f"params_test_{len(nodes)}", context=context, parameter_overrides=[
            Parameter(k, value=v) for k, v in overrides.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def test_declare_values_descriptions_ranges_and_types(make_node):
    node = make_node(rate_hz=20.0, timeout=1, names=["a", "b"])
    values = params.declare(node, ROWS, dynamic=("timeout",))
    assert values == {"rate_hz": 20.0, "level": 4, "gain": 0.5, "names": ["a", "b"], "timeout": 1,
                      "enabled": True}
    for name, _, description, *_ in ROWS:
        assert node.describe_parameter(name).description == description
    level, gain = node.describe_parameter("level"), node.describe_parameter("gain")
    assert (level.integer_range[0].from_value, level.integer_range[0].to_value) == (0, 9)
    assert (gain.floating_point_range[0].from_value, gain.floating_point_range[0].to_value) == (0.0, 1.0)
    assert not node.describe_parameter("rate_hz").floating_point_range
    assert node.describe_parameter("timeout").dynamic_typing
    assert node.describe_parameter("names").type == ParameterType.PARAMETER_STRING_ARRAY

    # ranges (inclusive) refuse `ros2 param set` outside them; types stay as declared
    def set_ok(name, value):
        return node.set_parameters([Parameter(name, value=value)])[0].successful

    assert not set_ok("level", 12) and not set_ok("level", -1) and not set_ok("gain", 1.5)
    assert set_ok("level", 9) and set_ok("level", 0) and set_ok("gain", 1.0)
    assert not set_ok("rate_hz", 100)  # statically typed: no int for a float, as before
    assert set_ok("timeout", 2) and set_ok("timeout", 0.5)  # dynamic: both
    result = node.set_parameters([Parameter("level", value=12)])[0]
    assert "out of range" in result.reason


def test_typed_unset_parameter_is_none(make_node):
    node = make_node()
    assert params.declare(node, [("ids", Parameter.Type.INTEGER_ARRAY, "ids")]) == {"ids": None}
    assert node.describe_parameter("ids").type == ParameterType.PARAMETER_INTEGER_ARRAY


def test_an_override_outside_the_range_is_left_to_the_nodes_own_check(make_node):
    """The node's own validation refuses it with its own message (every range mirrors a check)."""
    node = make_node(level=12, gain=0.25)
    values = params.declare(node, ROWS[1:3])
    assert values == {"level": 12, "gain": 0.25}
    assert not node.describe_parameter("level").integer_range
    assert node.describe_parameter("level").description == "gzip level, 0-9"
    assert node.describe_parameter("gain").floating_point_range  # in range: kept


@pytest.mark.parametrize("row, dynamic, match", [
    (("x", 1.0, ""), (), "no description"),
    (("x", 1.0, "  "), (), "no description"),
    (("x", 1.0, "x", (0.0, 2.0)), ("x",), "statically typed"),
    (("x", "a", "x", (0, 2)), (), "float or int default"),
    (("x", True, "x", (0, 1)), (), "float or int default"),
    (("x", 1.0), (), "expected"),
    (("x", 1.0, "x"), ("y",), "dynamic names no declared parameter"),
])
def test_bad_rows_are_refused(make_node, row, dynamic, match):
    with pytest.raises(ValueError, match=match):
        params.declare(make_node(), [row], dynamic=dynamic)
