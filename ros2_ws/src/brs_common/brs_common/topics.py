"""Topic and service names of the graph contract (docs/architecture.md, "Topic contract"). The only place they live."""

from __future__ import annotations

from .robot_spec import CAMERAS, GROUPS

COMMAND_SOURCES = ("estop", "teleop", "policy", "rl", "demo")

JOINT_STATES = "/joint_states"
ODOM = "/odom"
CMD_VEL = "/base_controller/cmd_vel"
CLOCK = "/clock"
DIAGNOSTICS = "/diagnostics"
POINTS = "/perception/points"
JOY = "/joy"

# The robot's URDF (generated from the MuJoCo model, docs/robot_description.md): std_msgs/String,
# latched (qos.ROBOT_DESCRIPTION), published once by brs_sim/robot_description_node, as
# robot_state_publisher does on a full ROS install.
ROBOT_DESCRIPTION_NODE = "robot_description_publisher"
ROBOT_DESCRIPTION = "/robot_description"
# tf2 (robot_state_publisher on a ROS install; the MCAP export writes both from the stack's own FK)
TF = "/tf"
TF_STATIC = "/tf_static"

# Sim services (served by the sim node under its own name).
SIM_NODE = "sim"
SIM_RESET = f"/{SIM_NODE}/reset"  # std_srvs/Trigger, reseeds from the `seed` parameter
SIM_PAUSE = f"/{SIM_NODE}/pause"  # std_srvs/SetBool
SIM_STEP = f"/{SIM_NODE}/step"  # std_srvs/Trigger, one control period while paused
# visualization_msgs/MarkerArray of the free objects' world poses (ns = object name), published
# with /joint_states while anyone listens: privileged sim state for scripted experts and viewers.
SIM_OBJECTS = f"/{SIM_NODE}/objects"
# /diagnostics status (name) with the sim task's outcome: values task, success (True/False), elapsed
SIM_TASK_STATUS = f"{SIM_NODE}: task"

# Whole-body controller (brs_control/whole_body_controller, docs/controller.md).
WHOLE_BODY_CONTROLLER_NODE = "whole_body_controller"
ESTOP = "/whole_body/estop"  # std_msgs/Bool; True latches the e-stop (False does nothing)
ESTOP_RESET = f"/{WHOLE_BODY_CONTROLLER_NODE}/reset_estop"  # std_srvs/Trigger, clears the latch
# std_srvs/Trigger: drop every command and hold the measured pose at rest, without latching
# (episode resets after the sim moved the robot: RL envs, evaluation)
CONTROLLER_HOLD = f"/{WHOLE_BODY_CONTROLLER_NODE}/hold"
CONTROLLER_RECEIVED = f"/{WHOLE_BODY_CONTROLLER_NODE}/received"  # std_srvs/Trigger: commands received per source (JSON)
# sensor_msgs/JointState of what the controller commanded each tick (action joints; base in velocity)
CONTROLLER_STATE = f"/{WHOLE_BODY_CONTROLLER_NODE}/commanded"

# Base planner (rl_agents/planner_node, docs/base_planner.md): geometry_msgs/PoseStamped goals in
# the odom frame; the node drives the base there through the rl command source.
PLANNER_NODE = "planner"
PLANNER_GOAL = f"/{PLANNER_NODE}/goal"

# Episode recorder (brs_teleop/recorder_node, docs/teleop.md): std_srvs/Trigger services.
RECORDER_NODE = "episode_recorder"
RECORDER_START = f"/{RECORDER_NODE}/start"
RECORDER_STOP = f"/{RECORDER_NODE}/stop"  # finish and save the episode
RECORDER_DISCARD = f"/{RECORDER_NODE}/discard"  # finish and delete the episode


def set_source_service(source: str) -> str:
    """std_srvs/Trigger that makes `source` the controller's active command source."""
    if source not in COMMAND_SOURCES:
        raise ValueError(f"unknown command source {source!r}; expected one of {COMMAND_SOURCES}")
    return f"/{WHOLE_BODY_CONTROLLER_NODE}/set_source/{source}"


def whole_body_command(source: str) -> str:
    """JointTrajectory command topic of a command source (teleop, policy, rl, ...)."""
    if source not in COMMAND_SOURCES:
        raise ValueError(f"unknown command source {source!r}; expected one of {COMMAND_SOURCES}")
    return f"/whole_body/{source}/command"


def controller_command(group: str) -> str:
    """ros2_control forward-controller topic (Float64MultiArray) of a position group."""
    controller = GROUPS[group].controller
    if not controller:
        raise ValueError(f"group {group!r} has no forward controller (the base uses {CMD_VEL})")
    return f"/{controller}/commands"


def camera_topic(camera: str, stream: str) -> str:
    """Camera topics: stream is 'depth', 'color', 'depth_info' or 'color_info'."""
    if camera not in CAMERAS:
        raise ValueError(f"unknown camera {camera!r}; expected one of {tuple(CAMERAS)}")
    if stream in ("depth", "color"):
        return f"/cameras/{camera}/{stream}/image_raw"
    if stream in ("depth_info", "color_info"):
        return f"/cameras/{camera}/{stream.split('_')[0]}/camera_info"
    raise ValueError(f"unknown camera stream {stream!r}")
