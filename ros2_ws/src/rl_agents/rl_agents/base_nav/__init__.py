"""PLDM for the mobile base in the sim apartment (docs/base_planner.md).

Reward-free random base motion in the real MuJoCo scene (`data`), PLDM with a vector (odometry)
encoder trained on it (`train`), MPPI toward an encoded goal pose (`agent.BasePlanner`), used by
the ROS `planner_node` and evaluated through the sim graph (`evaluate`).
"""
