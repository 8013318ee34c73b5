"""Dynamixel Protocol 2.0 support: X-series control table, the bus, per-device calibration.

One bus module serves the robot's arm/torso/gripper drivers and the JoyLo leader arms alike.
"""

from .bus import BusCorrupt, BusDisconnected, BusError, BusTimeout, DynamixelBus, MotorCalibration

__all__ = ["BusCorrupt", "BusDisconnected", "BusError", "BusTimeout", "DynamixelBus",
           "MotorCalibration"]
