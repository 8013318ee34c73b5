"""Argument checks shared by the `brs` command-line tools. ROS-free and cheap to import: a tool
checks its arguments before any rclpy setup, so a bad one fails at once (ValueError: brs prints
one line and exits 2)."""

from __future__ import annotations

import math


def check_timeout(seconds: float) -> None:
    """ValueError unless --timeout is a finite number of seconds > 0."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"--timeout must be a number of seconds > 0, got {seconds:g}")


def check_count(option: str, value: int) -> None:
    """ValueError unless a count option (--episodes, --steps) is at least 1."""
    if value < 1:
        raise ValueError(f"{option} must be at least 1")
