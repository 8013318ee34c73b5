from glob import glob

from setuptools import find_packages, setup

package_name = "brs"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools", "brs_common", "brs_bringup", "brs_sim", "brs_control", "brs_teleop", "brs_policy",
                      "rl_agents", "numpy", "rich", "matplotlib", "imageio-ffmpeg", "foxglove-sdk", "scipy"],
    zip_safe=True,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="BRS top package: launch file, config, the brs CLI, make bench and the demo nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "brs = brs.cli:main",
            "demo_source = brs.demo_source:main",
            "demo_recorder = brs.demo_recorder:main",
            "viz_bridge = brs.viz_bridge:main",
        ],
    },
)
