"""JoyLo teleop benchmarks (`run(repeats)` -> list of brs_bench.result.Result).

The real-mode path on emulators, every node its own OS process over real DDS (localhost, a
private domain, wall time): two emulated leader arms (XL330 chains on ptys, in a child process of
their own, like separate hardware: the event-driven joylo reads them ~300 times a second and
their emulation must not take the GIL from the robot chain's emulator) -> joylo ->
whole_body_controller -> dynamixel_driver (left arm) -> the emulated robot left-arm chain (on a
pty, in this process). This process plays the rest of the robot (/joint_states at 100 Hz, home
pose).

Two stacks are measured in the same run, in alternating blocks (the same machine load): the
event-driven path (the default: `event_driven:=true` on joylo, the controller and the driver) and
the tick-driven path (`event_driven:=false` on all three: three 100 Hz loops in series, the old
behaviour). Each block starts the three nodes, measures, and stops them; the emulators stay.

teleop_latency_p99_ms / _p50_ms: an emulated leader motor (left_arm_joint1) is moved by 10 ticks
at a random phase (the leader process stamps the move); latency = until the robot chain's
emulator applies a Goal_Position write for left_arm_joint1 that differs from the previous goal
(emulator write log; both stamps are the system-wide monotonic clock).
Value: event-driven; baseline: tick-driven, same run.

teleop_controller_cpu_percent: CPU of the whole_body_controller process (psutil: user + system
time over wall time, % of one core) during the latency runs of each block (joylo streaming at
100 Hz, /joint_states at 100 Hz, the leader moved every ~0.1 s); median of blocks. Value:
event-driven; baseline: tick-driven; target: at most 1.3x the baseline. (Named apart from
brs_bench.controller's controller_cpu_percent, which measures another workload.) The
notes give joylo's and the driver's CPU too.

joylo_loop_rate_hz: rate of teleop commands from the event-driven joylo over 1 s with the leader
at rest (its ticks; leader changes add commands); baseline: this process's own 100 Hz rclpy timer
(/joint_states) over the same window.

Run alone: `python -m brs_bench.teleop_latency [repeats]` (prints the load average too).
"""

from __future__ import annotations

TITLE = "JoyLo: leader arm -> robot bus latency and loop rate"  # make bench's heading of this module

import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from brs_common import domains
from brs_common.background import BackgroundNode, wait_for

from brs_common.process import stop_process

SAMPLES_PER_REPEAT = 60
STEP_TICKS = 10
DOMAIN_ID = domains.claim(domains.JOBS)  # held while this process runs: no other graph on it
MODES = ("tick", "event")  # event_driven:=false / true


def _leader_main(tmp: str) -> int:
    """`python -m brs_bench.teleop_latency leaders TMP`: both emulated leader chains in the home pose,
    driven over stdin/stdout, one line each way: `move ID TICKS` -> `@<monotonic time of the move>`,
    `position ID` -> `@<ticks>`; EOF or `stop` ends it. The first line out is `@<left path> <right path>`."""
    from brs_common import robot_spec as spec
    from brs_control.dynamixel import control_table as ct
    from brs_control.dynamixel.calibration import hardware_dir, load_calibration
    from brs_control.emulators.dynamixel_emulator import DynamixelEmulator

    from brs_teleop.leader_arms import SIDES, arm_joints

    cal_dir = hardware_dir() / "calibration"
    emus, owner = {}, {}
    for side in SIDES:
        cal = load_calibration(cal_dir / f"joylo_{side}.yaml")
        home = {j.id: float(ct.rad_to_ticks(j.sign * spec.JOINT_BY_NAME[n].home / j.scale + j.offset))
                for n, j in zip(arm_joints(side), cal.joints)}
        emus[side] = DynamixelEmulator(cal.ids, "XL330-M288", link=str(Path(tmp) / f"joylo_{side}"),
                                       positions=home, seed=0).start()
        owner.update(dict.fromkeys(cal.ids, emus[side]))
    try:
        print(f"@{emus['left'].path} {emus['right'].path}", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "stop":
                break
            emu = owner[int(words[1])]
            if words[0] == "move":
                emu.set_position(int(words[1]), int(words[2]))
                print(f"@{time.monotonic()!r}", flush=True)
            else:
                print(f"@{float(emu.positions()[emu.ids.index(int(words[1]))])!r}", flush=True)
    finally:
        for emu in emus.values():
            emu.stop()
    return 0


class _Leaders:
    """The leader emulators in a process of their own (`_leader_main`)."""

    def __init__(self, tmp: Path):
        self._proc = subprocess.Popen([sys.executable, "-m", "brs_bench.teleop_latency", "leaders", str(tmp)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        left, right = self._answer().split()
        self.paths = {"left": left, "right": right}

    def _answer(self) -> str:
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError(f"leader emulator process exited ({self._proc.poll()})")
            if line.startswith("@"):
                return line[1:].strip()

    def _ask(self, line: str) -> str:
        self._proc.stdin.write(line + "\n")
        return self._answer()

    def move(self, dxl_id: int, ticks: int) -> float:
        """Move a motor by hand; the monotonic time at which its position changed."""
        return float(self._ask(f"move {dxl_id} {int(ticks)}"))

    def position(self, dxl_id: int) -> float:
        return float(self._ask(f"position {dxl_id}"))

    def close(self):
        try:
            self._proc.stdin.write("stop\n")
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.Popen([str(Path(sys.executable).parent / args[0]), *args[1:]], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)


class _Cpu:
    """CPU time of some processes between start() and stop(), as % of one core."""

    def __init__(self, procs: dict[str, subprocess.Popen]):
        import psutil

        self.procs = {name: psutil.Process(p.pid) for name, p in procs.items()}

    def _times(self) -> dict[str, float]:
        out = {}
        for name, p in self.procs.items():
            t = p.cpu_times()
            out[name] = t.user + t.system
        return out

    def start(self):
        self.t0, self.c0 = time.monotonic(), self._times()

    def stop(self) -> dict[str, float]:
        wall, c1 = time.monotonic() - self.t0, self._times()
        return {name: 100.0 * (c1[name] - self.c0[name]) / wall for name in c1}


class _Bench(BackgroundNode):
    def __init__(self, tmp: Path):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from brs_common import qos, topics
        from brs_common import robot_spec as spec
        from brs_common.convert import make_joint_state
        from brs_control.dynamixel.calibration import hardware_dir, load_calibration
        from brs_control.emulators.dynamixel_emulator import DynamixelEmulator

        self.tmp = tmp
        self.cal_dir = hardware_dir() / "calibration"
        robot_cal = load_calibration(self.cal_dir / "left_arm.yaml")
        self.robot = DynamixelEmulator(robot_cal.ids, {j.id: j.model for j in robot_cal.joints},
                                       link=str(tmp / "robot_left_arm"), seed=0).start()
        self.leaders = _Leaders(tmp)
        self.base_tick = int(round(self.leaders.position(31)))
        super().__init__("bench_teleop", DOMAIN_ID)
        js = make_joint_state(spec.STATE_JOINTS, spec.HOME[[spec.ACTION_JOINTS.index(j) for j in spec.STATE_JOINTS]])
        js_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        self.lock = threading.Lock()
        self.js_times: list[float] = []
        self.cmd_times: list[float] = []
        self.driver_states = 0
        self.controller_outputs = 0

        def publish_js():
            js_pub.publish(js)
            with self.lock:
                self.js_times.append(time.monotonic())

        self.node.create_timer(1.0 / spec.JOINT_STATE_RATE_HZ, publish_js)
        self.node.create_subscription(JointTrajectory, topics.whole_body_command("teleop"),
                                      self._on_cmd, qos.COMMAND)
        self.node.create_subscription(JointState, "/left_arm_driver/joint_states", self._on_driver_state,
                                      qos.STATE)
        self.node.create_subscription(Float64MultiArray, topics.controller_command("left_arm"),
                                      self._on_controller_output, qos.COMMAND)

    def _on_cmd(self, msg):
        with self.lock:
            self.cmd_times.append(time.monotonic())

    def _on_driver_state(self, msg):
        with self.lock:
            self.driver_states += 1

    def _on_controller_output(self, msg):
        with self.lock:
            self.controller_outputs += 1

    @staticmethod
    def wait(predicate, timeout: float, what: str, show=None):
        """wait_for; on a timeout the error says what `show()` returns then (the state seen)."""
        try:
            # the latency is the emulator's own timestamp of the write: polling more often would not
            # make it more exact, only take CPU from the emulator thread of this process
            return wait_for(predicate, timeout, interval=0.001, message=what)
        except TimeoutError as exc:
            if show is None:
                raise
            raise TimeoutError(f"{exc}; saw {show()}") from None

    def goal(self) -> int:
        return int(self.robot.read(11, "Goal_Position"))

    def count(self, what: str) -> int:
        with self.lock:
            return {"driver": self.driver_states, "controller": self.controller_outputs,
                    "cmd": len(self.cmd_times)}[what]

    def start_stack(self, mode: str, tag: str) -> dict[str, subprocess.Popen]:
        """driver, controller and joylo with event_driven for `mode`, commanding the robot."""
        event = "true" if mode == "event" else "false"
        self.leaders.move(31, self.base_tick)  # every block starts from the same pose
        procs = {}
        try:
            n, m = self.count("driver"), self.count("controller")
            procs["driver"] = _spawn(
                ["dynamixel_driver", "--ros-args", "-r", "__node:=left_arm_driver",
                 "-p", "groups:=['left_arm','left_gripper']", "-p", f"port:={self.robot.path}",
                 "-p", f"calibration_file:={self.cal_dir / 'left_arm.yaml'}", "-p", f"event_driven:={event}"],
                self.tmp / f"driver_{tag}.log")
            procs["controller"] = _spawn(["whole_body_controller", "--ros-args", "-p", f"event_driven:={event}"],
                                         self.tmp / f"controller_{tag}.log")
            self.wait(lambda: self.count("driver") > n + 20, 60, f"driver up ({mode})")
            self.wait(lambda: self.count("controller") > m + 20, 60, f"controller up ({mode})")
            n = self.count("cmd")
            procs["joylo"] = _spawn(["joylo", "--ros-args", "-p", f"left_port:={self.leaders.paths['left']}",
                                     "-p", f"right_port:={self.leaders.paths['right']}",
                                     "-p", f"event_driven:={event}"], self.tmp / f"joylo_{tag}.log")
            self.wait(lambda: self.count("cmd") > n + 200, 60, f"joylo commanding ({mode})")
            self.settle(self.base_tick, f"{mode} stack up")  # the robot at the leader's pose
        except BaseException:
            self.stop_stack(procs)
            raise
        return procs

    @staticmethod
    def stop_stack(procs: dict[str, subprocess.Popen]) -> None:
        for name in ("joylo", "controller", "driver"):
            if name in procs:
                stop_process(procs[name])

    def quiet_rate(self, seconds: float = 1.0) -> tuple[float, float]:
        """(joylo command rate, /joint_states timer rate) over `seconds` with the leader at rest."""
        t0 = time.monotonic()
        time.sleep(seconds)
        t1 = time.monotonic()
        with self.lock:
            return _rate(self.cmd_times, t0, t1), _rate(self.js_times, t0, t1)

    def latency(self, samples: int, seed: int, mode: str) -> list[float]:
        """Leader change -> robot Goal_Position write, `samples` times at a random phase."""
        rng = random.Random(seed)
        out = []
        for k in range(samples):
            target_tick = self.base_tick + (STEP_TICKS if k % 2 == 0 else 0)
            time.sleep(rng.uniform(0.0, 0.01))  # a random phase of the 100 Hz loops
            before = self.goal()
            self.robot.clear_writes()
            t0 = self.leaders.move(31, target_tick)

            def moved():
                return next((t for t, i, v in self.robot.goal_writes(11) if v != before), None)

            out.append(self.wait(moved, 10, f"the robot's goal write ({mode}, sample {k}, goal was {before})",
                                 lambda: f"goal writes {self.robot.goal_writes(11)[-5:]}") - t0)
            self.settle(target_tick, f"sample {k}, {mode}")
        return out

    def settle(self, target_tick: int, what: str, still: float = 0.1) -> None:
        """Wait until every goal written during the last `still` s is `target_tick`: the limiter
        may pass through the target (and overshoot) before it rests there, and a sample measured
        from a goal that is still moving would see the motion, not the leader."""
        def settled():
            now = time.monotonic()
            recent = [v for t, _, v in self.robot.goal_writes(11) if t >= now - still]
            return len(recent) >= 3 and all(v == target_tick for v in recent) and self.goal() == target_tick
        self.wait(settled, 10, f"settling at {target_tick} ({what})",
                  lambda: f"goal {self.goal()}, leader {self.leaders.position(31):.1f}, last writes "
                          f"{self.robot.goal_writes(11)[-5:]}")

    def close(self):
        super().close()
        self.robot.stop()
        self.leaders.close()


def _rate(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    return (len(inside) - 1) / (inside[-1] - inside[0]) if len(inside) > 1 else 0.0


def run(repeats: int = 3):
    from brs_bench.result import Result

    from brs_common.dds import configure_dds

    configure_dds()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    tmp = Path(tempfile.mkdtemp(prefix="bench_teleop_"))
    load_before = os.getloadavg()
    bench = _Bench(tmp)
    lat = {m: [] for m in MODES}
    cpu = {m: {"controller": [], "joylo": [], "driver": []} for m in MODES}
    rates, js_rates = [], []
    try:
        for r in range(repeats):
            # alternate the order so neither path always runs first after a start-up
            for mode in (MODES if r % 2 == 0 else MODES[::-1]):
                procs = bench.start_stack(mode, f"{mode}_{r}")
                try:
                    if mode == "event":
                        rate, js_rate = bench.quiet_rate()
                        rates.append(rate)
                        js_rates.append(js_rate)
                    meter = _Cpu(procs)
                    meter.start()
                    lat[mode] += bench.latency(SAMPLES_PER_REPEAT, seed=100 * r + (mode == "event"), mode=mode)
                    for name, value in meter.stop().items():
                        cpu[mode][name].append(value)
                finally:
                    bench.stop_stack(procs)
    finally:
        bench.close()
    load_after = os.getloadavg()

    ms = lambda xs, q: float(np.percentile(np.asarray(xs) * 1e3, q))  # noqa: E731
    med = {m: {name: statistics.median(v) for name, v in cpu[m].items()} for m in MODES}
    load = f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} (1 min) on {os.cpu_count()} cores"
    note = (f"{len(lat['event'])} leader moves per path at random phase; leader emulator -> joylo -> "
            "controller -> dynamixel_driver -> robot emulator's Goal_Position write; processes on wall "
            f"time, real DDS; event vs tick-driven (event_driven:=false) blocks alternating; {load}")
    cpu_note = (f"psutil, % of one core during the latency runs, median of {repeats} blocks; joylo "
                f"{med['event']['joylo']:.1f} % vs {med['tick']['joylo']:.1f} %, driver "
                f"{med['event']['driver']:.1f} % vs {med['tick']['driver']:.1f} % (event vs tick); {load}")
    base_name = "tick-driven path (event_driven:=false)"
    tick_cpu = med["tick"]["controller"]
    return [
        Result("teleop_latency_p99_ms", ms(lat["event"], 99), "ms", ms(lat["tick"], 99), base_name, "<= 10",
               higher_is_better=False, note=note),
        Result("teleop_latency_p50_ms", ms(lat["event"], 50), "ms", ms(lat["tick"], 50), base_name, "<= 4",
               higher_is_better=False, note=note),
        Result("teleop_controller_cpu_percent", med["event"]["controller"], "%", tick_cpu, base_name,
               f"<= {1.3 * tick_cpu:.3g}", higher_is_better=False, note=cpu_note + "; target 1.3x the baseline"),
        Result("joylo_loop_rate_hz", float(np.median(rates)), "Hz", float(np.median(js_rates)),
               "rclpy 100 Hz timer in the bench process, same window", ">= 95",
               note="teleop commands from the event-driven joylo over 1 s with the leader at rest; median of repeats"),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "leaders":
        raise SystemExit(_leader_main(sys.argv[2]))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(f"{result.name}: {result.value:.3g} {result.unit} (baseline {result.baseline:.3g}, "
              f"{result.ratio:.2f}x, target {result.target}) - {result.note}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
