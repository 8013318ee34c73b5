"""JoyLo teleop benchmarks (`run(repeats)` -> list of brs.bench.Result).

The real-mode path on emulators, every node its own OS process over real DDS (localhost, a
private domain, wall time): two emulated leader arms (XL330 chains on ptys, in this process) ->
joylo -> whole_body_controller -> dynamixel_driver (left arm) -> the emulated robot left-arm
chain (on a pty, in this process). This process plays the rest of the robot (/joint_states at
100 Hz, home pose).

teleop_latency_p99_ms / _p50_ms: an emulated leader motor (left_arm_joint1) is moved by 10 ticks
at a random phase; latency = until the robot chain's emulator applies a Goal_Position write for
left_arm_joint1 that differs from the previous goal (emulator write log, monotonic clock).
Three 100 Hz loops sample in series (joylo, controller, driver), so up to three periods of
waiting are part of the design. Baseline, same run: the existing cmd_to_bus path without joylo
(this process publishes the teleop command at the moment of the change), i.e. what joylo adds;
this process streams the command at 100 Hz like joylo; baseline and joylo blocks alternate
(joylo is started for its block and stopped after it).

joylo_loop_rate_hz: rate of teleop commands arriving from joylo during the latency runs;
baseline: this process's own 100 Hz rclpy timer (/joint_states) over the same window.

Run alone: `python -m brs_teleop.bench_teleop [repeats]`.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from brs_common.background import BackgroundNode, wait_for

from brs_common.process import stop_process

SAMPLES_PER_REPEAT = 60
STEP_TICKS = 10
DOMAIN_ID = 95


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.Popen([str(Path(sys.executable).parent / args[0]), *args[1:]], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)


class _Bench(BackgroundNode):
    def __init__(self, tmp: Path):
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        from brs_common import qos, topics
        from brs_common import robot_spec as spec
        from brs_common.convert import make_joint_state
        from brs_control.dynamixel import control_table as ct
        from brs_control.dynamixel.calibration import hardware_dir, load_calibration
        from brs_control.emulators.dynamixel_emulator import DynamixelEmulator

        from .leader_arms import SIDES, arm_joints

        self.spec = spec
        self.cal_dir = hardware_dir() / "calibration"
        robot_cal = load_calibration(self.cal_dir / "left_arm.yaml")
        self.robot = DynamixelEmulator(robot_cal.ids, {j.id: j.model for j in robot_cal.joints},
                                       link=str(tmp / "robot_left_arm"), seed=0).start()
        self.leaders = {}
        for side in SIDES:
            cal = load_calibration(self.cal_dir / f"joylo_{side}.yaml")
            home = {j.id: float(ct.rad_to_ticks(j.sign * spec.JOINT_BY_NAME[n].home / j.scale + j.offset))
                    for n, j in zip(arm_joints(side), cal.joints)}
            self.leaders[side] = DynamixelEmulator(cal.ids, "XL330-M288", link=str(tmp / f"joylo_{side}"),
                                                   positions=home, seed=0).start()
        super().__init__("bench_teleop", DOMAIN_ID)
        js = make_joint_state(spec.STATE_JOINTS, spec.HOME[[spec.ACTION_JOINTS.index(j) for j in spec.STATE_JOINTS]])
        js_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        self.lock = threading.Lock()
        self.js_times: list[float] = []
        self.cmd_times: list[float] = []

        def publish_js():
            js_pub.publish(js)
            with self.lock:
                self.js_times.append(time.monotonic())

        self.node.create_timer(1.0 / spec.JOINT_STATE_RATE_HZ, publish_js)
        self.cmd_pub = self.node.create_publisher(JointTrajectory, topics.whole_body_command("teleop"), qos.COMMAND)
        self.node.create_subscription(JointTrajectory, topics.whole_body_command("teleop"),
                                      self._on_cmd, qos.COMMAND)
        self.j1 = spec.ACTION_JOINTS.index("left_arm_joint1")
        self.targets = spec.HOME.copy()

    def _on_cmd(self, msg):
        with self.lock:
            self.cmd_times.append(time.monotonic())

    @staticmethod
    def wait(predicate, timeout: float, what: str):
        return wait_for(predicate, timeout, interval=0.0003, message=what)  # fine-grained: latencies

    def goal(self) -> int:
        return int(self.robot.read(11, "Goal_Position"))

    def latency(self, samples: int, via_joylo: bool, seed: int) -> list[float]:
        """Leader change -> robot Goal_Position write. Without joylo this process streams the
        teleop command at 100 Hz itself (as joylo does) and publishes the changed one at once."""
        from brs_control.dynamixel import control_table as ct

        rng = random.Random(seed)
        leader = self.leaders["left"]
        base = float(leader.positions()[0])
        self.wait(lambda: self.robot.read_all("Torque_Enable").all(), 30, "robot driver active")
        streaming = None if via_joylo else self.stream()
        out = []
        try:
            for k in range(samples):
                target_tick = int(round(base)) + (STEP_TICKS if k % 2 == 0 else 0)
                time.sleep(rng.uniform(0.0, 0.01))  # a random phase of the 100 Hz loops
                before = self.goal()
                self.robot.clear_writes()
                t0 = time.monotonic()
                if via_joylo:
                    leader.set_position(31, target_tick)
                else:
                    self.send(float(ct.ticks_to_rad(target_tick)))  # offset 0, sign +1 on both

                def moved():
                    return next((t for t, i, v in self.robot.goal_writes(11) if v != before), None)

                out.append(self.wait(moved, 10, "the robot's goal write") - t0)
                self.wait(lambda: abs(self.goal() - target_tick) <= 1, 10,
                          f"settling at {target_tick} (sample {k}, via joylo {via_joylo}); goal now "
                          f"{self.goal()}, leader {leader.positions()[0]:.1f}")
        finally:
            if streaming is not None:
                streaming.set()
        return out

    def send(self, j1: float | None = None) -> None:
        """Publish the teleop command now (with left_arm_joint1 changed first, if given)."""
        from . import teleop_mapping as tm

        with self.lock:
            if j1 is not None:
                self.targets[self.j1] = j1
            self.cmd_pub.publish(tm.command_msg(self.targets, 0.01))

    def stream(self) -> threading.Event:
        """Send the teleop command every 10 ms until the returned event is set."""
        stop = threading.Event()

        def loop():
            next_t = time.monotonic()
            while not stop.is_set():
                self.send()
                next_t += 0.01
                stop.wait(max(0.0, next_t - time.monotonic()))

        threading.Thread(target=loop, daemon=True).start()
        return stop

    def warm_up(self, seconds: float) -> None:
        stop = self.stream()
        time.sleep(seconds)
        stop.set()

    def close(self):
        super().close()
        for emu in (self.robot, *self.leaders.values()):
            emu.stop()


def _rate(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    return (len(inside) - 1) / (inside[-1] - inside[0]) if len(inside) > 1 else 0.0


def run(repeats: int = 3):
    from brs.bench import Result

    from brs_common.dds import configure_dds

    configure_dds()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    tmp = Path(tempfile.mkdtemp(prefix="bench_teleop_"))
    bench = _Bench(tmp)
    procs = []
    base_lat, joylo_lat, rates, js_rates = [], [], [], []
    try:
        procs.append(_spawn(["dynamixel_driver", "--ros-args", "-r", "__node:=left_arm_driver",
                             "-p", "groups:=['left_arm','left_gripper']", "-p", f"port:={bench.robot.path}",
                             "-p", f"calibration_file:={bench.cal_dir / 'left_arm.yaml'}"], tmp / "driver.log"))
        procs.append(_spawn(["whole_body_controller"], tmp / "controller.log"))
        bench.wait(lambda: bench.robot.read_all("Torque_Enable").all(), 60, "driver up")
        # the controller subscribed (besides this process), then 1 s of streamed commands
        bench.wait(lambda: bench.cmd_pub.get_subscription_count() >= 2, 60, "controller subscribed")
        bench.warm_up(1.0)
        joylo_cmd = ["joylo", "--ros-args", "-p", f"left_port:={bench.leaders['left'].path}",
                     "-p", f"right_port:={bench.leaders['right'].path}"]
        for r in range(repeats):  # baseline and joylo blocks interleaved: the same machine load
            bench.warm_up(0.3)  # the controller follows this process again (after joylo)
            base_lat += bench.latency(SAMPLES_PER_REPEAT, via_joylo=False, seed=r)
            joylo = _spawn(joylo_cmd, tmp / f"joylo_{r}.log")
            try:
                with bench.lock:
                    n = len(bench.cmd_times)
                bench.wait(lambda: len(bench.cmd_times) > n + 200, 60, "joylo commanding")
                t_start = time.monotonic()
                joylo_lat += bench.latency(SAMPLES_PER_REPEAT, via_joylo=True, seed=100 + r)
                t_end = time.monotonic()
            finally:
                stop_process(joylo)
            with bench.lock:
                rates.append(_rate(bench.cmd_times, t_start, t_end))
                js_rates.append(_rate(bench.js_times, t_start, t_end))
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        bench.close()

    ms = lambda xs, q: float(np.percentile(np.asarray(xs) * 1e3, q))  # noqa: E731
    note = (f"{len(joylo_lat)} leader moves at random phase; leader emulator -> joylo -> controller "
            "-> dynamixel_driver -> robot emulator's Goal_Position write; three 100 Hz loops in "
            "series; processes on wall time, real DDS")
    base_name = "teleop command -> robot goal write (cmd_to_bus path, no joylo)"
    return [
        Result("teleop_latency_p99_ms", ms(joylo_lat, 99), "ms", ms(base_lat, 99), base_name, "<= 10",
               higher_is_better=False, note=note),
        Result("teleop_latency_p50_ms", ms(joylo_lat, 50), "ms", ms(base_lat, 50), base_name, "<= 10",
               higher_is_better=False, note=note),
        Result("joylo_loop_rate_hz", float(np.median(rates)), "Hz", float(np.median(js_rates)),
               "rclpy 100 Hz timer in the bench process, same window", ">= 95",
               note="teleop commands received from joylo while measuring; median of repeats"),
    ]


if __name__ == "__main__":
    for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(f"{result.name}: {result.value:.3g} {result.unit} (baseline {result.baseline:.3g}, "
              f"{result.ratio:.2f}x, target {result.target}) - {result.note}")
