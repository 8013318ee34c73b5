"""keyboard_teleop: drive the robot (sim) from a terminal, no hardware needed.

Keys (docs/teleop.md): W/S forward/back, A/D left/right, Q/E yaw left/right, X stop the base,
arrow keys torso (up/down: torso_joint1, left/right: torso_joint4), '[' / ']' select the left /
right arm, 1-6 select an arm joint, '+' / '-' move it, G / H close / open the selected arm's
gripper, SPACE e-stop, R start recording, F finish and save it, Backspace discard it (the
episode recorder's services, like the Joy-Con's + / - / capture), Ctrl-C quit.

A terminal gives key presses but no releases, so a base key commands its velocity for
`hold_s` seconds after the last press (terminal auto-repeat keeps a held key alive).
A status line at the bottom of the terminal (5 Hz) shows the selected arm and joint and its
target, the grippers, the commanded vs measured base speed (/odom), the e-stop (from the
controller's /diagnostics) and `BASE BLOCKED?` when the base has been commanded but has hardly
moved for a second (driving into furniture), and the recorder's state (`REC episode_000003
12.4 s` while recording) when the graph has one.
The key -> action mapping (`parse_keys`, `KeyboardState`) is pure; the node is a thin layer that
reads stdin in non-blocking cbreak mode and publishes the 21-D target at `rate_hz`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brs_common import robot_spec as spec

from . import teleop_mapping as tm

ARROWS = {b"\x1b[A": "up", b"\x1b[B": "down", b"\x1b[C": "right", b"\x1b[D": "left",
          b"\x1bOA": "up", b"\x1bOB": "down", b"\x1bOC": "right", b"\x1bOD": "left"}
BASE_KEYS = {"w": (1, 0, 0), "s": (-1, 0, 0), "a": (0, 1, 0), "d": (0, -1, 0),
             "q": (0, 0, 1), "e": (0, 0, -1)}
TORSO_KEYS = {"up": (0, 1.0), "down": (0, -1.0), "left": (3, 1.0), "right": (3, -1.0)}
RECORD_KEYS = {"r": "record_start", "f": "record_stop", "backspace": "record_discard"}  # -> events


def parse_keys(data: bytes) -> tuple[list[str], bytes]:
    """Split raw terminal bytes into key names; returns (keys, incomplete trailing escape)."""
    keys, i = [], 0
    while i < len(data):
        if data[i:i + 1] == b"\x1b":
            seq = data[i:i + 3]
            if len(seq) < 3 and (seq in (b"\x1b", b"\x1b[", b"\x1bO")):
                return keys, data[i:]  # wait for the rest of the sequence
            if seq in ARROWS:
                keys.append(ARROWS[seq])
                i += 3
                continue
            keys.append("esc")
            i += 1
            continue
        ch = data[i:i + 1].decode("latin-1")
        i += 1
        if ch == " ":
            keys.append("space")
        elif ch == "\x03":
            keys.append("quit")
        elif ch == "=":
            keys.append("+")  # '+' without shift
        elif ch in ("\x7f", "\x08"):
            keys.append("backspace")
        else:
            keys.append(ch.lower())
    return keys, b""


@dataclass
class KeyboardState:
    """Pure keyboard teleop state machine."""

    hold_s: float = 0.5
    torso_step: float = 0.05  # rad per arrow press
    arm_step: float = 0.05  # rad per +/- press
    arm: str = "left"
    joint: int = 1  # 1..6
    base: np.ndarray = field(default_factory=lambda: np.zeros(3))
    base_until: float = -1.0
    left_gripper: float | None = None
    right_gripper: float | None = None
    pending_delta: np.ndarray = field(default_factory=lambda: np.zeros(spec.ACTION_DIM))

    def apply(self, key: str, now: float) -> list[str]:
        """Apply one key at time `now`; returns events ('estop', 'quit', RECORD_KEYS' values)."""
        if key in RECORD_KEYS:
            return [RECORD_KEYS[key]]
        if key in BASE_KEYS:
            self.base = np.asarray(BASE_KEYS[key], float)
            self.base_until = now + self.hold_s
        elif key == "x":
            self.base = np.zeros(3)
            self.base_until = -1.0
        elif key in TORSO_KEYS:
            j, sign = TORSO_KEYS[key]
            self.pending_delta[tm.TORSO.start + j] += sign * self.torso_step
        elif key in ("[", "]"):
            self.arm = "left" if key == "[" else "right"
        elif key in tuple("123456"):
            self.joint = int(key)
        elif key in ("+", "-"):
            name = f"{self.arm}_arm_joint{self.joint}"
            self.pending_delta[spec.ACTION_JOINTS.index(name)] += (
                self.arm_step if key == "+" else -self.arm_step)
        elif key in ("g", "h"):
            setattr(self, f"{self.arm}_gripper", 0.0 if key == "g" else 1.0)
        elif key == "space":
            self.base = np.zeros(3)
            self.base_until = -1.0
            return [tm.ESTOP]
        elif key == "quit":
            return ["quit"]
        return []

    def command(self, now: float) -> tm.TeleopCommand:
        """The command of this tick; consumes the pending position steps."""
        base = self.base if now < self.base_until else np.zeros(3)
        delta, self.pending_delta = self.pending_delta, np.zeros(spec.ACTION_DIM)
        return tm.TeleopCommand(base=base.copy(), left_gripper=self.left_gripper,
                                right_gripper=self.right_gripper, delta=delta)


class BlockedBase:
    """Commanded >= `min_speed` for `after` s while measuring < `ratio` of it: blocked."""

    def __init__(self, min_speed: float = 0.1, ratio: float = 0.3, after: float = 1.0):
        self.min_speed, self.ratio, self.after = min_speed, ratio, after
        self.since: float | None = None

    def update(self, commanded, measured, now: float) -> bool:
        cmd, meas = float(np.linalg.norm(commanded[:2])), float(np.linalg.norm(measured[:2]))
        if cmd >= self.min_speed and meas < self.ratio * cmd:
            self.since = now if self.since is None else self.since
            return now - self.since >= self.after
        self.since = None
        return False


def recorder_text(values: dict | None) -> str | None:
    """The recorder's state for the status line from its /diagnostics values (None: no recorder)."""
    if values is None:
        return None
    if values.get("recording") == "true":
        return f"REC {values.get('episode', '?')} {float(values.get('duration_s', 'nan')):.1f} s"
    saved = Path(values.get("last_saved") or "").name
    return f"rec idle, saved {saved} (R start)" if saved else "rec idle (R start)"


def status_line(state: KeyboardState, targets, commanded_base, measured_base, estop: bool | None,
                blocked: bool, recorder: str | None = None) -> str:
    """One terminal line: selection and its target, grippers, base speeds, e-stop, recorder, warnings."""
    name = f"{state.arm}_arm_joint{state.joint}"
    target = targets[spec.ACTION_JOINTS.index(name)]
    grip = "/".join(f"{targets[spec.ACTION_JOINTS.index(f'{side}_gripper_joint')]:.3f}" for side in ("left", "right"))
    cmd, meas = np.linalg.norm(commanded_base[:2]), np.linalg.norm(measured_base[:2])
    parts = [f"{name} {target:+.2f} rad", f"grippers L/R {grip}",
             f"base cmd {cmd:.2f} m/s {commanded_base[2]:+.2f} rad/s | measured {meas:.2f} m/s {measured_base[2]:+.2f} rad/s",
             "E-STOP LATCHED (brs estop reset)" if estop else ("e-stop clear" if estop is False else "e-stop ?")]
    if recorder is not None:
        parts.append(recorder)
    if blocked:
        parts.append("BASE BLOCKED? commanded but not moving")
    return " | ".join(parts)


def keys_to_targets(targets, keys, now: float, dt: float, state: KeyboardState | None = None,
                    config: tm.MappingConfig = tm.MappingConfig()):
    """Pure: apply keys then one tick -> (next 21-D targets, events, state)."""
    state = state or KeyboardState()
    events = []
    for key in keys:
        events += state.apply(key, now)
    return tm.step_targets(targets, state.command(now), dt, config), events, state


# ----------------------------------------------------------------------------- ROS node

def _make_node():
    import termios
    import time

    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    from brs_common import params, qos, topics
    from brs_common.convert import joint_state_to_dict

    class KeyboardTeleop(Node):
        def __init__(self):
            super().__init__("keyboard_teleop")
            cfg = tm.MappingConfig()
            p = params.declare(self, [
                ("rate_hz", 50.0, "teleop command rate, Hz"),
                ("hold_s", 0.5, "s a base key keeps commanding after its last press (key repeat)"),
                ("base_max", list(cfg.base_max), "base speed of a key [vx, vy m/s, wz rad/s], clipped to "
                                                 "the spec limits"),
            ])
            self.rate_hz = float(p["rate_hz"])
            hold_s = float(p["hold_s"])
            self.config = tm.MappingConfig(base_max=tuple(p["base_max"]), torso_rate=cfg.torso_rate)
            self.keys = KeyboardState(hold_s=hold_s)
            self.targets: np.ndarray | None = None
            self.quit = False
            self.pub = self.create_publisher(JointTrajectory, topics.whole_body_command("teleop"),
                                             qos.COMMAND)
            self.estop_pub = self.create_publisher(Bool, topics.ESTOP, qos.COMMAND)
            self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states,
                                     qos.STATE)
            self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
            self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos.DIAGNOSTICS)
            self.measured_base = np.zeros(3)
            self.estop: bool | None = None
            self.recorder: dict | None = None  # the recorder's latest /diagnostics values
            # already discovered when a key asks: a start takes one service round trip
            self.recorder_clients = {
                "record_start": self.create_client(Trigger, topics.RECORDER_START),
                "record_stop": self.create_client(Trigger, topics.RECORDER_STOP),
                "record_discard": self.create_client(Trigger, topics.RECORDER_DISCARD),
            }
            self.blocked = BlockedBase()
            self.status_period = 0.2
            self._last_status = 0.0
            self.status_out = sys.stderr if sys.stderr.isatty() else None
            self.fd = sys.stdin.fileno()
            self.saved_tty = None
            if os.isatty(self.fd):
                self.saved_tty = termios.tcgetattr(self.fd)
                mode = termios.tcgetattr(self.fd)
                mode[3] &= ~(termios.ICANON | termios.ECHO)  # cbreak: keep ISIG for Ctrl-C
                mode[6][termios.VMIN], mode[6][termios.VTIME] = 0, 0
                termios.tcsetattr(self.fd, termios.TCSANOW, mode)
            else:
                self.get_logger().warning("stdin is not a terminal; reading it anyway")
            os.set_blocking(self.fd, False)
            self.buffer = b""
            self.clock = time.monotonic
            self._warned_blocked = False
            self.create_timer(1.0 / self.rate_hz, self._tick)
            self.get_logger().info("keyboard teleop: WASD base, QE yaw, arrows torso, [ ] arm, "
                                   "1-6 joint, +/- move, G/H gripper, SPACE e-stop, X stop, "
                                   "R record, F save, Backspace discard")

        def _on_joint_states(self, msg):
            if self.targets is None:
                self.targets = tm.initial_targets(joint_state_to_dict(msg))
                self.get_logger().info("targets initialised from /joint_states")

        def _on_odom(self, msg):
            tw = msg.twist.twist
            self.measured_base = np.array([tw.linear.x, tw.linear.y, tw.angular.z])

        def _on_diagnostics(self, msg):
            for st in msg.status:
                if st.name == f"{topics.WHOLE_BODY_CONTROLLER_NODE}: state":
                    values = {kv.key: kv.value for kv in st.values}
                    self.estop = values.get("estop_latched") == "True"
                elif st.name == f"{topics.RECORDER_NODE}: recorder":
                    self.recorder = {kv.key: kv.value for kv in st.values}

        def _record(self, event: str):
            """Call the recorder's start / stop / discard service; the answer is logged."""
            client = self.recorder_clients[event]
            if not client.service_is_ready():
                self.get_logger().warning(f"no episode recorder in this graph ({client.srv_name}): "
                                          "bring up mode:=record")
                return
            future = client.call_async(Trigger.Request())
            future.add_done_callback(lambda f, what=event.split("_")[1]: self._recorded(what, f))

        def _recorded(self, what: str, future):
            response = future.result()
            if response.success:
                self.get_logger().info(f"recorder {what}: {response.message}")
            else:
                self.get_logger().warning(f"recorder {what} refused: {response.message}")

        def _status(self, now: float):
            if now - self._last_status < self.status_period:
                return
            self._last_status = now
            commanded = self.targets[tm.BASE]
            blocked = self.blocked.update(commanded, self.measured_base, now)
            if blocked and not self._warned_blocked:
                self.get_logger().warning("the base is commanded but hardly moves: blocked?")
            self._warned_blocked = blocked
            if self.status_out is not None:
                line = status_line(self.keys, self.targets, commanded, self.measured_base, self.estop, blocked,
                                   recorder_text(self.recorder))
                self.status_out.write("\r\x1b[K" + line)
                self.status_out.flush()

        def _read(self) -> list[str]:
            try:
                data = os.read(self.fd, 1024)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:  # terminal gone
                data = b""
            keys, self.buffer = parse_keys(self.buffer + data)
            return keys

        def _tick(self):
            keys = self._read()
            if self.targets is None:
                return  # keys before the first /joint_states are dropped
            now = self.clock()
            self.targets, events, _ = keys_to_targets(
                self.targets, keys, now, 1.0 / self.rate_hz, self.keys, self.config)
            if tm.ESTOP in events:
                self.estop_pub.publish(Bool(data=True))
                self.get_logger().warning("e-stop sent")
            for event in events:
                if event in self.recorder_clients:
                    self._record(event)
            if "quit" in events:
                self.quit = True
            self.pub.publish(tm.command_msg(self.targets, 1.0 / self.rate_hz))
            self._status(now)

        def stop(self):
            if self.status_out is not None:
                self.status_out.write("\n")
            if self.targets is not None:
                self.targets[tm.BASE] = 0.0
                self.pub.publish(tm.command_msg(self.targets, 1.0 / self.rate_hz))
            if self.saved_tty is not None:
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved_tty)

    return KeyboardTeleop()


USAGE = """usage: keyboard_teleop [-h] [--ros-args -p NAME:=VALUE ...]

Drive the robot (sim) from this terminal's keys: W/S A/D Q/E base, X stop the base, arrows torso,
[ / ] arm, 1-6 joint, + / - move it, G / H gripper, SPACE e-stop, R / F / Backspace start / save /
discard an episode (mode:=record), Ctrl-C quit (all keys: docs/teleop.md, "Keyboard").
Parameters: rate_hz (50), hold_s (0.5), base_max ([0.3, 0.3, 0.4]), e.g.
  keyboard_teleop --ros-args -p hold_s:=0.3"""


def plain_args(argv: list[str]) -> list[str]:
    """The arguments outside `--ros-args ... [--]` (those are rclpy's)."""
    plain, in_ros = [], False
    for arg in argv:
        if arg == "--ros-args":
            in_ros = True
        elif in_ros and arg == "--":
            in_ros = False
        elif not in_ros:
            plain.append(arg)
    return plain


def main(args=None):
    plain = plain_args(list(sys.argv if args is None else args)[1:])
    if any(a in ("-h", "--help") for a in plain):
        print(USAGE)
        return 0
    if plain:
        print(f"keyboard_teleop: unknown argument {plain[0]!r} (parameters go after --ros-args; "
              "see --help)", file=sys.stderr)
        return 2
    from brs_common.node_main import run_node

    return run_node(_make_node, args, on_stop=lambda node: node.stop(),
                    done=lambda node: node.quit)


if __name__ == "__main__":
    sys.exit(main())
