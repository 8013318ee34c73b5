"""Locate a package's share directory (config, launch files) in a source checkout or a ROS install."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def share_dir(package: str) -> Path:
    """The directory holding `package`'s package.xml, config/ and launch/.

    Prefers the source tree of the Python package being run (an editable pip install or a
    `colcon build --symlink-install` build dir), so code and config always come from the same
    checkout; otherwise asks the ament index (a regular `colcon build` / apt install).
    """
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent.parent
        if (root / "package.xml").is_file():
            return root
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(package))
    except (ImportError, LookupError, OSError, ValueError) as exc:
        raise FileNotFoundError(
            f"cannot find the share directory of package {package!r}: it is neither a source "
            f"checkout with package.xml nor in the ament index ({exc}); "
            "pip install -e the package or source a ROS workspace that contains it"
        ) from exc


def config_dir(package: str) -> Path:
    """`share_dir(package) / 'config'`."""
    return share_dir(package) / "config"
