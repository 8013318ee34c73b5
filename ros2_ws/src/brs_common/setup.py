from setuptools import find_packages, setup

package_name = "brs_common"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["dds/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="BRS developers",
    maintainer_email="dev@brs.local",
    description="Robot spec, topic names, QoS profiles and numpy message conversions.",
    license="Apache-2.0",
)
