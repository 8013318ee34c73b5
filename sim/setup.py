from setuptools import find_packages, setup

package_name = "brs_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # MJCF models travel inside the Python package so the sim finds them in any install layout.
    package_data={package_name: ["models/*.xml", "models/assets/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "scipy", "mujoco", "mink", "brs_common", "brs_control"],
    zip_safe=False,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="MuJoCo models and the sim node (hardware layer stand-in) of the BRS stack.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "sim_node = brs_sim.sim_node:main",
        "expert_node = brs_sim.expert_node:main",
        "robot_description_node = brs_sim.robot_description_node:main",
    ]},
)
