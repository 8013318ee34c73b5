"""Dynamixel X-series control table (Protocol 2.0), operating modes, models and unit conversions.

Addresses and sizes follow the ROBOTIS e-manual for the X series (XM430, XM540, XL430, XL330,
XC330, ...); they are identical across these models for everything used here. All unit
conversions are vectorised (numpy in, numpy out).

Position convention: tick 2048 (the horn's centre mark) is motor angle 0 rad, 4096 ticks/rev.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ----------------------------------------------------------------------------- registers


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    size: int  # bytes: 1, 2 or 4
    writable: bool = True
    signed: bool = False

    @property
    def eeprom(self) -> bool:
        """EEPROM area (address < 64): writable only while torque is off."""
        return self.address < 64

    @property
    def dtype(self) -> str:
        return ("<i" if self.signed else "<u") + str(self.size)


_REGISTERS = (
    # EEPROM
    Register("Model_Number", 0, 2, writable=False),
    Register("Model_Information", 2, 4, writable=False),
    Register("Firmware_Version", 6, 1, writable=False),
    Register("ID", 7, 1),
    Register("Baud_Rate", 8, 1),
    Register("Return_Delay_Time", 9, 1),  # 2 us units
    Register("Drive_Mode", 10, 1),
    Register("Operating_Mode", 11, 1),
    Register("Secondary_ID", 12, 1),
    Register("Protocol_Type", 13, 1),
    Register("Homing_Offset", 20, 4, signed=True),
    Register("Moving_Threshold", 24, 4),
    Register("Temperature_Limit", 31, 1),
    Register("Max_Voltage_Limit", 32, 2),
    Register("Min_Voltage_Limit", 34, 2),
    Register("PWM_Limit", 36, 2),
    Register("Current_Limit", 38, 2),
    Register("Velocity_Limit", 44, 4),
    Register("Max_Position_Limit", 48, 4),
    Register("Min_Position_Limit", 52, 4),
    Register("Shutdown", 63, 1),
    # RAM
    Register("Torque_Enable", 64, 1),
    Register("LED", 65, 1),
    Register("Status_Return_Level", 68, 1),
    Register("Registered_Instruction", 69, 1, writable=False),
    Register("Hardware_Error_Status", 70, 1, writable=False),
    Register("Velocity_I_Gain", 76, 2),
    Register("Velocity_P_Gain", 78, 2),
    Register("Position_D_Gain", 80, 2),
    Register("Position_I_Gain", 82, 2),
    Register("Position_P_Gain", 84, 2),
    Register("Feedforward_2nd_Gain", 88, 2),
    Register("Feedforward_1st_Gain", 90, 2),
    Register("Bus_Watchdog", 98, 1, signed=True),
    Register("Goal_PWM", 100, 2, signed=True),
    Register("Goal_Current", 102, 2, signed=True),
    Register("Goal_Velocity", 104, 4, signed=True),
    Register("Profile_Acceleration", 108, 4),
    Register("Profile_Velocity", 112, 4),
    Register("Goal_Position", 116, 4, signed=True),
    Register("Realtime_Tick", 120, 2, writable=False),
    Register("Moving", 122, 1, writable=False),
    Register("Moving_Status", 123, 1, writable=False),
    Register("Present_PWM", 124, 2, writable=False, signed=True),
    Register("Present_Current", 126, 2, writable=False, signed=True),
    Register("Present_Velocity", 128, 4, writable=False, signed=True),
    Register("Present_Position", 132, 4, writable=False, signed=True),
    Register("Velocity_Trajectory", 136, 4, writable=False, signed=True),
    Register("Position_Trajectory", 140, 4, writable=False, signed=True),
    Register("Present_Input_Voltage", 144, 2, writable=False),
    Register("Present_Temperature", 146, 1, writable=False),
)
REGISTERS: dict[str, Register] = {r.name: r for r in _REGISTERS}
# Module-level names for the ones the bus uses: MODEL_NUMBER, TORQUE_ENABLE, GOAL_POSITION, ...
MODEL_NUMBER = REGISTERS["Model_Number"]
FIRMWARE_VERSION = REGISTERS["Firmware_Version"]
RETURN_DELAY_TIME = REGISTERS["Return_Delay_Time"]
OPERATING_MODE = REGISTERS["Operating_Mode"]
CURRENT_LIMIT = REGISTERS["Current_Limit"]
VELOCITY_LIMIT = REGISTERS["Velocity_Limit"]
MAX_POSITION_LIMIT = REGISTERS["Max_Position_Limit"]
MIN_POSITION_LIMIT = REGISTERS["Min_Position_Limit"]
TORQUE_ENABLE = REGISTERS["Torque_Enable"]
HARDWARE_ERROR_STATUS = REGISTERS["Hardware_Error_Status"]
GOAL_CURRENT = REGISTERS["Goal_Current"]
GOAL_VELOCITY = REGISTERS["Goal_Velocity"]
PROFILE_VELOCITY = REGISTERS["Profile_Velocity"]
GOAL_POSITION = REGISTERS["Goal_Position"]
PRESENT_CURRENT = REGISTERS["Present_Current"]
PRESENT_VELOCITY = REGISTERS["Present_Velocity"]
PRESENT_POSITION = REGISTERS["Present_Position"]

# The state block read by ONE sync read per cycle: Present_Current..Present_Position (126..135).
STATE_ADDRESS = PRESENT_CURRENT.address
STATE_SIZE = PRESENT_POSITION.address + PRESENT_POSITION.size - STATE_ADDRESS  # 10 bytes
STATE_DTYPE = np.dtype([("current", "<i2"), ("velocity", "<i4"), ("position", "<i4")])
assert STATE_DTYPE.itemsize == STATE_SIZE

CONTROL_TABLE_SIZE = 256  # bytes emulated per motor (indirect data areas are not emulated)

# ----------------------------------------------------------------------------- operating modes

MODE_CURRENT = 0
MODE_VELOCITY = 1
MODE_POSITION = 3
MODE_EXTENDED_POSITION = 4
MODE_CURRENT_BASED_POSITION = 5
MODE_PWM = 16
OPERATING_MODES = {
    "current": MODE_CURRENT,
    "velocity": MODE_VELOCITY,
    "position": MODE_POSITION,
    "extended_position": MODE_EXTENDED_POSITION,
    "current_based_position": MODE_CURRENT_BASED_POSITION,
    "pwm": MODE_PWM,
}
MODE_NAMES = {v: k for k, v in OPERATING_MODES.items()}


def mode_value(mode: int | str) -> int:
    """Operating mode number from a number or a name ('position', 'current_based_position', ...)."""
    if isinstance(mode, str):
        try:
            return OPERATING_MODES[mode]
        except KeyError:
            raise ValueError(f"unknown operating mode {mode!r}; expected one of "
                             f"{sorted(OPERATING_MODES)}") from None
    if int(mode) not in MODE_NAMES:
        raise ValueError(f"unknown operating mode {mode}; expected one of {sorted(MODE_NAMES)}")
    return int(mode)


# Hardware_Error_Status bits.
HW_ERROR_BITS = {
    0: "input_voltage",
    2: "overheating",
    3: "motor_encoder",
    4: "electrical_shock",
    5: "overload",
}


def hardware_error_names(status: int) -> list[str]:
    return [name for bit, name in HW_ERROR_BITS.items() if status & (1 << bit)]


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Model:
    name: str
    number: int
    current_unit: float | None  # A per Present_Current unit; None: no current sensor (load %)
    current_limit: int  # default Current_Limit (units); 0 when the model has none
    no_load_speed: float  # rad/s at 12 V (emulator dynamics, sanity checks)
    modes: tuple[int, ...]


_X_MODES = (MODE_CURRENT, MODE_VELOCITY, MODE_POSITION, MODE_EXTENDED_POSITION,
            MODE_CURRENT_BASED_POSITION, MODE_PWM)
_NO_CURRENT_MODES = (MODE_VELOCITY, MODE_POSITION, MODE_EXTENDED_POSITION, MODE_PWM)
_RPM = 2 * math.pi / 60
MODELS: dict[str, Model] = {m.name: m for m in (
    Model("XM430-W350", 1020, 2.69e-3, 1193, 46 * _RPM, _X_MODES),
    Model("XM430-W210", 1030, 2.69e-3, 1193, 77 * _RPM, _X_MODES),
    Model("XM540-W270", 1120, 2.69e-3, 2047, 30 * _RPM, _X_MODES),
    Model("XM540-W150", 1130, 2.69e-3, 2047, 53 * _RPM, _X_MODES),
    Model("XL430-W250", 1060, None, 0, 57 * _RPM, _NO_CURRENT_MODES),
    Model("XL330-M288", 1200, 1.0e-3, 1750, 104 * _RPM, _X_MODES),
    Model("XL330-M077", 1190, 1.0e-3, 1750, 383 * _RPM, _X_MODES),
)}
MODEL_BY_NUMBER: dict[int, Model] = {m.number: m for m in MODELS.values()}


def model_by_name(name: str) -> Model:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown Dynamixel model {name!r}; known: {sorted(MODELS)}") from None


# ----------------------------------------------------------------------------- units

TICKS_PER_REV = 4096
CENTER_TICK = 2048  # motor angle 0 rad
RAD_PER_TICK = 2 * math.pi / TICKS_PER_REV
VELOCITY_UNIT_RPM = 0.229
RAD_S_PER_VELOCITY_UNIT = VELOCITY_UNIT_RPM * _RPM
MIN_TICK, MAX_TICK = 0, TICKS_PER_REV - 1  # position mode range


def ticks_to_rad(ticks) -> np.ndarray:
    """Motor angle (rad, 0 at tick 2048) of Present/Goal_Position values."""
    return (np.asarray(ticks, dtype=np.float64) - CENTER_TICK) * RAD_PER_TICK


def rad_to_ticks(rad) -> np.ndarray:
    """Goal_Position values (int64, rounded) of motor angles in rad."""
    return np.rint(np.asarray(rad, dtype=np.float64) / RAD_PER_TICK + CENTER_TICK).astype(np.int64)


def velocity_to_rad_s(units) -> np.ndarray:
    return np.asarray(units, dtype=np.float64) * RAD_S_PER_VELOCITY_UNIT


def rad_s_to_velocity(rad_s) -> np.ndarray:
    return np.rint(np.asarray(rad_s, dtype=np.float64) / RAD_S_PER_VELOCITY_UNIT).astype(np.int64)


def current_to_amps(units, current_unit) -> np.ndarray:
    """Present_Current values -> A; `current_unit` (A/unit, per motor) NaN where unknown."""
    return np.asarray(units, dtype=np.float64) * np.asarray(current_unit, dtype=np.float64)


def amps_to_current(amps, current_unit) -> np.ndarray:
    """A -> Goal_Current values (int64, rounded); NaN units give 0."""
    out = np.asarray(amps, dtype=np.float64) / np.asarray(current_unit, dtype=np.float64)
    return np.rint(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)).astype(np.int64)


def current_units_of(model_numbers) -> np.ndarray:
    """A per current unit for each model number (NaN: unknown model or no current sensor)."""
    out = []
    for number in model_numbers:
        model = MODEL_BY_NUMBER.get(int(number))
        out.append(model.current_unit if model and model.current_unit else float("nan"))
    return np.asarray(out, dtype=np.float64)


def to_le_bytes(values, size: int) -> list[bytes]:
    """Little-endian two's complement bytes of each integer value (sync write parameters)."""
    arr = np.asarray(values, dtype=np.int64)
    raw = arr.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :size]
    return [row.tobytes() for row in raw]
