"""Pure teleop mapping: operator input (Joy-Con state, keyboard) + current targets -> the 21-D
whole-body target in `robot_spec.ACTION_JOINTS` order (base entries are velocities, every other
entry a position target), plus discrete events (episode start/stop/discard, e-stop, mode).

The 21-D vector goes unchanged into both `positions` and `velocities` of a teleop command
(docs/controller.md). No ROS here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brs_common import robot_spec as spec

BASE = spec.group_slice("base")
TORSO = spec.group_slice("torso")
LEFT_ARM = spec.group_slice("left_arm")
RIGHT_ARM = spec.group_slice("right_arm")
LEFT_GRIPPER = spec.group_slice("left_gripper").start
RIGHT_GRIPPER = spec.group_slice("right_gripper").start
ARMS = np.r_[np.arange(LEFT_ARM.start, LEFT_ARM.stop), np.arange(RIGHT_ARM.start, RIGHT_ARM.stop)]

# Events (rising edges of buttons)
START_EPISODE, STOP_EPISODE, DISCARD_EPISODE, ESTOP, TOGGLE_MODE, TOGGLE_ENGAGE = (
    "start_episode", "stop_episode", "discard_episode", "estop", "toggle_mode", "toggle_engage")


@dataclass(frozen=True)
class MappingConfig:
    # Full-stick base speed (vx, vy m/s, yaw rad/s); clipped to the spec limits.
    base_max: tuple[float, float, float] = (0.3, 0.3, 0.4)
    torso_rate: float = 0.5  # rad/s of a torso joint at full stick
    # Joy-Con buttons -> events (rising edge).
    event_buttons: tuple[tuple[str, str], ...] = (
        ("plus", START_EPISODE), ("minus", STOP_EPISODE), ("capture", DISCARD_EPISODE),
        ("home", ESTOP), ("x", TOGGLE_MODE), ("y", TOGGLE_ENGAGE))
    trigger_threshold: float = 0.5

    def base_limits(self) -> np.ndarray:
        return np.minimum(np.abs(np.asarray(self.base_max, float)), spec.MAX_VELOCITY[BASE])


@dataclass
class TeleopCommand:
    """One tick of operator intent, independent of the input device."""

    base: np.ndarray = field(default_factory=lambda: np.zeros(3))  # normalised [-1, 1]
    torso_rate: np.ndarray = field(default_factory=lambda: np.zeros(4))  # normalised [-1, 1]
    # Gripper targets as an opening fraction 0 (closed) .. 1 (open); None -> hold.
    left_gripper: float | None = None
    right_gripper: float | None = None
    arms: np.ndarray | None = None  # (12,) left then right arm joint targets; None -> hold
    delta: np.ndarray | None = None  # (21,) position steps added once (keyboard); base ignored


def initial_targets(joint_positions: dict[str, float] | None = None) -> np.ndarray:
    """21-D targets starting from measured positions (missing joints: home), base at rest."""
    out = spec.HOME.astype(float).copy()
    for i, name in enumerate(spec.ACTION_JOINTS):
        if joint_positions and name in joint_positions:
            out[i] = float(joint_positions[name])
    out[BASE] = 0.0
    return np.clip(out, spec.LOWER, spec.UPPER)


def step_targets(targets, cmd: TeleopCommand, dt: float,
                 config: MappingConfig = MappingConfig()) -> np.ndarray:
    """Next 21-D target: base velocities from the command, torso integrated at a rate, arm
    targets from the leader arms (or held), grippers set (or held); positions clamped to limits."""
    out = np.asarray(targets, dtype=float).copy()
    if out.shape != (spec.ACTION_DIM,):
        raise ValueError(f"targets must be ({spec.ACTION_DIM},); got {out.shape}")
    out[BASE] = np.clip(np.asarray(cmd.base, float), -1.0, 1.0) * config.base_limits()
    out[TORSO] += np.clip(np.asarray(cmd.torso_rate, float), -1.0, 1.0) * config.torso_rate * dt
    if cmd.arms is not None:
        arms = np.asarray(cmd.arms, float).reshape(-1)
        if arms.shape != (12,) or not np.all(np.isfinite(arms)):
            raise ValueError("arm targets must be 12 finite values (left arm, right arm)")
        out[ARMS] = arms
    for index, value in ((LEFT_GRIPPER, cmd.left_gripper), (RIGHT_GRIPPER, cmd.right_gripper)):
        if value is not None:
            out[index] = spec.LOWER[index] + float(np.clip(value, 0, 1)) * (
                spec.UPPER[index] - spec.LOWER[index])
    if cmd.delta is not None:
        delta = np.asarray(cmd.delta, float).copy()
        delta[BASE] = 0.0
        out += delta
    pos = np.ones(spec.ACTION_DIM, bool)
    pos[BASE] = False
    out[pos] = np.clip(out[pos], spec.LOWER[pos], spec.UPPER[pos])
    return out


def joycon_command(state, prev_state=None, leader_arms=None, alt_mode: bool = False,
                   config: MappingConfig = MappingConfig()) -> tuple[TeleopCommand, list[str]]:
    """Joy-Con state -> (command, events).

    Left stick: base vx (up) / vy (left = +y). Yaw: L shoulder turns left (+yaw), R right; with
    the right stick, rx drives yaw while the left stick button (lstick) is held.
    Right stick (normal mode): ry -> torso_joint1 (knee), rx -> torso_joint4 (waist yaw);
    alt mode (`alt_mode`, toggled by the mode event): ry -> torso_joint3 (waist pitch),
    rx -> torso_joint2 (hip pitch). ZL / ZR held -> close left / right gripper, released -> open.
    Events are rising edges of the configured buttons relative to `prev_state`.
    """
    base = np.array([state.ly, -state.lx, 0.0])
    yaw = float(state.pressed("l")) - float(state.pressed("r"))
    torso = np.zeros(4)
    if state.pressed("lstick"):
        yaw += -state.rx
    elif alt_mode:
        torso[2], torso[1] = state.ry, state.rx
    else:
        torso[0], torso[3] = state.ry, -state.rx
    base[2] = np.clip(yaw, -1.0, 1.0)
    cmd = TeleopCommand(
        base=base, torso_rate=torso,
        left_gripper=0.0 if state.zl >= config.trigger_threshold else 1.0,
        right_gripper=0.0 if state.zr >= config.trigger_threshold else 1.0,
        arms=None if leader_arms is None else np.asarray(leader_arms, float))
    events = [event for button, event in config.event_buttons
              if state.pressed(button) and not (prev_state is not None
                                                and prev_state.pressed(button))]
    return cmd, events


def joycon_targets(targets, state, prev_state, dt: float, leader_arms=None,
                   alt_mode: bool = False, config: MappingConfig = MappingConfig()):
    """Convenience: (next 21-D targets, events) for one Joy-Con tick."""
    cmd, events = joycon_command(state, prev_state, leader_arms, alt_mode, config)
    return step_targets(targets, cmd, dt, config), events


def command_msg(targets, period: float):
    """The teleop command of docs/teleop.md (brs_common.convert.whole_body_command_msg)."""
    from brs_common.convert import whole_body_command_msg

    return whole_body_command_msg(targets, period)
