"""Bring up the BRS graph on a ROS 2 install.

    ros2 launch brs bringup.launch.py use_sim:=true mode:=demo speed_factor:=2.0

The graph itself (nodes, parameters, remappings per use_sim/mode) lives in brs_bringup/graph.py
(parameters from this package's config/*.yaml), which `brs bringup` runs too; this file only
turns its NodeDescriptions into launch_ros Nodes. Launch arguments other than
brs_bringup.graph.LAUNCH_ARGUMENTS are node parameter overrides.

Where robot_state_publisher is installed (a ROS 2 install; not the pip venv), it takes the place of
the robot description node: the same URDF (generated from the MuJoCo model) latched on
/robot_description, plus /tf and /tf_static from /joint_states.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch_ros.actions import Node

from brs_bringup import graph


def robot_state_publisher_installed() -> bool:
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory("robot_state_publisher")
        return True
    except (ImportError, LookupError, OSError, ValueError):  # PackageNotFoundError is a KeyError
        return False


def _node(d, with_robot_state_publisher: bool):
    package, executable, parameters = d.package, d.executable, dict(d.parameters)
    if with_robot_state_publisher and (package, executable) == ("brs_sim", "robot_description_node"):
        from brs_sim.urdf import robot_urdf

        parameters["robot_description"] = robot_urdf()
        package = executable = "robot_state_publisher"
    return Node(
        package=package,
        executable=executable,
        name=d.name,
        parameters=[parameters],
        remappings=list(d.remappings),
        output="screen",
        respawn=d.respawn,
        respawn_delay=d.respawn_delay,
        sigterm_timeout=str(d.stop_timeout),
        on_exit=Shutdown(reason=f"required node {d.name} exited") if d.required else None,
    )


def _nodes(context, *args, **kwargs):
    """Evaluate the launch arguments and return one launch_ros Node per described node."""
    descriptions = graph.describe_from_arguments(dict(context.launch_configurations))
    rsp = robot_state_publisher_installed()
    return [_node(d, rsp) for d in descriptions]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            a.name,
            default_value=a.default,
            description=a.description,
            choices=list(a.choices) if a.choices else None,
        )
        for a in graph.LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
