from glob import glob

from setuptools import find_packages, setup

package_name = "brs_policy"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/config", glob("config/*.yaml")),
        (f"share/{package_name}/checkpoints", glob("checkpoints/*.pt")),  # trained WB-VIMA (docs/wbvima.md)
    ],
    install_requires=["setuptools", "brs_common", "brs_bringup", "brs_sim", "brs_teleop", "numpy", "torch", "matplotlib",
                      "diffusers", "tqdm", "h5py", "rerun-sdk"],
    zip_safe=False,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="Point-cloud perception and the WB-VIMA policy (model, training, inference node).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "perception_node = brs_policy.perception_node:main",
            "policy_node = brs_policy.policy_node:main",
        ],
        "brs.commands": [
            "train = brs_policy.train_cli:add_parser",
            "eval = brs_policy.eval_cli:add_parser",
        ],
    },
)
