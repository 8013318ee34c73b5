#!/bin/bash
# Source ROS and the BRS workspace, then run the command (default: the sim bringup).
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /ws/install/setup.bash
exec "$@"
