"""Bring up the BRS graph on a ROS 2 install.

    ros2 launch brs bringup.launch.py use_sim:=true mode:=demo speed_factor:=2.0

The graph itself (nodes, parameters, remappings per use_sim/mode) lives in brs_bringup/graph.py
(parameters from this package's config/*.yaml), which `brs bringup` runs too; this file only
turns its NodeDescriptions into launch_ros Nodes. Launch arguments other than
brs_bringup.graph.LAUNCH_ARGUMENTS are node parameter overrides.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch_ros.actions import Node

from brs_bringup import graph


def _nodes(context, *args, **kwargs):
    """Evaluate the launch arguments and return one launch_ros Node per described node."""
    descriptions = graph.describe_from_arguments(dict(context.launch_configurations))
    return [
        Node(
            package=d.package,
            executable=d.executable,
            name=d.name,
            parameters=[dict(d.parameters)],
            remappings=list(d.remappings),
            output="screen",
            respawn=d.respawn,
            respawn_delay=d.respawn_delay,
            sigterm_timeout=str(d.stop_timeout),
            on_exit=Shutdown(reason=f"required node {d.name} exited") if d.required else None,
        )
        for d in descriptions
    ]


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
