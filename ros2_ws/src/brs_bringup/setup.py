from setuptools import find_packages, setup

package_name = "brs_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools", "brs_common", "brs_sim", "pyyaml", "psutil", "rich", "tqdm"],
    zip_safe=True,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="BRS graph layer: graph description, embedded runner, graph client and the episode driver.",
    license="Apache-2.0",
)
