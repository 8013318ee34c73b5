"""ODrive support for the wheeled base: the ASCII protocol client (protocol.py), the boards and
the wheel bus (board.py), kiwi-drive kinematics and odometry (kinematics.py). Mirrors dynamixel/.
"""

from .board import AxisFault, Board, Sample, WheelBus
from .protocol import AxisState, ODriveAscii, PortUnavailable, WheelProtocolError

__all__ = ["AxisFault", "AxisState", "Board", "ODriveAscii", "PortUnavailable", "Sample", "WheelBus",
           "WheelProtocolError"]
