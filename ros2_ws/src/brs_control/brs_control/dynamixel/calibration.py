"""Per-device Dynamixel calibration files and the reference build's motor map.

Calibration: one YAML file per serial adapter (chain), identified by the adapter's stable id
(its /dev/serial/by-id name), see hardware/calibration/README.md:

    format: brs_dynamixel_calibration/1
    chain: left_arm
    device_id: usb-FTDI_USB__-__Serial_Converter_FT8ISNXX-if00-port0
    port: /dev/brs_left_arm          # default port (udev symlink)
    baudrate: 1000000
    joints:                          # robot_spec joint names, any order
      left_arm_joint1: {id: 11, model: XM540-W270, mode: position, offset: 0.0, sign: 1}
      left_gripper_joint: {id: 17, model: XM430-W350, mode: current_based_position,
                           offset: -1.6, sign: 1, scale: 0.0125, current_limit: 0.6,
                           range: [0.0, 0.04]}

joint = sign * scale * (motor_rad - offset), motor_rad = (ticks - 2048) * 2*pi/4096.
`range` (optional) narrows the spec limits (e.g. measured mechanical stops). Everything is
validated on load; errors name the file and the field.

Motor map: hardware/motors.yaml lists every chain of the reference build (ids, models, modes,
baud rate, adapter and udev symlink); `load_motor_map` reads it (the emulator's --chain uses it).
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from brs_common import robot_spec as spec

from . import control_table as ct
from .bus import MotorCalibration

FORMAT = "brs_dynamixel_calibration/1"
MOTOR_MAP_FORMAT = "brs_motor_map/1"
_POSITION_LIMITED = (ct.MODE_POSITION, ct.MODE_CURRENT_BASED_POSITION)


class CalibrationError(ValueError):
    """An invalid calibration or motor map file (the message names file and field)."""


def hardware_dir() -> Path:
    """The hardware/ folder: $BRS_HARDWARE_DIR, else the one of this source checkout, else ./hardware."""
    env = os.environ.get("BRS_HARDWARE_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "hardware"
        if (candidate / "motors.yaml").is_file():
            return candidate
    return Path.cwd() / "hardware"


def calibration_dir() -> Path:
    return Path(os.environ.get("BRS_CALIBRATION_DIR") or hardware_dir() / "calibration")


# ----------------------------------------------------------------------------- calibration

@dataclass(frozen=True)
class JointCalibration:
    joint: str
    id: int
    model: str
    mode: int
    offset: float = 0.0
    sign: int = 1
    scale: float = 1.0
    lower: float = 0.0  # effective joint limits: spec limits narrowed by `range`
    upper: float = 0.0
    current_limit: float | None = None  # A; Goal_Current in current-based position mode

    def motor(self) -> MotorCalibration:
        return MotorCalibration(self.id, self.offset, self.sign, self.scale)


@dataclass(frozen=True)
class ChainCalibration:
    chain: str
    device_id: str
    port: str
    baudrate: int
    joints: tuple[JointCalibration, ...]
    path: str = ""

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.joint for j in self.joints)

    @property
    def ids(self) -> list[int]:
        return [j.id for j in self.joints]

    @property
    def groups(self) -> tuple[str, ...]:
        """Spec groups covered, in spec order."""
        present = {spec.JOINT_BY_NAME[j.joint].group for j in self.joints}
        return tuple(g for g in spec.GROUP_ORDER if g in present)

    def motors(self) -> list[MotorCalibration]:
        return [j.motor() for j in self.joints]

    def for_joints(self, names) -> ChainCalibration:
        """This calibration reordered to `names`; CalibrationError if they differ as sets."""
        by_name = {j.joint: j for j in self.joints}
        names = list(names)
        missing = [n for n in names if n not in by_name]
        extra = [n for n in by_name if n not in names]
        if missing or extra:
            raise CalibrationError(f"{self.path or self.chain}: joints do not match the driver's "
                                   f"groups: missing {missing}, unexpected {extra}")
        return ChainCalibration(self.chain, self.device_id, self.port, self.baudrate,
                                tuple(by_name[n] for n in names), self.path)


def _err(where: str, message: str) -> CalibrationError:
    return CalibrationError(f"{where}: {message}")


def _number(where: str, value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _err(where, f"{name} must be a finite number, got {value!r}")
    return float(value)


def _parse_joint(where: str, name: str, entry) -> JointCalibration:
    if name not in spec.JOINT_BY_NAME:
        close = difflib.get_close_matches(name, spec.JOINT_BY_NAME, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _err(where, f"unknown joint {name!r}{hint}; joints come from brs_common.robot_spec")
    j = spec.JOINT_BY_NAME[name]
    if j.velocity_controlled:
        raise _err(where, f"{name} is a virtual base joint, not a Dynamixel joint")
    where = f"{where}: joints.{name}"
    if not isinstance(entry, dict):
        raise _err(where, "must be a mapping with at least 'id'")
    unknown = set(entry) - {"id", "model", "mode", "offset", "sign", "scale", "range", "current_limit"}
    if unknown:
        raise _err(where, f"unknown keys {sorted(unknown)}")
    dxl_id = entry.get("id")
    if isinstance(dxl_id, bool) or not isinstance(dxl_id, int) or not 0 <= dxl_id <= 252:
        raise _err(where, f"id must be an integer 0..252, got {dxl_id!r}")
    model = str(entry.get("model", "XM430-W350"))
    try:
        ct.model_by_name(model)
        mode = ct.mode_value(entry.get("mode", "position"))
    except ValueError as exc:
        raise _err(where, str(exc)) from None
    if mode not in ct.model_by_name(model).modes:
        raise _err(where, f"model {model} does not support mode {ct.MODE_NAMES[mode]}")
    offset = _number(where, entry.get("offset", 0.0), "offset")
    sign = entry.get("sign", 1)
    if sign not in (1, -1) or isinstance(sign, bool):
        raise _err(where, f"sign must be 1 or -1, got {sign!r}")
    scale = _number(where, entry.get("scale", 1.0), "scale")
    if scale == 0:
        raise _err(where, "scale must be non-zero")
    lower, upper = j.lower, j.upper
    if "range" in entry:
        rng = entry["range"]
        if not isinstance(rng, (list, tuple)) or len(rng) != 2:
            raise _err(where, f"range must be [lower, upper], got {rng!r}")
        lo, hi = (_number(where, v, "range") for v in rng)
        if not lo < hi:
            raise _err(where, f"range lower {lo} must be below upper {hi}")
        if lo < j.lower - 1e-9 or hi > j.upper + 1e-9:
            raise _err(where, f"range [{lo}, {hi}] exceeds the spec limits [{j.lower}, {j.upper}]")
        lower, upper = lo, hi
    current_limit = entry.get("current_limit")
    if current_limit is not None:
        current_limit = _number(where, current_limit, "current_limit")
        if current_limit <= 0:
            raise _err(where, "current_limit must be positive (A)")
    cal = JointCalibration(name, dxl_id, model, mode, offset, int(sign), scale, lower, upper, current_limit)
    if mode in _POSITION_LIMITED:
        raw = [sign * q / scale + offset for q in (lower, upper)]
        ticks = [round(r / ct.RAD_PER_TICK + ct.CENTER_TICK) for r in raw]
        if min(ticks) < ct.MIN_TICK or max(ticks) > ct.MAX_TICK:
            raise _err(where, f"joint range [{lower}, {upper}] maps to ticks {sorted(ticks)}, outside "
                       f"the single-turn range 0..4095 of mode {ct.MODE_NAMES[mode]}; fix the offset "
                       "or use mode extended_position")
    return cal


def parse_calibration(data, where: str = "<calibration>") -> ChainCalibration:
    """Validate a calibration document (already parsed YAML)."""
    if not isinstance(data, dict):
        raise _err(where, "must be a YAML mapping")
    if data.get("format") != FORMAT:
        raise _err(where, f"format must be {FORMAT!r}, got {data.get('format')!r}")
    for key in ("chain", "device_id", "joints"):
        if key not in data:
            raise _err(where, f"missing {key!r}")
    baudrate = data.get("baudrate", 1_000_000)
    if not isinstance(baudrate, int) or baudrate <= 0:
        raise _err(where, f"baudrate must be a positive integer, got {baudrate!r}")
    joints_in = data["joints"]
    if not isinstance(joints_in, dict) or not joints_in:
        raise _err(where, "joints must be a non-empty mapping joint -> {id, ...}")
    joints = [_parse_joint(where, str(name), entry) for name, entry in joints_in.items()]
    ids = [j.id for j in joints]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise _err(where, f"duplicate motor ids {dupes}")
    # spec order, so a chain's joint order is the same everywhere
    joints.sort(key=lambda j: spec.ACTION_JOINTS.index(j.joint))
    return ChainCalibration(chain=str(data["chain"]), device_id=str(data["device_id"]),
                            port=str(data.get("port", "")), baudrate=baudrate,
                            joints=tuple(joints), path=where)


def load_calibration(path: str | os.PathLike) -> ChainCalibration:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read calibration file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: invalid YAML: {exc}") from exc
    return parse_calibration(data, str(path))


def dump_calibration(cal: ChainCalibration) -> str:
    """YAML text of a calibration (for calibration tools)."""
    joints = {}
    for j in cal.joints:
        entry = {"id": j.id, "model": j.model, "mode": ct.MODE_NAMES[j.mode],
                 "offset": round(j.offset, 6), "sign": j.sign}
        if j.scale != 1.0:
            entry["scale"] = j.scale
        spec_j = spec.JOINT_BY_NAME[j.joint]
        if (j.lower, j.upper) != (spec_j.lower, spec_j.upper):
            entry["range"] = [j.lower, j.upper]
        if j.current_limit is not None:
            entry["current_limit"] = j.current_limit
        joints[j.joint] = entry
    doc = {"format": FORMAT, "chain": cal.chain, "device_id": cal.device_id, "port": cal.port,
           "baudrate": cal.baudrate, "joints": joints}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


def save_calibration(cal: ChainCalibration, path: str | os.PathLike) -> None:
    """Write atomically (a crash never leaves a half-written calibration)."""
    path = Path(path)
    text = dump_calibration(cal)
    parse_calibration(yaml.safe_load(text), str(path))  # never write what we could not load
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def device_id_of(port: str, by_id_dir: str | None = None) -> str | None:
    """The /dev/serial/by-id name of the adapter behind `port`, if any (`by_id_dir` default:
    $BRS_SERIAL_BY_ID_DIR, else /dev/serial/by-id)."""
    by_id_dir = by_id_dir or os.environ.get("BRS_SERIAL_BY_ID_DIR") or "/dev/serial/by-id"
    target = os.path.realpath(port)
    try:
        names = sorted(os.listdir(by_id_dir))
    except OSError:
        return None
    for name in names:
        if os.path.realpath(os.path.join(by_id_dir, name)) == target:
            return name
    return None


def find_calibration(port: str, directory: str | os.PathLike | None = None,
                     chain: str | None = None) -> Path | None:
    """The calibration file for `port`: the one whose device_id is the adapter's by-id name,
    else (for emulators and fixed UARTs) one whose port or chain matches. None if none does."""
    directory = Path(directory) if directory else calibration_dir()
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    docs = []
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            docs.append((path, doc))
    device = device_id_of(port)
    for key, value in (("device_id", device), ("port", port), ("chain", chain)):
        if not value:
            continue
        for path, doc in docs:
            if str(doc.get(key, "")) == value:
                return path
    return None


# ----------------------------------------------------------------------------- motor map

@dataclass(frozen=True)
class MotorSpec:
    joint: str
    id: int
    model: str
    mode: str = "position"


@dataclass(frozen=True)
class ChainSpec:
    name: str
    port: str
    emulator_link: str
    baudrate: int
    adapter: str
    motors: tuple[MotorSpec, ...] = field(default_factory=tuple)

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.motors]


@dataclass(frozen=True)
class MotorMap:
    chains: dict[str, ChainSpec]
    path: str = ""

    def chain(self, name: str) -> ChainSpec:
        try:
            return self.chains[name]
        except KeyError:
            raise CalibrationError(f"{self.path}: no chain {name!r}; chains: {sorted(self.chains)}") from None


def load_motor_map(path: str | os.PathLike | None = None) -> MotorMap:
    """hardware/motors.yaml (validated: known models, unique ids per chain and robot-wide)."""
    path = Path(path) if path else hardware_dir() / "motors.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CalibrationError(f"{path}: cannot load motor map: {exc}") from exc
    where = str(path)
    if not isinstance(data, dict) or data.get("format") != MOTOR_MAP_FORMAT:
        raise _err(where, f"format must be {MOTOR_MAP_FORMAT!r}")
    chains = {}
    for name, c in (data.get("chains") or {}).items():
        w = f"{where}: chains.{name}"
        motors = []
        for m in c.get("motors", []):
            try:
                ct.model_by_name(m["model"])
                ct.mode_value(m.get("mode", "position"))
                motors.append(MotorSpec(str(m["joint"]), int(m["id"]), m["model"], m.get("mode", "position")))
            except (KeyError, TypeError, ValueError) as exc:
                raise _err(w, f"bad motor entry {m!r}: {exc}") from None
        ids = [m.id for m in motors]
        if len(set(ids)) != len(ids):
            raise _err(w, f"duplicate ids {ids}")
        chains[name] = ChainSpec(name, str(c.get("port", "")), str(c.get("emulator_link", "")),
                                 int(c.get("baudrate", 1_000_000)), str(c.get("adapter", "")), tuple(motors))
    return MotorMap(chains, where)


# ----------------------------------------------------------------------------- calibration tool

def offsets_for_pose(cal: ChainCalibration, motor_rad, pose) -> ChainCalibration:
    """New offsets so that the motors' current angles `motor_rad` read as joint values `pose`
    (signs and scales kept): offset = motor_rad - sign * pose / scale."""
    import dataclasses

    joints = []
    for j, raw, q in zip(cal.joints, motor_rad, pose):
        joints.append(dataclasses.replace(j, offset=float(raw - j.sign * q / j.scale)))
    new = dataclasses.replace(cal, joints=tuple(joints))
    # validate (single-turn reach etc.) through the same parser as any file
    return parse_calibration(yaml.safe_load(dump_calibration(new)), cal.path or "<calibration>")


def main(argv=None) -> int:
    """python -m brs_control.dynamixel.calibration {show,set-pose} --file CAL [--port P]

    show:      print motor angles and joint values under the file's calibration (torque untouched)
    set-pose:  hold the chain in the spec's zero (or --pose home) pose, then run this: the
               offsets are rewritten so the current pose reads as that pose; signs, scales and
               ranges are kept (check each sign by moving a joint in its positive direction
               with `show`). The file is replaced atomically.
    """
    import argparse

    import numpy as np

    from .bus import DynamixelBus

    parser = argparse.ArgumentParser(prog="python -m brs_control.dynamixel.calibration",
                                     description=main.__doc__.splitlines()[0])
    parser.add_argument("command", choices=("show", "set-pose"))
    parser.add_argument("--file", required=True, help="calibration YAML of the chain")
    parser.add_argument("--port", help="override the file's port (e.g. /tmp/brs_dxl_left_arm)")
    parser.add_argument("--pose", choices=("zero", "home"), default="zero")
    args = parser.parse_args(argv)
    cal = load_calibration(args.file)
    bus = DynamixelBus(args.port or cal.port, cal.baudrate, cal.ids, cal.motors())
    with bus:
        bus.ping_all()
        raw = ct.ticks_to_rad(bus.read_state_raw()["position"])
        joints = bus.to_joint(raw)
        for j, r, q in zip(cal.joints, raw, joints):
            print(f"{j.joint:22s} id {j.id:3d}  motor {r:+8.4f} rad  joint {q:+8.4f}  "
                  f"[{j.lower:+.3f}, {j.upper:+.3f}]")
        if args.command == "set-pose":
            pose = np.array([spec.JOINT_BY_NAME[j.joint].home if args.pose == "home" else 0.0
                             for j in cal.joints])
            new = offsets_for_pose(cal, raw, pose)
            save_calibration(new, args.file)
            print(f"wrote {args.file}: offsets " + ", ".join(f"{j.joint}={j.offset:+.4f}" for j in new.joints))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
