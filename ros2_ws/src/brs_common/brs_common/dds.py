"""DDS defaults every BRS process applies before rclpy.init (users' own settings win)."""

from __future__ import annotations

import os
from pathlib import Path

FASTDDS_PROFILES = Path(__file__).with_name("dds") / "fastdds_profiles.xml"


def configure_dds() -> None:
    """Localhost-only discovery (sim/dev default) and a Fast DDS shared-memory segment big enough
    for camera bursts. Both are defaults: an exported variable of the user's takes precedence."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(FASTDDS_PROFILES))
