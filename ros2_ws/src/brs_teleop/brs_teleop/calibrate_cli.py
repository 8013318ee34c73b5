"""`brs calibrate joylo`: calibrate the JoyLo leader arms, one calibration file per adapter.

Per arm: ping the chain, torque off, then
  1. the operator holds the leader in the robot's home pose (robot_spec HOME: every arm joint 0
     but the elbow at -1.2 rad, docs/teleop.md) and presses Enter -> offsets;
  2. moves each joint in its positive direction and presses Enter -> signs (skipped with --yes:
     signs from the existing file, else +1);
  3. moves every joint through its range and presses Enter -> measured ranges, printed against
     the robot's limits (with --yes: sampled for --sweep-s seconds, 0 = skipped).
The file is written atomically under the calibration folder, keyed by the adapter's
/dev/serial/by-id name (`device_id`): the file that already has this device id is updated,
otherwise joylo_<side>.yaml (or joylo_<side>_<serial>.yaml when that one belongs to another
adapter). Answers may come from stdin (one line per prompt).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from brs_common import robot_spec as spec
from brs_control.dynamixel import control_table as ct
from brs_control.dynamixel.bus import BusError, DynamixelBus
from brs_control.dynamixel.calibration import (CalibrationError, ChainCalibration, JointCalibration,
                                               calibration_dir, device_id_of, dump_calibration,
                                               find_calibration, load_calibration, load_motor_map,
                                               parse_calibration, save_calibration)

from .leader_arms import SIDES, arm_joints, chain_name

MIN_MOVE_RAD = 0.1  # a sign check needs at least this much motion
# arm joint order of robot_spec; "positive" = the direction in which the robot joint's angle grows
# (its MJCF axis: watch the sim robot, `brs bringup use_sim:=true`, if unsure)
JOINT_ROLES = ("shoulder pitch", "shoulder roll", "upper-arm yaw", "elbow", "wrist pitch", "wrist roll")


class CalibrateError(RuntimeError):
    pass


def template(side: str, port: str, directory: Path) -> ChainCalibration:
    """Ids, models and signs to start from: this adapter's file if any, else hardware/motors.yaml."""
    found = find_calibration(port, directory, chain=chain_name(side))
    if found is not None:
        try:
            cal = load_calibration(found)
            if sorted(cal.joint_names) == sorted(arm_joints(side)):
                return cal.for_joints(arm_joints(side))
        except CalibrationError:
            pass
    chain = load_motor_map().chain(chain_name(side))
    by_joint = {m.joint: m for m in chain.motors}
    joints = tuple(JointCalibration(j, by_joint[j].id, by_joint[j].model, ct.MODE_CURRENT_BASED_POSITION,
                                    lower=spec.JOINT_BY_NAME[j].lower, upper=spec.JOINT_BY_NAME[j].upper)
                   for j in arm_joints(side))
    return ChainCalibration(chain_name(side), "", port, chain.baudrate, joints, "")


def output_path(side: str, device: str, directory: Path) -> Path:
    """The file of this adapter (same device_id), else joylo_<side>.yaml unless another adapter's."""
    for path in sorted(directory.glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if device and isinstance(doc, dict) and doc.get("device_id") == device:
            return path
    default = directory / f"{chain_name(side)}.yaml"
    if default.exists() and device:
        try:
            other = load_calibration(default).device_id
        except CalibrationError:
            other = ""
        if other and other != device:
            serial = re.sub(r"[^A-Za-z0-9]+", "_", device).strip("_")[-24:]
            return directory / f"{chain_name(side)}_{serial}.yaml"
    return default


def _fit_single_turn(j: JointCalibration, say) -> JointCalibration:
    """Narrow the joint's range to what the motor's single turn (ticks 0..4095) can represent
    with this offset (a horn mounted off its centre mark), and say so."""
    ends = j.sign * j.scale * (ct.ticks_to_rad([ct.MIN_TICK + 1, ct.MAX_TICK - 1]) - j.offset)
    spec_j = spec.JOINT_BY_NAME[j.joint]
    lo, hi = max(spec_j.lower, float(ends.min())), min(spec_j.upper, float(ends.max()))
    if lo >= hi:
        raise CalibrateError(f"{j.joint}: the home pose is outside the motor's single turn")
    if (lo, hi) != (spec_j.lower, spec_j.upper):
        say(f"  {j.joint}: the leader covers only [{lo:+.3f}, {hi:+.3f}] of the robot's "
            f"[{spec_j.lower:+.3f}, {spec_j.upper:+.3f}] (horn {j.offset:+.3f} rad off its centre "
            "mark): written as its range; re-mount the horn for the full range")
    return dataclasses.replace(j, lower=round(lo, 4), upper=round(hi, 4))


def _motor_rad(bus: DynamixelBus, samples: int = 3) -> np.ndarray:
    return np.mean([ct.ticks_to_rad(bus.read_state_raw()["position"]) for _ in range(samples)], axis=0)


def calibrate_arm(side: str, port: str, directory: Path, ask, yes: bool, sweep_s: float,
                  out: Path | None = None, say=print) -> Path:
    base = template(side, port, directory)
    bus = DynamixelBus(port, base.baudrate, base.ids, base.motors())
    home = np.array([spec.JOINT_BY_NAME[j].home for j in base.joint_names])
    say(f"== {side} leader arm on {port}: motors {base.ids}")
    try:
        bus.open()
        bus.ping_all()
    except BusError as exc:
        raise CalibrateError(f"{side} leader arm: {exc}; check the port, power (5 V) and ids "
                             "(hardware/motors.yaml)") from exc
    try:
        bus.set_torque(False)
        say("torque is off: the arm moves freely")
        (say if yes else ask)(f"Put the {side.upper()} leader arm in the home pose (the robot's home pose, as the sim "
            "robot stands after start: "
            + ", ".join(f"{j}={h:+.2f}" for j, h in zip(base.joint_names, home))
            + (") and press Enter " if not yes else "): taken as it stands now (--yes)"))
        raw_home = _motor_rad(bus)
        signs = np.array([j.sign for j in base.joints], dtype=int)
        if not yes:
            for k, joint in enumerate(base.joint_names):
                ask(f"Move {joint} in its POSITIVE direction ({JOINT_ROLES[k]}: the way its robot joint angle grows) by 20-45 degrees, "
                    "hold it and press Enter ")
                delta = float(_motor_rad(bus)[k] - raw_home[k])
                if abs(delta) < MIN_MOVE_RAD:
                    say(f"  {joint}: moved only {delta:+.3f} rad: sign kept ({signs[k]:+d})")
                else:
                    signs[k] = 1 if delta > 0 else -1
                    say(f"  {joint}: motor moved {delta:+.3f} rad -> sign {signs[k]:+d}")
                ask(f"Put {joint} back in the home pose and press Enter ")
        joints = tuple(_fit_single_turn(dataclasses.replace(
            j, sign=int(s), mode=ct.MODE_CURRENT_BASED_POSITION, offset=float(r - s * h / j.scale)), say)
            for j, s, r, h in zip(base.joints, signs, raw_home, home))
        device = device_id_of(port) or ""
        new = ChainCalibration(chain_name(side), device, port, base.baudrate, joints, "")
        try:
            new = parse_calibration(yaml.safe_load(dump_calibration(new)), f"{side} leader calibration")
        except CalibrationError as exc:
            raise CalibrateError(f"{exc}. Re-mount that motor's horn closer to its centre mark "
                                 "(tick 2048 at the home pose) and calibrate again") from None
        _range_check(bus, new, ask, yes, sweep_s, say)
    finally:
        bus.close()
    path = out or output_path(side, device, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_calibration(new, path)
    say(f"wrote {path} (device_id {device or '(none: not a USB adapter)'})")
    for j in new.joints:
        say(f"  {j.joint:18s} id {j.id}  offset {j.offset:+.4f} rad  sign {j.sign:+d}")
    return path


def _range_check(bus: DynamixelBus, cal: ChainCalibration, ask, yes: bool, sweep_s: float, say) -> None:
    """Sample while the operator sweeps every joint; print measured vs robot limits."""
    if yes and sweep_s <= 0:
        return
    sign = np.array([j.sign for j in cal.joints], dtype=float)
    offset = np.array([j.offset for j in cal.joints])
    scale = np.array([j.scale for j in cal.joints])
    lo, hi = np.full(len(cal.joints), np.inf), np.full(len(cal.joints), -np.inf)
    stop = threading.Event()

    def sample():
        nonlocal lo, hi
        while not stop.is_set():
            try:
                q = sign * scale * (ct.ticks_to_rad(bus.read_state_raw()["position"]) - offset)
            except BusError:
                q = None
            if q is not None:
                lo, hi = np.minimum(lo, q), np.maximum(hi, q)
            stop.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        if yes:
            time.sleep(sweep_s)
        else:
            ask("Move EVERY joint slowly through its full range (both ends), then press Enter ")
    finally:
        stop.set()
        thread.join()
    say(f"  {'joint':18s} {'measured':>18s} {'robot limits':>18s}")
    for j, a, b in zip(cal.joints, lo, hi):
        notes = []
        if not np.isfinite(a):
            notes.append("no reading")
        else:
            if b - a < MIN_MOVE_RAD:
                notes.append("did not move: check the motor and cable")
            elif a > j.lower + 0.1:
                notes.append(f"leader stops {a - j.lower:.2f} rad before the lower limit")
            if b - a >= MIN_MOVE_RAD and b < j.upper - 0.1:
                notes.append(f"leader stops {j.upper - b:.2f} rad before the upper limit")
        say(f"  {j.joint:18s} [{a:+7.3f}, {b:+7.3f}] [{j.lower:+7.3f}, {j.upper:+7.3f}]  "
            + ("; ".join(notes) or "ok"))


def add_parser(sub) -> None:
    """`brs calibrate joylo ...` (registered in brs.cli SUBCOMMANDS)."""
    p = sub.add_parser("calibrate", help="calibrate devices (joylo: the JoyLo leader arms)",
                       description=__doc__.splitlines()[0])
    p.add_argument("device", choices=("joylo",))
    p.add_argument("--side", choices=("left", "right", "both"), default="both")
    p.add_argument("--port", help="serial port of the arm given by --side (default /dev/brs_joylo_<side>)")
    p.add_argument("--left-port", default="/dev/brs_joylo_left")
    p.add_argument("--right-port", default="/dev/brs_joylo_right")
    p.add_argument("--dir", type=Path, default=None,
                   help="calibration folder (default $BRS_CALIBRATION_DIR or hardware/calibration)")
    p.add_argument("--out", type=Path, default=None, help="write this file instead (one side only)")
    p.add_argument("--yes", action="store_true",
                   help="non-interactive: the arm is in the home pose now; keep the signs")
    p.add_argument("--sweep-s", type=float, default=0.0,
                   help="with --yes: seconds to sample the range check (0: skip)")
    p.set_defaults(func=run)


def run(args, ask=None, say=print) -> int:
    ask = ask or (lambda prompt: input(prompt))
    sides = SIDES if args.side == "both" else (args.side,)
    if (args.port or args.out) and len(sides) != 1:
        raise ValueError("--port and --out need --side left or --side right")
    directory = args.dir or calibration_dir()
    ports = {"left": args.left_port, "right": args.right_port}
    if args.port:
        ports[sides[0]] = args.port
    try:
        for side in sides:
            calibrate_arm(side, ports[side], directory, ask, args.yes, args.sweep_s, args.out, say)
    except (CalibrateError, CalibrationError) as exc:
        print(f"brs calibrate joylo: {exc}", file=sys.stderr)
        return 1
    except EOFError:
        print("brs calibrate joylo: input ended before the calibration was complete; nothing "
              "written for the current arm", file=sys.stderr)
        return 1
    return 0
