from glob import glob

from setuptools import find_packages, setup

package_name = "rl_agents"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/checkpoints", glob("checkpoints/*.pt")),  # base planner (docs/base_planner.md)
    ],
    install_requires=["setuptools", "brs_common", "brs_bringup", "brs_control", "brs_sim", "numpy", "torch", "gymnasium",
                      "tqdm", "matplotlib", "chess", "requests"],
    zip_safe=False,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="RL and planning agents (MR.Q, PLDM), environment adapters and their ROS nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "planner_node = rl_agents.planner_node:main",
            "rl_agent_node = rl_agents.rl_agent_node:main",
            "lmact_agent_node = rl_agents.lmact_agent_node:main",
        ],
        "brs.commands": [
            "rl = rl_agents.mrq.cli:add_parser",
            "plan = rl_agents.pldm.cli:add_parser",
            "lmact = rl_agents.lmact.cli:add_parser",
        ],
    },
)
