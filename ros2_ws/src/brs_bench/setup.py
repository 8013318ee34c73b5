from setuptools import find_packages, setup

package_name = "brs_bench"
MODULES = ("sim", "dynamixel_bus", "controller", "teleop_latency", "recorder", "recorder_640", "perception", "viz", "wbvima",
           "wbvima_dataset", "task_success", "pldm", "mrq", "lmact")

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools", "brs_common", "brs_control", "brs_sim", "brs_bringup", "brs_teleop",
                      "brs_policy", "rl_agents", "numpy", "psutil"],
    zip_safe=True,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="The stack's benchmarks (make bench): one module per subsystem, same-run baselines.",
    license="Apache-2.0",
    entry_points={
        "brs.benchmarks": [f"{package_name}.{m} = {package_name}.{m}:run" for m in MODULES],
    },
)
