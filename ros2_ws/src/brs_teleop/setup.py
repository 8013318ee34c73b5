from setuptools import find_packages, setup

package_name = "brs_teleop"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["config/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools", "brs_common", "brs_control", "brs_sim", "brs_bringup", "numpy", "h5py", "pygame", "pyyaml",
                      "imageio", "pyarrow", "tqdm", "rosbags", "imageio-ffmpeg", "scipy", "matplotlib"],  # exporters, episode_plot
    zip_safe=False,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="JoyLo teleoperation, calibration, keyboard input and the episode recorder.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "keyboard_teleop = brs_teleop.keyboard_teleop:main",
            "joylo = brs_teleop.joylo_node:main",
            "episode_recorder = brs_teleop.recorder_node:main",
        ],
        "brs.commands": [
            "export = brs_teleop.export_cli:add_parser",
            "calibrate = brs_teleop.calibrate_cli:add_parser",
            "record = brs_teleop.record_cli:add_parser",
            "joylo = brs_teleop.joylo_cli:add_parser",
        ],
    },
)
