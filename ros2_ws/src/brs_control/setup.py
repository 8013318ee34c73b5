from setuptools import find_packages, setup

package_name = "brs_control"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools", "brs_common", "numpy", "pyserial", "dynamixel-sdk", "pyyaml"],
    zip_safe=True,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="Whole-body controller, safety, base kinematics, drivers and device emulators.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "whole_body_controller = brs_control.whole_body_controller:main",
            "dynamixel_driver = brs_control.dynamixel_driver:main",
            "wheel_driver = brs_control.wheel_driver:main",
            "joint_state_merger = brs_control.joint_state_merger:main",
            "dxl_emulator = brs_control.emulators.dynamixel_emulator:main",
            "wheel_emulator = brs_control.emulators.wheel_emulator:main",
        ],
    },
)
